"""A whole teleop recording session on the twin: record_graph(robot:=sim, operator:=script)
started by the launch-free runner (one process per node over DDS, as `ros2 launch` would).

The simulated Quest plays a scripted operator: per episode it presses A (start), clutches,
reaches, closes the gripper with the trigger, lifts, re-clutches, moves aside, opens, presses
A (stop) and holds B to move home; then one more episode is started and discarded with B.
Everything the recorder committed must load back and pass the dataset check."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from visuomotor.paths import share_dir
from visuomotor.recording.check import check_dataset
from visuomotor.recording.reader import DatasetReader
from visuomotor.robots.description import load_robot
from visuomotor.robots.kinematics import tcp_pose
from visuomotor.ros.graph import record_graph
from visuomotor.ros.runner import GraphProcesses
from visuomotor.sim.calibration_capture import verify_on_twin

EPISODES = 2


def test_a_scripted_quest_session_records_episodes_that_load_back(tmp_path: Path) -> None:
    rig = tmp_path / 'calibration' / 'twin_fr3'
    shutil.copytree(share_dir() / 'calibration' / 'twin_fr3', rig,
                    ignore=shutil.ignore_patterns('verification'))
    assert verify_on_twin(rig, 'fr3', datetime.datetime.now(datetime.UTC)).passed
    dataset = tmp_path / 'teleop_ds'
    nodes = record_graph({'robot': 'sim', 'dataset': str(dataset), 'operator': 'script',
                          'episodes': str(EPISODES), 'arm_on_start': 'true',
                          'task': 'teleop reach', 'calibration': str(rig)})
    assert [n.name for n in nodes] == ['sim', 'safety_bridge', 'teleop', 'sim_quest',
                                       'recorder']
    with GraphProcesses(nodes, tmp_path / 'logs') as graph:
        graph.start()
        try:
            code = graph.processes['sim_quest'].wait(timeout=300.0)
        except subprocess.TimeoutExpired:
            pytest.fail(graph.log_tail('sim_quest', 30))
        quest_log = graph.log_tail('sim_quest', 5)
        assert code == 0, quest_log
        assert set(graph.exited()) == {'sim_quest'}, graph.exited()
        graph.stop('recorder')  # a clean shutdown (the commits are done by now)
        teleop_log = graph.log_tail('teleop', 200)
        bridge_log = graph.log_tail('safety_bridge', 200)
    # Start and stop of each kept episode (1 + 2 pulses), start and discard of the last.
    assert f'script played ({3 * EPISODES + 2} haptic pulses felt)' in quest_log, quest_log
    assert teleop_log.count('recorder: committing episode') == EPISODES, teleop_log
    assert f'recorder: episode {EPISODES} discarded' in teleop_log, teleop_log
    assert 'ERROR' not in teleop_log and '-> fault' not in bridge_log, (teleop_log, bridge_log)

    reader = DatasetReader(dataset)
    assert len(reader) == EPISODES and reader.tasks == ['teleop reach']
    report = check_dataset(dataset)
    assert report.ok, '\n'.join(report.lines())
    robot = load_robot('fr3')
    for index in range(EPISODES):
        episode = reader.episode(index)
        state = episode.columns['observation.state']
        assert 100 <= episode.length <= 160  # about 13 s at 10 Hz
        tcp = np.array([tcp_pose(robot, q[:7])[:3, 3] for q in state])
        # The reach: forward 5 cm and down 6 cm from the start, back up, aside.
        assert np.min(tcp[:, 2]) < tcp[0, 2] - 0.05
        assert np.max(tcp[:, 0]) > tcp[0, 0] + 0.04
        gripper = state[:, 7]
        assert gripper[0] > 0.07 and gripper.min() < 0.01  # opened, closed with the trigger
        assert episode.provenance['calibration']['override'] is None
    # Each episode starts at home: the operator held B between episodes.
    starts = [reader.episode(i).columns['observation.state'][0, :7] for i in range(EPISODES)]
    np.testing.assert_allclose(starts[1], starts[0], atol=0.01)
