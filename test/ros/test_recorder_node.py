"""The recorder node on the twin, over DDS on simulated time: episodes read back exactly."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from visuomotor.recording.check import check_dataset
from visuomotor.recording.reader import DatasetReader
from visuomotor.ros.recorder_node import RecorderNode
from visuomotor.ros.recorder_node import main as recorder_main
from visuomotor.ros.twin_graph import BridgeHarness

FPS = 10.0


@pytest.fixture
def graph(ros_context, tmp_path, verified_rig):
    harness = BridgeHarness(ros_context)
    recorder = RecorderNode(context=ros_context, parameter_overrides=[
        Parameter('use_sim_time', value=True), Parameter('dataset', value=str(tmp_path / 'ds')),
        Parameter('rig', value='twin_fr3'), Parameter('robot', value='fr3'),
        Parameter('fps', value=FPS), Parameter('codec', value='h264'),
        Parameter('task', value='reach'), Parameter('calibration', value=str(verified_rig)),
        Parameter('preprocessing_spec', value='spatial_softmax_84')])
    clients = {name: harness.client.create_client(Trigger, f'/recorder/{name}')
               for name in ('start', 'stop', 'discard')}
    # Its own executor thread, as its own process would have (encoding and commits must not
    # delay the bridge's joint states).
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(recorder)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield harness, recorder, clients, tmp_path / 'ds'
    executor.shutdown()
    thread.join(timeout=5.0)
    recorder.destroy_node()
    harness.close()


def _call(harness, client):
    future = client.call_async(Trigger.Request())
    assert harness.run_for(3.0, until=future.done)
    return future.result()


def test_twin_episodes_are_recorded_and_read_back_exactly(graph, verified_rig):
    harness, recorder, clients, path = graph
    harness.arm()
    targets = [harness.home + d for d in (np.array([0.1, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0]),
                                          np.array([-0.1, 0.1, 0.0, 0.0, 0.0, 0.1, 0.0]),
                                          np.zeros(7))]
    for target in targets:
        response = _call(harness, clients['start'])
        assert response.success, response.message
        harness.run_for(2.0, harness.stream(target))
        response = _call(harness, clients['stop'])
        assert response.success, response.message
        recorder.wait_for_commit()
    # One discarded episode leaves no trace.
    assert _call(harness, clients['start']).success
    harness.run_for(0.5, harness.stream(harness.home))
    assert _call(harness, clients['discard']).success

    reader = DatasetReader(path)
    assert len(reader) == 3 and reader.fps == FPS and reader.tasks == ['reach']
    assert reader.cameras == ['scene_camera', 'wrist_camera']
    states = harness.client.record.joint_states  # what the twin published, (stamp, q, v)
    stamps = np.array([s for s, _, _ in states])
    positions = np.array([q for _, q, _ in states])
    for index in range(3):
        episode = reader.episode(index)
        assert 15 <= episode.length <= 21  # 2 s at 10 Hz (a few ticks to align)
        cols = episode.columns
        reference = cols['timing.reference_ns'] * 1e-9
        # The recorded state is the published joint state at the row's reference time.
        expected = np.array([[np.interp(t, stamps, positions[:, j]) for j in range(7)]
                             for t in reference])
        np.testing.assert_allclose(cols['observation.state'][:, :7], expected, atol=2e-6)
        assert np.all(np.isfinite(cols['action'][:, :7]))  # what the bridge sent
        assert np.all(np.diff(cols['timing.tick_ns']) > 0)
        for camera in reader.cameras:
            capture = cols[f'timing.capture_ns.{camera}'] * 1e-9
            assert np.all(np.abs(capture - reference) <= 0.025 + 1e-9)
            frames = episode.frames(camera)
            assert len(frames) == episode.length and frames[0].shape == (96, 96, 3)
            assert frames[-1].std() > 5  # a rendered scene
        provenance = episode.provenance
        calibration = provenance['calibration']
        assert calibration['record'].startswith('twin_fr3-') and calibration['override'] is None
        assert (verified_rig / 'verification' / f'{calibration["record"]}.json').is_file()
        assert provenance['robot'] == 'fr3' and provenance['rig'] == 'twin_fr3'
        assert len(provenance['preprocessing_spec_hash']) == 16
        assert abs(provenance['measured']['tick_hz'] - FPS) < 1.0
    # The last episode moved the arm back home: its final recorded state is near home.
    final = reader.episode(2).columns['observation.state'][-1, :7]
    assert np.abs(final - harness.home).max() < 0.05
    report = check_dataset(path, sheet=path.parent / 'sheet.png')
    assert report.ok, '\n'.join(report.lines())
    assert (path.parent / 'sheet.png').stat().st_size > 1000


def test_the_recorder_refuses_to_start_without_a_dataset(capsys):
    assert recorder_main(['recorder_node', '--ros-args', '-p', 'rig:=twin_fr3']) == 2
    assert 'dataset' in capsys.readouterr().err


def test_the_recorder_refuses_without_a_verified_calibration(capsys, tmp_path):
    code = recorder_main(['recorder_node', '--ros-args', '-p', 'rig:=twin_fr3',
                          '-p', f'dataset:={tmp_path / "ds"}'])
    error = capsys.readouterr().err
    assert code == 2 and 'calibration gate' in error and 'calibration_override' in error


def test_an_overridden_gate_is_stored_with_the_recorder(ros_context, tmp_path):
    recorder = RecorderNode(context=ros_context, parameter_overrides=[
        Parameter('dataset', value=str(tmp_path / 'ds')), Parameter('rig', value='twin_fr3'),
        Parameter('calibration_override', value='bench test, camera not mounted (ada)')])
    try:
        calibration = recorder.provenance['calibration']
        assert calibration['override'] == 'bench test, camera not mounted (ada)'
        assert calibration['record'] is None and 'OVERRIDDEN' in calibration['gate']
    finally:
        recorder.destroy_node()
