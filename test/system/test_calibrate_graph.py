"""The pre-session check through ROS on the twin: calibrate_graph (sim node at the calibrated
resolution with the rig's board on its fixture, safety bridge, capture helper) moves the arm
through the rig's verification poses over DDS, captures, verifies and writes the record the
deploy graph's gate then accepts."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from visuomotor.calibration.captures import load_captures
from visuomotor.calibration.gate import check_gate
from visuomotor.paths import share_dir
from visuomotor.ros.graph import calibrate_graph
from visuomotor.ros.runner import GraphProcesses


def test_the_arm_moves_through_the_poses_and_the_record_opens_the_gate(tmp_path: Path) -> None:
    rig = tmp_path / 'twin_fr3'
    shutil.copytree(share_dir() / 'calibration' / 'twin_fr3', rig,
                    ignore=shutil.ignore_patterns('verification'))
    nodes = calibrate_graph({'robot': 'sim', 'calibration': str(rig), 'arm_on_start': 'true',
                             'out': str(tmp_path / 'captures')})
    sim = next(n for n in nodes if n.executable == 'sim_node')
    assert (sim.parameters['image_width'], sim.parameters['image_height']) == (640, 480)
    assert check_gate(rig, datetime.datetime.now(datetime.UTC)).allowed is False
    with GraphProcesses(nodes, tmp_path / 'logs') as graph:
        graph.start()
        try:  # the helper exits when it has verified (a dead sim or bridge: pose timeout)
            code = graph.processes['calibration_capture'].wait(timeout=240.0)
        except subprocess.TimeoutExpired:
            pytest.fail(graph.log_tail('calibration_capture', 40))
        log = graph.log_tail('calibration_capture', 40)
        assert code == 0, log
        assert set(graph.exited()) == {'calibration_capture'}, graph.exited()
    assert 'view 5/5 taken' in log and 'verification PASSED' in log
    captures = load_captures(tmp_path / 'captures')
    assert len(captures.views) == 5 and captures.robot == 'fr3'
    assert captures.views[0].images['wrist_camera'].shape == (480, 640, 3)
    record = json.loads(next((rig / 'verification').glob('*.json')).read_text())
    assert record['passed'] and record['cameras']['wrist_camera']['translation_mm'] < 1.5
    decision = check_gate(rig, datetime.datetime.now(datetime.UTC))
    assert decision.allowed and decision.record_id == record['id']
