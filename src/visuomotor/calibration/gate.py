"""The pre-session gate (pure): may a session use this rig's cameras now?

Yes only when the newest verification record of the rig passed, is younger than the rig's
`max_age_h` (default 12 h: this session), was written by a verification of the calibration
files as they are now (their hashes match), and is not from the future. The newest record
decides: a failed check is not papered over by an older passing one.

An override (a non-empty reason) lets a session start anyway; the nodes log it loudly and
the recorder stores it in every episode's provenance. Record times are wall-clock UTC (a
record outlives any process, so there is no other clock to compare them on); `now` is an
argument.

The policy node and the recorder read the same three parameters (`GATE_PARAMS`).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visuomotor.calibration.rig_files import RECORDS, calibration_folder, load_rig_calibration
from visuomotor.calibration.verify import load_settings
from visuomotor.errors import VisuomotorError
from visuomotor.params import Param

#: Records this far in the future are refused (clock trouble between machines).
FUTURE_TOLERANCE_S = 300.0

GATE_PARAMS = (
    Param('calibration', '', 'rig calibration folder (a name under calibration/ or a path) '
          'whose newest verification record must pass; empty refuses to start unless '
          'calibration_override is set'),
    Param('calibration_max_age_h', 0.0, 'a verification record older than this refuses to '
          "start (h); 0 takes the rig's verification.yaml max_age_h (default 12 h)", 0.0,
          24.0 * 365),
    Param('calibration_override', '', 'start WITHOUT a passing, recent verification: the '
          'reason (who and why). Logged loudly and stored in every recorded episode'),
)


@dataclass(frozen=True)
class GateDecision:
    """The gate's answer.

    Attributes:
        allowed: the session may start.
        message: why (names the record, its age, the failure, or what to run).
        record_id: the record the decision rests on (None: none usable).
        verified_at: that record's time.
        override: the override reason, when the gate was overridden.
    """

    allowed: bool
    message: str
    record_id: str | None = None
    verified_at: str | None = None
    override: str = ''

    def provenance(self) -> dict[str, Any]:
        """What a recorded episode stores about its calibration."""
        return {'record': self.record_id, 'verified_at': self.verified_at,
                'override': self.override or None, 'gate': self.message}


def _records(folder: Path) -> list[tuple[datetime.datetime, Path, dict[str, Any]]]:
    found: list[tuple[datetime.datetime, int, Path, dict[str, Any]]] = []
    for path in (folder / RECORDS).glob('*.json'):
        try:
            data = json.loads(path.read_text(encoding='utf-8'))
            stamp = datetime.datetime.fromisoformat(str(data['created_at']))
            if stamp.tzinfo is None:
                continue
            found.append((stamp, path.stat().st_mtime_ns, path, data))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable records are not evidence of anything
    found.sort(key=lambda item: item[:2])  # by time, then by when the file was written
    return [(stamp, path, data) for stamp, _, path, data in found]


def _hours(seconds: float) -> str:
    return f'{seconds / 3600:.1f} h'


def check_gate(calibration: str | Path, now: datetime.datetime, *, max_age_h: float = 0.0,
               override: str = '') -> GateDecision:
    """Decide (see the module docstring).

    Raises:
        CalibrationFileError: the rig's calibration files are missing or corrupt (and no
            override is given).
    """
    if not str(calibration):
        if override:
            return GateDecision(True, f'no rig calibration given; OVERRIDDEN: {override}',
                                override=override)
        return GateDecision(False, 'no rig calibration given: set calibration:=<rig> (a folder '
                            'under calibration/) and run `visuomotor calibrate verify --rig '
                            '<rig>` before the session, or calibration_override:=<reason>')
    folder = calibration_folder(calibration)
    try:
        rig = load_rig_calibration(folder)
    except VisuomotorError:
        if override:
            return GateDecision(True, f'calibration {folder} unreadable; OVERRIDDEN: '
                                f'{override}', override=override)
        raise
    limit_h = max_age_h or load_settings(folder).max_age_h
    verify = f'`visuomotor calibrate verify --rig {folder}`'
    decision = _decide(rig.rig, rig.folder, rig.files, now, limit_h, verify)
    if override and not decision.allowed:
        return GateDecision(True, f'{decision.message}; OVERRIDDEN: {override}',
                            decision.record_id, decision.verified_at, override)
    return decision


def _decide(rig: str, folder: Path, files: dict[str, str], now: datetime.datetime,
            limit_h: float, verify: str) -> GateDecision:
    records = _records(folder)
    if not records:
        return GateDecision(False, f'rig {rig}: no verification record in {folder / RECORDS}: '
                            f'run {verify} before the session')
    stamp, path, data = records[-1]
    record_id = str(data.get('id', path.stem))
    when = stamp.isoformat(timespec='seconds')
    age_s = (now - stamp).total_seconds()
    if age_s < -FUTURE_TOLERANCE_S:
        return GateDecision(False, f'rig {rig}: record {record_id} is dated {when}, '
                            f"{_hours(-age_s)} in the future: fix this machine's clock and "
                            f're-run {verify}', record_id, when)
    if not data.get('passed'):
        failures = data.get('cameras', {})
        problems = [f'{name}: {"; ".join(c.get("problems", []))}'
                    for name, c in failures.items() if not c.get('passed')]
        return GateDecision(False, f'rig {rig}: the latest verification {record_id} ({when}) '
                            f'FAILED: {" | ".join(problems) or "no camera passed"}; fix it '
                            f'and re-run {verify}', record_id, when)
    if age_s > limit_h * 3600:
        return GateDecision(False, f'rig {rig}: the latest verification {record_id} is '
                            f'{_hours(age_s)} old (limit {limit_h:g} h): re-run {verify} '
                            'before the session', record_id, when)
    stored = data.get('calibration_files', {})
    changed = sorted(name for name in set(files) | set(stored)
                     if files.get(name) != stored.get(name))
    if changed:
        return GateDecision(False, f'rig {rig}: calibration files {changed} changed after '
                            f'verification {record_id}: re-run {verify}', record_id, when)
    return GateDecision(True, f'rig {rig}: verification {record_id} passed {_hours(age_s)} '
                        f'ago (limit {limit_h:g} h)', record_id, when)


class CalibrationGateError(VisuomotorError):
    """The gate refused the session (the message says why and what to run)."""


def require_gate(calibration: str, max_age_h: float, override: str,
                 now: datetime.datetime) -> GateDecision:
    """The gate for a node's three parameters (GATE_PARAMS): the decision when allowed.

    Raises:
        CalibrationGateError: not allowed; also for missing or corrupt calibration files.
    """
    try:
        decision = check_gate(calibration, now, max_age_h=max_age_h, override=override.strip())
    except VisuomotorError as exc:
        raise CalibrationGateError(f'calibration gate: {exc} (or set '
                                   'calibration_override:=<reason> to start anyway)') from None
    if not decision.allowed:
        raise CalibrationGateError(f'calibration gate: {decision.message}')
    return decision


def override_banner(decision: GateDecision) -> str:
    """The loud line a node logs when its gate was overridden."""
    return (f'CALIBRATION GATE OVERRIDDEN ({decision.override}): this session runs WITHOUT a '
            f'passing, recent camera verification; {decision.message}')
