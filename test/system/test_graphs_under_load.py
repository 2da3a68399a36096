"""The twin graphs on a loaded machine: a busy process per core, at the graphs' priority.

Seen before the lockstep twin and the bridge's queued-state handling: every recording session
under load faulted the bridge within seconds ("joint states are 70-388 ms old"), the arm never
moved, and the recorder committed episodes whose actions were NaN in every arm joint.
bench/load.py runs the same at length (100 deploy episodes); this is the short version.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visuomotor.policy.bundle import load_bundle
from visuomotor.recording.reader import DatasetReader
from visuomotor.ros.demo_deploy import run_deploy_stage
from visuomotor.ros.demo_teleop import run_teleop_stage
from visuomotor.ros.policy_node import resolve_model
from visuomotor.sim.cpu_load import CpuHog
from visuomotor.training.demo_policy import EVAL_SEEDS, NAME, evaluate


def test_a_recording_session_under_load_has_no_fault_and_no_garbage(tmp_path: Path,
                                                                     verified_rig: Path
                                                                     ) -> None:
    lines: list[str] = []
    with CpuHog() as hog:
        teleop = run_teleop_stage(tmp_path, str(verified_rig), episodes=2, report=lines.append)
    assert hog.cores_used > 0.3  # the hog really competed for the CPU
    assert teleop.bridge_faults == 0, '\n'.join(lines)
    assert teleop.check.ok, teleop.check.lines()
    assert teleop.pulses == teleop.pulses_expected
    reader = DatasetReader(teleop.dataset)
    assert len(reader) == 2
    for index in range(len(reader)):
        columns = reader.episode(index).columns
        assert np.isfinite(np.asarray(columns['action'])).all(), f'episode {index}'
        assert np.isfinite(np.asarray(columns['observation.state'])).all(), f'episode {index}'


def test_the_deploy_graph_under_load_runs_its_episodes_without_a_fault(tmp_path: Path,
                                                                       verified_rig: Path
                                                                       ) -> None:
    seeds = list(EVAL_SEEDS[:2])
    reference = evaluate(load_bundle(resolve_model(NAME)), seeds)
    lines: list[str] = []
    with CpuHog():
        figures = run_deploy_stage(tmp_path, seeds, report=lines.append,
                                   calibration=str(verified_rig), in_process=reference)
    assert figures.faults == 0, '\n'.join(lines)
    assert len(figures.episodes) == 2
    assert not any(e.note for e in figures.episodes), figures.episodes
    # The lockstep twin kept its consumers' pace instead of racing ahead of them.
    assert float(figures.twin['lockstep_wait_s']) >= 0.0
