"""Teleoperation on the twin over DDS, on simulated time: a scripted Quest (PoseStamped +
Joy, like the simulated Quest node) drives the teleop node, whose targets go through the real
safety bridge to the MuJoCo twin. What the arm did is read back from /joint_states."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Joy
from trajectory_msgs.msg import JointTrajectory

from visuomotor.robots.kinematics import tcp_pose
from visuomotor.robots.transforms import quat_from_matrix, rotation_vector
from visuomotor.ros.teleop_node import TeleopNode
from visuomotor.ros.twin_graph import BridgeHarness
from visuomotor.teleop.config import load_teleop_config
from visuomotor.teleop.scripted import HEADSET_FRAME, ScriptedQuest, Segment

RATE_HZ = 50.0
WATCHDOG_S = 0.15  # the bridge's default
R_HB = load_teleop_config('sim_quest').headset_to_base


class Quest(Node):
    """Publishes a ScriptedQuest (sim-time stamps) and records the teleop's commands."""

    def __init__(self, context, script: ScriptedQuest) -> None:
        super().__init__('test_quest', context=context,
                         parameter_overrides=[Parameter('use_sim_time', value=True)])
        self.script = script
        self.pose_pub = self.create_publisher(PoseStamped, '/quest/right/pose', 20)
        self.joy_pub = self.create_publisher(Joy, '/quest/right/joy', 20)
        self.commands: list[float] = []  # sim receive times of teleop commands
        self.create_subscription(JointTrajectory, '/safety_bridge/command',
                                 lambda m: self.commands.append(self.now()), 50)
        self.start: float | None = None
        self.published: list[float] = []  # script times of published poses
        self._next = 0.0
        self.corrupt = None  # optional f(msg, joy) applied before publishing

    def now(self) -> float:
        return float(self.get_clock().now().nanoseconds) * 1e-9

    def tick(self, now: float) -> None:
        if self.start is None or now + 1e-9 < self._next:
            return
        self._next = now + 1.0 / RATE_HZ
        t = now - self.start
        sample = self.script.sample(min(t, self.script.duration_s))
        if not sample.tracked:
            return
        pose = PoseStamped()
        pose.header.stamp = self.get_clock().now().to_msg()
        pose.header.frame_id = HEADSET_FRAME
        p = pose.pose.position
        p.x, p.y, p.z = (float(v) for v in sample.position)
        w, x, y, z = quat_from_matrix(sample.rotation)
        o = pose.pose.orientation
        o.w, o.x, o.y, o.z = float(w), float(x), float(y), float(z)
        inputs = sample.inputs
        joy = Joy(axes=[inputs.grip, inputs.trigger],
                  buttons=[int(inputs.lower), int(inputs.upper)])
        if self.corrupt is not None:
            self.corrupt(pose, joy)
        self.joy_pub.publish(joy)
        self.pose_pub.publish(pose)
        self.published.append(t)


@pytest.fixture
def teleop(ros_context):
    harness = BridgeHarness(ros_context)
    node = TeleopNode(context=ros_context, parameter_overrides=[
        Parameter('use_sim_time', value=True), Parameter('teleop', value='sim_quest'),
        Parameter('robot', value='fr3')])
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield harness, node
    executor.shutdown()
    thread.join(timeout=5.0)
    node.destroy_node()
    harness.close()


def _play(harness, node, context, segments, jitter_m=0.0003, corrupt=None):
    """Arm, play the script to its end (plus 0.5 s), return the Quest node."""
    quest = Quest(context, ScriptedQuest(segments, jitter_m=jitter_m, seed=1))
    quest.corrupt = corrupt
    harness.executor.add_node(quest)
    harness.arm()
    assert harness.run_for(3.0, until=lambda: node.core.measured is not None
                           and quest.pose_pub.get_subscription_count() > 0)
    quest.start = harness.client.now()
    harness.run_for(quest.script.duration_s + 0.5, quest.tick)
    return quest


def _tcp(harness):
    """(script time, TCP pose) of every joint state the twin published."""
    robot = harness.sim.twin.robot
    return [(stamp, tcp_pose(robot, q)) for stamp, q, _ in harness.client.record.joint_states]


def _expected(script, t, t_engage, ee0):
    position, rotation = script.exact(t)
    start, start_rotation = script.exact(t_engage)
    target = ee0.copy()
    target[:3, 3] += R_HB @ (position - start)
    target[:3, :3] = R_HB @ rotation @ start_rotation.T @ R_HB.T @ ee0[:3, :3]
    return target


def test_a_scripted_trajectory_moves_the_end_effector_along_the_expected_path(
        ros_context, teleop):
    harness, node = teleop
    segments = [Segment(0.6, label='idle'), Segment(0.6, grip=True, label='clutch'),
                Segment(2.5, move_m=(0.03, 0.0, -0.06), grip=True, label='forward, right'),
                Segment(2.0, move_m=(0.0, -0.05, 0.0), turn_rad=(0.0, 0.2, 0.0), grip=True,
                        label='down, turning'),
                Segment(1.0, grip=True, label='hold'), Segment(0.5, label='release')]
    quest = _play(harness, node, ros_context, segments)
    t_engage = 0.6
    poses = [(s - quest.start, pose) for s, pose in _tcp(harness)]
    ee0 = next(pose for t, pose in poses if t >= t_engage)
    path = np.array([_expected(quest.script, t, t_engage, ee0)[:3, 3]
                     for t in np.arange(t_engage, 6.7, 0.002)])
    followed = np.array([pose[:3, 3] for t, pose in poses if t_engage <= t <= 6.7])
    distance = np.array([np.min(np.linalg.norm(path - p, axis=1)) for p in followed])
    assert distance.max() < 0.004, distance.max()  # on the path (lagging along it is fine)
    final = next(pose for t, pose in poses if t >= 6.6)
    expected = _expected(quest.script, 6.6, t_engage, ee0)
    assert np.linalg.norm(final[:3, 3] - expected[:3, 3]) < 0.002
    assert np.linalg.norm(rotation_vector(final[:3, :3].T @ expected[:3, :3])) < 0.01
    travelled = np.linalg.norm(final[:3, 3] - ee0[:3, 3])
    assert 0.075 < travelled < 0.085  # sqrt(3^2 + 6^2 + 5^2) cm: scale 1 in the base frame
    # In the base frame: forward (headset -z) is +x, right (headset +x) is -y, down is -z.
    np.testing.assert_allclose(final[:3, 3] - ee0[:3, 3], [0.06, -0.03, -0.05], atol=0.002)
    assert node.core.counters.get('target_out_of_reach', 0) == 0


def test_releasing_and_reengaging_the_clutch_does_not_jump(ros_context, teleop):
    harness, node = teleop
    segments = [Segment(0.5, label='idle'), Segment(0.5, grip=True, label='clutch'),
                Segment(2.0, move_m=(0.0, 0.0, -0.05), grip=True, label='forward'),
                Segment(0.6, label='released'),
                Segment(1.2, move_m=(0.0, 0.0, 0.08), label='hand back, unclutched'),
                Segment(1.0, grip=True, label='re-clutched, still'),
                Segment(1.5, move_m=(0.0, 0.0, -0.03), grip=True, label='forward again'),
                Segment(0.5, label='released')]
    quest = _play(harness, node, ros_context, segments)
    poses = [(s - quest.start, pose[:3, 3]) for s, pose in _tcp(harness)]

    def at(t):
        return next(p for s, p in poses if s >= t)

    # Released: the last command was sent with the last clutched pose, and the bridge's
    # watchdog stopped the arm within its bound.
    release = 3.0
    last_command = max(c for c in quest.commands if c - quest.start < release + 0.1)
    stops = [t for t, state in harness.client.record.states
             if state in ('stopping', 'holding') and t > last_command]
    assert stops and stops[0] - last_command <= WATCHDOG_S + 0.03, stops[:1]
    # The hand moving back 8 cm unclutched does not move the arm.
    assert np.linalg.norm(at(4.7) - at(3.4)) < 0.001
    # Re-engaging re-anchors: no jump while the hand is still, then the motion resumes.
    held = np.array([p for s, p in poses if 4.8 <= s <= 5.8])
    assert np.linalg.norm(held - at(4.8), axis=1).max() < 0.001
    moved = at(7.3) - at(5.8)
    np.testing.assert_allclose(moved, [0.03, 0.0, 0.0], atol=0.002)
    assert node.core.counters['clutch_engaged'] == 2


def test_losing_the_controller_stream_stops_the_arm_and_needs_a_fresh_grip(
        ros_context, teleop, capfd):
    harness, node = teleop
    segments = [Segment(0.5, label='idle'), Segment(0.5, grip=True, label='clutch'),
                Segment(1.5, move_m=(0.0, 0.0, -0.04), grip=True, label='forward'),
                Segment(1.5, move_m=(0.0, 0.0, -0.04), grip=True, tracked=False,
                        label='lost (hand keeps moving)'),
                Segment(1.5, move_m=(0.0, 0.0, -0.04), grip=True,
                        label='back, grip still held')]
    quest = _play(harness, node, ros_context, segments)
    lost = max(t for t in quest.published if t < 2.6) + quest.start
    stops = [t for t, state in harness.client.record.states
             if state in ('stopping', 'holding') and t > lost]
    # Stops within the watchdog of the last command (one pose period, two bridge ticks);
    # the arm is already at the last target by then (each target holds after lead_s).
    assert stops and stops[0] - lost <= WATCHDOG_S + 1.0 / RATE_HZ + 0.02, stops[0] - lost
    speeds = [(s, np.abs(v).max()) for s, _, v in harness.client.record.joint_states]
    assert max(v for s, v in speeds if s > stops[0] + 0.5) < 1e-3  # at rest
    # The stream returns with the grip held: no command until the grip is pressed again.
    back = quest.start + 3.5
    assert [c for c in quest.commands if c > back] == []
    poses = [(s - quest.start, pose[:3, 3]) for s, pose in _tcp(harness)]
    rest = np.array([p for s, p in poses if s > 3.2])
    assert np.linalg.norm(rest - rest[0], axis=1).max() < 0.001
    assert node.core.counters['stream_releases'] >= 1
    assert 'controller pose stream silent' in capfd.readouterr().err


def _nan_position(pose, joy):
    pose.pose.position.x = math.nan


def _unknown_frame(pose, joy):
    pose.header.frame_id = 'world'


def _out_of_order(pose, joy):
    pose.header.stamp.sec -= 1 if _out_of_order.first_sent else 0  # type: ignore[attr-defined]
    _out_of_order.first_sent = True  # type: ignore[attr-defined]


def _short_joy(pose, joy):
    joy.axes = [1.0]


@pytest.mark.parametrize(('corrupt', 'field'), [
    (_nan_position, 'pose.position'), (_unknown_frame, 'header.frame_id'),
    (_out_of_order, 'header.stamp'), (_short_joy, 'joy.axes')])
def test_bad_controller_input_is_refused_with_a_log_line_and_no_motion(
        ros_context, teleop, capfd, corrupt, field):
    harness, node = teleop
    _out_of_order.first_sent = False  # type: ignore[attr-defined]
    segments = [Segment(0.5, label='idle'), Segment(0.5, grip=True, label='clutch'),
                Segment(2.0, move_m=(0.0, 0.0, -0.05), grip=True, label='forward')]
    quest = _play(harness, node, ros_context, segments, corrupt=corrupt)
    assert quest.commands == []
    poses = np.array([pose[:3, 3] for _, pose in _tcp(harness)])
    assert np.linalg.norm(poses - poses[0], axis=1).max() < 0.0005
    assert node.core.counters[f'rejected_{field}'] >= 10
    err = capfd.readouterr().err
    assert f'controller input refused, no motion: {field}' in err, err[-2000:]


def test_quest2ros_without_its_message_package_refuses_to_start(capfd):
    from visuomotor.ros.teleop_node import main

    assert main(['teleop_node', '--ros-args', '-p', 'teleop:=quest2ros']) == 2
    err = capfd.readouterr().err
    assert 'quest2ros message package is not installed' in err and 'source: joy' in err


def test_quest2ros_inputs_follow_the_published_message_definition():
    """OVR2ROSInputs (quest2ros msg/OVR2ROSInputs.msg): button_upper, button_lower,
    thumb_stick_horizontal, thumb_stick_vertical, press_index, press_middle."""
    from types import SimpleNamespace

    from visuomotor.ros.teleop_sources import inputs_from_joy, inputs_from_quest2ros
    from visuomotor.teleop.inputs import TeleopInputError

    msg = SimpleNamespace(button_upper=True, button_lower=False, thumb_stick_horizontal=0.3,
                          thumb_stick_vertical=-0.2, press_index=0.9, press_middle=0.7)
    inputs = inputs_from_quest2ros(msg)
    assert (inputs.grip, inputs.trigger, inputs.lower, inputs.upper) == (0.7, 0.9, False, True)
    msg.press_middle = math.nan
    with pytest.raises(TeleopInputError, match='inputs.grip'):
        inputs_from_quest2ros(msg)
    layout = load_teleop_config('sim_quest').joy
    joy = Joy(axes=[0.2, 1.4], buttons=[1, 0])
    inputs = inputs_from_joy(joy, layout)
    assert (inputs.trigger, inputs.lower, inputs.upper) == (1.0, True, False)  # clipped
    assert inputs.grip == pytest.approx(0.2)  # float32 in the message
