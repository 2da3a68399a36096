"""The policy node over DDS: frames and joint states in, stamped chunks out, refusals."""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64
from trajectory_msgs.msg import JointTrajectory

from support import make_test_bundle, spin_until
from visuomotor.robots.description import load_robot
from visuomotor.ros.image_conversion import numpy_to_image
from visuomotor.ros.policy_node import PolicyNode
from visuomotor.ros.policy_node import main as policy_main
from visuomotor.ros.stamps import ns_to_stamp, stamp_to_ns
from visuomotor.ros.trajectory_conversion import duration_to_s

SIZE = 32
PERIOD = 0.1


@pytest.fixture(scope='module')
def bundle(tmp_path_factory):
    return make_test_bundle(tmp_path_factory.mktemp('bundle') / 'policy', size=SIZE)


class Rig(Node):
    """Publishes two cameras at 30 Hz and joint states at 100 Hz; records what comes back."""

    def __init__(self, context, cameras=('scene_camera', 'wrist_camera')):
        super().__init__('fake_rig', context=context)
        self.robot = load_robot('fr3')
        self.rng = np.random.default_rng(0)
        self.pubs = {c: self.create_publisher(Image, f'/{c}/image_raw', 10) for c in cameras}
        self.live = dict.fromkeys(cameras, True)
        self.size = dict.fromkeys(cameras, SIZE)
        self.encoding = dict.fromkeys(cameras, 'rgb8')
        self.frame_stamps: list[float] = []
        self.joint_pub = self.create_publisher(JointState, '/joint_states', 10)
        self.commands: list[tuple[float, JointTrajectory]] = []
        self.gripper: list[float] = []
        self.diagnostics: list[str] = []
        self.diagnostic_keys: set[str] = set()
        self.create_subscription(JointTrajectory, '/safety_bridge/command', self._on_command, 50)
        self.create_subscription(Float64, '/safety_bridge/gripper',
                                 lambda m: self.gripper.append(m.data), 50)
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.create_timer(1 / 30, self._frames)
        self.create_timer(0.01, self._joints)

    def now(self):
        return self.get_clock().now().nanoseconds * 1e-9

    def _frames(self):
        stamp = ns_to_stamp(self.get_clock().now().nanoseconds)
        self.frame_stamps.append(stamp_to_ns(stamp) * 1e-9)
        for camera, pub in self.pubs.items():
            if self.live[camera]:
                size = self.size[camera]
                frame = self.rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                pub.publish(numpy_to_image(frame, self.encoding[camera], stamp=stamp))

    def _joints(self):
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = list(self.robot.joint_names)
        msg.position = [float(v) for v in self.robot.home_rad]
        self.joint_pub.publish(msg)

    def _on_command(self, msg):
        self.commands.append((self.now(), msg))

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.name == 'visuomotor: policy':
                self.diagnostics.append(status.message)
                self.diagnostic_keys.update(v.key for v in status.values)


#: These tests feed the node synthetic frames, not a calibrated rig: they start it with the
#: gate's override (the gate itself is tested below and in test_calibration_gate).
OVERRIDE = 'policy node test with synthetic frames and no rig'


def _graph(context, bundle, **params):
    overrides = [Parameter('model', value=str(bundle)), Parameter('backend',
                                                                  value='onnxruntime'),
                 Parameter('calibration_override', value=OVERRIDE)]
    overrides += [Parameter(k, value=v) for k, v in params.items()]
    policy = PolicyNode(context=context, parameter_overrides=overrides)
    rig = Rig(context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(policy)
    executor.add_node(rig)
    return policy, rig, executor


def _run(executor, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.01)


def _close(policy, rig, executor):
    executor.shutdown()
    policy.destroy_node()
    rig.destroy_node()


def test_frames_and_joint_states_in_stamped_chunks_out(ros_context, bundle):
    """Each command is stamped when issued; its rows sit on the observation's time grid."""
    policy, rig, executor = _graph(ros_context, bundle)
    try:
        assert spin_until(executor, lambda: len(rig.commands) >= 15, timeout_s=20.0)
        # Per-stage latency and per-camera health on /diagnostics (published once a second).
        assert spin_until(executor, lambda: 'inference_ms' in rig.diagnostic_keys, 5.0)
        assert {'observation_age_ms', 'preprocess_ms', 'inference_ms', 'publish_ms',
                'backend', 'camera scene_camera'} <= rig.diagnostic_keys
    finally:
        _close(policy, rig, executor)
    joints = list(load_robot('fr3').joint_names)
    frames = np.array(rig.frame_stamps)
    for received, msg in rig.commands:
        stamp = stamp_to_ns(msg.header.stamp) * 1e-9
        assert msg.joint_names == joints
        assert 0.0 <= received - stamp < 0.1  # issued at the tick, delivered promptly
        times = stamp + np.array([duration_to_s(p.time_from_start) for p in msg.points])
        assert len(times) >= 2 and np.all(times >= stamp - 1e-9)
        assert abs(times[0] - stamp) < 1e-6  # the plan starts at the tick (interpolated)
        assert 0.0 < times[1] - times[0] <= PERIOD + 1e-6
        np.testing.assert_allclose(np.diff(times[1:]), PERIOD, atol=1e-6)
        # Latency compensation: every chunk row time = some frame's capture time + k periods.
        steps = (times[1] - frames) / PERIOD
        assert np.any((np.abs(steps - np.round(steps)) < 1e-4) & (steps > -0.5))
        positions = np.array([p.positions for p in msg.points])
        assert positions.shape[1] == len(joints) and np.isfinite(positions).all()
    # Consecutive plans overlap without jumping: the untrained policy stays near home.
    home = np.array(load_robot('fr3').home_rad)
    last = np.array([p.positions for p in rig.commands[-1][1].points])
    assert np.abs(last - home).max() < 0.2
    assert rig.gripper and all(np.isfinite(rig.gripper))


def test_a_stale_camera_stops_the_output_and_says_why(ros_context, bundle):
    """One camera goes silent: no new chunks, the plan ages out, commands stop."""
    policy, rig, executor = _graph(ros_context, bundle, max_plan_age_s=0.5)
    try:
        assert spin_until(executor, lambda: len(rig.commands) >= 5, timeout_s=20.0)
        rig.live['wrist_camera'] = False
        silenced = rig.now()
        _run(executor, 2.5)
        last = rig.commands[-1][0]
        assert last - silenced < 0.5 + 0.2 + 0.15  # plan age + observation age + one tick
        assert any('stale' in m and 'wrist_camera' in m for m in rig.diagnostics)
        count = len(rig.commands)
        _run(executor, 0.5)
        assert len(rig.commands) == count  # and nothing more while it stays silent
        assert policy.loop.counters['refused_stale'] >= 1
    finally:
        _close(policy, rig, executor)


def test_a_wrong_sized_frame_never_produces_a_command(ros_context, bundle):
    """Frames of the wrong size are refused on arrival, naming both sizes; nothing is sent."""
    policy, rig, executor = _graph(ros_context, bundle)
    rig.size['scene_camera'] = SIZE + 8
    try:
        _run(executor, 2.0)
        assert rig.commands == []
        assert policy.loop.counters['scene_camera_frames_refused'] >= 10
        problem = policy.loop.problem()
        assert f'{SIZE + 8}x{SIZE + 8}x3' in problem and f'{SIZE}x{SIZE}x3' in problem
        assert any('scene_camera' in m and 'refusing' in m for m in rig.diagnostics)
    finally:
        _close(policy, rig, executor)


def test_a_bgr_camera_feeding_an_rgb_model_is_refused(ros_context, bundle):
    """A colour-order mismatch is refused on arrival, never run silently."""
    policy, rig, executor = _graph(ros_context, bundle)
    rig.encoding['wrist_camera'] = 'bgr8'
    try:
        _run(executor, 2.0)
        assert rig.commands == []
        assert 'bgr8' in policy.loop.problem() and 'rgb8' in policy.loop.problem()
    finally:
        _close(policy, rig, executor)


def test_inference_errors_of_any_kind_keep_the_loop_alive(ros_context, bundle):
    """A backend raising (e.g. an ONNX Runtime error) drops chunks but the loop retries."""
    policy, rig, executor = _graph(ros_context, bundle)
    real = policy.runtime.backend.run
    calls = {'n': 0}

    def flaky(inputs):
        calls['n'] += 1
        if calls['n'] <= 3:
            raise RuntimeError('simulated ONNX Runtime failure')
        return real(inputs)
    policy.runtime.backend.run = flaky
    try:
        assert spin_until(executor, lambda: len(rig.commands) >= 3, timeout_s=20.0)
        assert policy.loop.counters['inference_failed'] == 3
        assert policy.loop.inference_error == ''  # cleared by the first success
    finally:
        _close(policy, rig, executor)


@pytest.mark.parametrize(('args', 'expected'), [
    (['-p', 'robot:=ur5e'], ['proprio.joint_names', 'fr3_joint1', 'shoulder_pan_joint']),
    (['-p', 'control_rate_hz:=15.0'], ['control_rate_hz', '10 Hz', '15 Hz']),
    (['-p', 'camera_topics:=overhead=/cam/image_raw'], ['camera_topics', 'overhead']),
])
def test_a_model_that_does_not_match_the_rig_refuses_to_start(bundle, capsys, args, expected):
    """Exit code 2 and a message naming the model's value and the rig's."""
    code = policy_main(['policy_node', '--ros-args', '-p', f'model:={bundle}',
                        '-p', f'calibration_override:={OVERRIDE}', *args])
    assert code == 2
    error = capsys.readouterr().err
    assert 'refusing to start' in error
    for text in expected:
        assert text in error, error


def test_a_plain_onnx_file_is_refused(tmp_path, capsys, bundle):
    """An ONNX file without the embedded spec is not a bundle."""
    import onnx
    model = onnx.load(str(bundle / 'policy.onnx'))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / 'plain.onnx'))
    code = policy_main(['policy_node', '--ros-args', '-p', f'model:={tmp_path / "plain.onnx"}',
                        '-p', f'calibration_override:={OVERRIDE}'])
    assert code == 2
    assert 'not a visuomotor bundle' in capsys.readouterr().err


def test_without_a_passing_verification_the_policy_node_refuses_to_start(
        bundle, capsys, tmp_path, verified_rig):
    """The gate: no record, then a failed one; each exit 2 with what to run."""
    import shutil
    rig = tmp_path / 'twin_fr3'
    shutil.copytree(verified_rig, rig, ignore=shutil.ignore_patterns('verification'))
    code = policy_main(['policy_node', '--ros-args', '-p', f'model:={bundle}',
                        '-p', f'calibration:={rig}'])
    error = capsys.readouterr().err
    assert code == 2 and 'no verification record' in error, error
    assert f'visuomotor calibrate verify --rig {rig}' in error
    code = policy_main(['policy_node', '--ros-args', '-p', f'model:={bundle}'])
    assert code == 2 and 'no rig calibration given' in capsys.readouterr().err


def test_a_verified_rig_starts_and_an_override_is_loud(ros_context, bundle, verified_rig):
    verified = PolicyNode(context=ros_context, parameter_overrides=[
        Parameter('model', value=str(bundle)), Parameter('backend', value='onnxruntime'),
        Parameter('calibration', value=str(verified_rig))])
    try:
        assert verified.calibration.record_id.startswith('twin_fr3-')
        assert not verified.calibration.override
    finally:
        verified.destroy_node()
    policy, rig, executor = _graph(ros_context, bundle)
    try:
        assert policy.calibration.override == OVERRIDE
        assert spin_until(executor, lambda: any('WITHOUT a verified calibration' in m
                                                for m in rig.diagnostics), timeout_s=20.0)
        assert 'calibration' in rig.diagnostic_keys
    finally:
        _close(policy, rig, executor)


def test_live_overlays_show_feature_points_and_saliency_at_their_rate(ros_context, bundle):
    """debug_rate_hz: one rgb8 image per camera on ~/debug/<camera>, stamped with the
    observation time of the inference it shows, at no more than the rate; commands keep
    flowing at the control rate."""
    policy, rig, executor = _graph(ros_context, bundle, debug_rate_hz=4.0, debug_saliency=True,
                                   debug_saliency_rate_hz=2.0, debug_scale=3)
    received: dict[str, list[tuple[float, Image]]] = {'scene_camera': [], 'wrist_camera': []}
    for camera, images in received.items():
        rig.create_subscription(Image, f'/policy/debug/{camera}',
                                lambda m, images=images: images.append((rig.now(), m)), 10)
    try:
        assert spin_until(executor, lambda: all(len(v) >= 3 for v in received.values()),
                          timeout_s=20.0)
        start, commands = rig.now(), len(rig.commands)
        _run(executor, 2.0)
        elapsed, sent = rig.now() - start, len(rig.commands) - commands
        overlay = policy.overlays
        assert overlay is not None and overlay.published >= 3
    finally:
        _close(policy, rig, executor)
    frames = np.array(rig.frame_stamps)
    for camera, images in received.items():
        times = np.array([t for t, _ in images])
        # at most 4 per second (stamps of the inferences they came from, 1/4 s apart or more)
        stamps = np.array([stamp_to_ns(m.header.stamp) * 1e-9 for _, m in images])
        assert np.all(np.diff(stamps) >= 0.25 - PERIOD / 2), np.diff(stamps)
        assert len(times) <= 4.0 * (times[-1] - times[0]) + 2
        for _, msg in images:
            assert msg.encoding == 'rgb8' and msg.header.frame_id == camera
            # two panels (feature points | saliency), each the 32 px input enlarged 3 times,
            # under a caption bar
            assert msg.width == 2 * SIZE * 3 + 4 and msg.height == SIZE * 3 + 16
            # the observation time: its frames were captured within the 25 ms sync skew
            stamp = stamp_to_ns(msg.header.stamp) * 1e-9
            assert np.min(np.abs(frames - stamp)) <= 0.025 + 1e-6
    # The control loop kept its rate while overlays were drawn (10 Hz ticks).
    assert sent >= 0.7 * elapsed / PERIOD
