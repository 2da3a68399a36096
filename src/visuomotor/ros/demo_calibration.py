"""Demo stage: the pre-session calibration check and the gate that enforces it.

The twin's rig calibration (calibration/twin_fr3, made by `visuomotor calibrate twin`: the
same ChArUco detection, intrinsics and hand-eye code a real rig uses) is copied into the
output folder, so the demo's records never touch the package. Then, on the twin:

1. the gate with no verification record: blocked, saying what to run;
2. the wrist camera knocked 3 mm sideways, then verified: FAIL, naming the camera and the
   amount; the gate stays blocked;
3. the camera back in place, verified again: PASS; the gate opens, and the deploy stage
   that follows starts its policy node against this folder.

Each verification writes its record, an overlay per camera and an HTML report.
"""

from __future__ import annotations

import datetime
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from visuomotor.calibration.gate import GateDecision, check_gate
from visuomotor.calibration.rig_files import RECORDS
from visuomotor.calibration.verify import VerificationRecord
from visuomotor.paths import share_dir
from visuomotor.ros.demo_checks import Check
from visuomotor.sim.calibration_capture import verify_on_twin

RIG = 'twin_fr3'
KNOCK_MM = 3.0


@dataclass
class CalibrationFigures:
    """What the stage saw."""

    folder: Path
    gates: list[tuple[str, GateDecision]] = field(default_factory=list)
    records: list[tuple[str, VerificationRecord]] = field(default_factory=list)


def run_calibration_stage(out_dir: Path, scene: str) -> CalibrationFigures:
    """Run the three steps of the module docstring; returns the rig folder used."""
    folder = out_dir / 'calibration' / RIG
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(share_dir() / 'calibration' / RIG, folder,
                    ignore=shutil.ignore_patterns(RECORDS))
    figures = CalibrationFigures(folder)

    def now() -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    figures.gates.append(('before any verification', check_gate(folder, now())))
    knocked = verify_on_twin(folder, scene, now(), moves={
        'wrist_camera': ((KNOCK_MM / 1000.0, 0.0, 0.0), (0.0, 0.0, 0.0))})
    figures.records.append((f'wrist camera knocked {KNOCK_MM:g} mm sideways', knocked))
    figures.gates.append(('after the failed verification', check_gate(folder, now())))
    passed = verify_on_twin(folder, scene, now())
    figures.records.append(('camera back in place', passed))
    figures.gates.append(('after the passing verification', check_gate(folder, now())))
    return figures


def checks(figures: CalibrationFigures) -> list[Check]:
    """What the stage must show: blocked, knocked camera caught, blocked, passed, allowed."""
    gates = [decision.allowed for _, decision in figures.gates]
    records = [record.passed for _, record in figures.records]
    return [Check('the gate blocks without a verification', gates[:1] == [False]),
            Check(f'a camera knocked {KNOCK_MM:g} mm fails verification and the gate stays shut',
                  records[:1] == [False] and gates[1:2] == [False]),
            Check('the camera in place passes and the gate opens',
                  records[1:2] == [True] and gates[2:3] == [True])]


def summary_lines(figures: CalibrationFigures) -> list[str]:
    """What the demo prints."""
    lines = [f'  rig calibration: {figures.folder} (copied from calibration/{RIG})']
    gates = iter(figures.gates)
    label, decision = next(gates)
    lines.append(f'  gate {label}: {"ALLOWED" if decision.allowed else "BLOCKED"}: '
                 f'{decision.message}')
    for (what, record), (label, decision) in zip(figures.records, gates, strict=True):
        lines.append(f'  verify ({what}): {"PASSED" if record.passed else "FAILED"} '
                     f'({record.id})')
        lines += [f'    {check.summary()}' for check in record.cameras]
        lines.append(f'    report: {figures.folder / RECORDS / (record.id + ".html")}')
        lines.append(f'  gate {label}: {"ALLOWED" if decision.allowed else "BLOCKED"}: '
                     f'{decision.message}')
    return lines
