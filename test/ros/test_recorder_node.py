"""The recorder node on the twin, over DDS on simulated time: episodes read back exactly;
rows recorded while the safety bridge is not armed are flagged, and an episode without a
usable row is refused, saying so on the state topic."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from visuomotor.recording.check import check_dataset
from visuomotor.recording.episode import NO_ACTION, NOT_ARMED
from visuomotor.recording.reader import DatasetReader
from visuomotor.ros.recorder_node import RecorderNode
from visuomotor.ros.recorder_node import main as recorder_main
from visuomotor.ros.twin_graph import BridgeHarness

FPS = 10.0


def _graph(ros_context, tmp_path, verified_rig, bridge='/safety_bridge'):
    harness = BridgeHarness(ros_context)
    recorder = RecorderNode(context=ros_context, parameter_overrides=[
        Parameter('use_sim_time', value=True), Parameter('dataset', value=str(tmp_path / 'ds')),
        Parameter('rig', value='twin_fr3'), Parameter('robot', value='fr3'),
        Parameter('fps', value=FPS), Parameter('codec', value='h264'),
        Parameter('task', value='reach'), Parameter('calibration', value=str(verified_rig)),
        Parameter('preprocessing_spec', value='spatial_softmax_84'),
        Parameter('bridge', value=bridge)])
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


@pytest.fixture
def graph(ros_context, tmp_path, verified_rig):
    yield from _graph(ros_context, tmp_path, verified_rig)


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
        # 2 s at 10 Hz (a few ticks to align), plus the simulated time the stop call waits
        # for its answer (the sim runs on meanwhile: up to a few ticks on a loaded machine)
        assert 15 <= episode.length <= 25
        assert np.allclose(np.diff(episode.columns['timing.reference_ns']) * 1e-9, 1 / FPS,
                           atol=0.02)  # every row of that span, none skipped
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


class FakeBridge(Node):
    """What the recorder hears of a safety bridge: its latched state and `~/limited`."""

    def __init__(self, context, joint_names):
        super().__init__('test_bridge_stand_in', context=context)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.state_pub = self.create_publisher(String, '/test_bridge/state', latched)
        self.limited_pub = self.create_publisher(JointState, '/test_bridge/limited', 50)
        self.joint_names = list(joint_names)
        self.sending: np.ndarray | None = None
        self.recorder_states: list[str] = []
        self.create_subscription(String, '/recorder/state',
                                 lambda msg: self.recorder_states.append(msg.data),
                                 QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self._next = 0.0

    def tick(self, now: float) -> None:
        """Publish the command sent at 50 Hz while `sending` (a bridge that is sending)."""
        if self.sending is None or now < self._next:
            return
        self._next = now + 0.02
        msg = JointState(name=self.joint_names, position=self.sending.tolist())
        msg.header.stamp = Time(sec=int(now), nanosec=int(round((now % 1.0) * 1e9)) % 10**9)
        self.limited_pub.publish(msg)


@pytest.fixture
def graph_with_fake_bridge(ros_context, tmp_path, verified_rig):
    """The recorder listening to /test_bridge, which the test plays (the real bridge idles)."""
    for harness, recorder, clients, path in _graph(ros_context, tmp_path, verified_rig,
                                                   bridge='/test_bridge'):
        fake = FakeBridge(ros_context, recorder.robot.joint_names)
        harness.executor.add_node(fake)
        yield harness, recorder, clients, path, fake
        harness.executor.remove_node(fake)
        fake.destroy_node()


def test_rows_are_flagged_by_the_bridge_state_and_a_garbage_episode_is_refused(
        graph_with_fake_bridge):
    harness, recorder, clients, path, fake = graph_with_fake_bridge
    fake.state_pub.publish(String(data='armed'))
    assert harness.run_for(5.0, until=lambda: recorder.bridge_state == 'armed')
    fake.sending = harness.home.copy()
    assert _call(harness, clients['start']).success
    harness.run_for(1.5, fake.tick)
    fake.state_pub.publish(String(data='fault'))  # the arm stops; nothing sent any more
    fake.sending = None
    harness.run_for(1.5, fake.tick)
    response = _call(harness, clients['stop'])
    assert response.success, response.message  # it has usable rows: committed, flagged
    recorder.wait_for_commit()

    episode = DatasetReader(path).episode(0)
    flags = episode.flags
    assert (flags[:10] == 0).all() and (flags[-8:] & NOT_ARMED).all()
    assert (flags[-5:] & NO_ACTION).all() and np.isnan(episode.columns['action'][-5:, :7]).all()
    assert any(m.startswith("rows recorded while the safety bridge was 'fault'")
               for m in episode.marks)
    bad = int(np.argmax(~np.isfinite(episode.columns['action'][:, 0])))
    report = check_dataset(path, decode=False)
    assert not report.ok
    assert report.episodes[0].failures[0] == \
        f'episode 0 rows {bad}-{episode.length - 1}: action has NaN in fr3_joint1..7'

    # Recorded while the bridge stays faulted: nothing to keep.
    assert _call(harness, clients['start']).success
    harness.run_for(1.5, fake.tick)
    response = _call(harness, clients['stop'])
    assert not response.success
    assert response.message.startswith('episode 1: none of its ')
    assert 'the safety bridge was not armed' in response.message
    harness.run_for(0.5, until=lambda: fake.recorder_states[-1:] == ['idle'])
    assert any(s.startswith('refused 1: episode 1: none of its') for s in
               fake.recorder_states), fake.recorder_states
    assert fake.recorder_states[-1] == 'idle'
    assert len(DatasetReader(path)) == 1 and recorder.last_commit == response.message
