"""The sim node over real DDS: /clock, /joint_states, cameras, and commands like a real arm."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from support import spin_until
from visuomotor.robots.kinematics import tcp_pose
from visuomotor.ros.image_conversion import image_to_numpy
from visuomotor.ros.sim_node import SimNode
from visuomotor.ros.trajectory_conversion import trajectory_to_msg
from visuomotor.sim.episode import make_expert, observe
from visuomotor.trajectory import JointTrajectoryCommand


class Client(Node):
    """What a policy/bridge sees: subscriptions to the sim's outputs, command publishers."""

    def __init__(self, context, controllers) -> None:
        super().__init__('sim_client', context=context)
        self.joint_states: list[JointState] = []
        self.images: dict[str, list[Image]] = {'scene_camera': [], 'wrist_camera': []}
        self.infos: dict[str, list[CameraInfo]] = {'scene_camera': [], 'wrist_camera': []}
        self.clock: list[Clock] = []
        self.create_subscription(JointState, '/joint_states', self.joint_states.append, 50)
        self.create_subscription(Clock, '/clock', self.clock.append, 50)
        for name in self.images:
            self.create_subscription(Image, f'/{name}/image_raw', self.images[name].append, 10)
            self.create_subscription(CameraInfo, f'/{name}/camera_info',
                                     self.infos[name].append, 10)
        self.trajectory_pub = self.create_publisher(
            JointTrajectory, f'/{controllers.trajectory}/joint_trajectory', 10)
        self.position_pub = self.create_publisher(
            Float64MultiArray, f'/{controllers.position}/commands', 10)
        self.gripper_pub = self.create_publisher(
            Float64MultiArray, f'/{controllers.gripper}/commands', 10)


@pytest.fixture
def sim(ros_context):
    node = SimNode(context=ros_context, parameter_overrides=[
        Parameter('real_time_factor', value=0.0), Parameter('scene', value='fr3')])
    client = Client(ros_context, node.twin.robot.controllers)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(client)

    class Harness:
        def run_until(self, condition, sim_timeout_s=10.0):
            """Alternate DDS callbacks and sim ticks until condition() or sim timeout."""
            start = node.twin.time_s
            while not condition() and node.twin.time_s - start < sim_timeout_s:
                executor.spin_once(timeout_sec=0.0)
                node.tick()
            # Deliver what is in flight.
            spin_until(executor, condition, timeout_s=2.0)
            return condition()

        def run_for(self, sim_s):
            start = node.twin.time_s
            while node.twin.time_s - start < sim_s - 1e-9:
                executor.spin_once(timeout_sec=0.0)
                node.tick()
            for _ in range(20):
                executor.spin_once(timeout_sec=0.01)

    harness = Harness()
    harness.node, harness.client, harness.executor = node, client, executor
    yield harness
    executor.shutdown()
    client.destroy_node()
    node.destroy_node()


def _latest_positions(client: Client, names) -> np.ndarray:
    msg = client.joint_states[-1]
    return np.array([msg.position[list(msg.name).index(n)] for n in names])


def test_publishes_clock_joint_states_and_stamped_camera_frames(sim):
    robot = sim.node.twin.robot
    assert sim.run_until(lambda: len(sim.client.images['wrist_camera']) >= 3
                         and len(sim.client.joint_states) >= 20)
    state = sim.client.joint_states[-1]
    assert list(state.name) == list(robot.joint_names + robot.gripper.joint_names)
    np.testing.assert_allclose(_latest_positions(sim.client, robot.joint_names),
                               robot.home_rad, atol=2e-3)
    clock_s = [c.clock.sec + c.clock.nanosec * 1e-9 for c in sim.client.clock]
    assert all(b > a for a, b in zip(clock_s, clock_s[1:], strict=False))
    for name in ('scene_camera', 'wrist_camera'):
        image, info = sim.client.images[name][-1], sim.client.infos[name][-1]
        assert (image.width, image.height, image.encoding) == (96, 96, 'rgb8')
        assert image.header.stamp == info.header.stamp
        assert image.header.frame_id == f'{name}_optical_frame'
        assert image_to_numpy(image).std() > 5  # a rendered scene, not a blank frame
        k = sim.node.twin.camera_intrinsics(name).k
        np.testing.assert_allclose(info.k, k)
        stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9
                  for m in sim.client.images[name]]
        # 20 fps in simulated time, whatever the render speed.
        np.testing.assert_allclose(np.diff(stamps), 0.05, atol=1e-6)


def test_joint_trajectory_is_followed_and_bad_commands_are_rejected(sim, caplog):
    robot = sim.node.twin.robot
    home = np.array(robot.home_rad)
    goal = home + np.array([0.3, -0.2, 0.1, 0.25, 0.0, 0.2, -0.3])
    names = list(robot.joint_names)[::-1]  # any order, as joint_trajectory_controller allows
    command = JointTrajectoryCommand(tuple(names), ((1.0, tuple(goal[::-1]), (), ()),))
    sim.client.trajectory_pub.publish(trajectory_to_msg(command))
    sim.run_for(1.6)
    np.testing.assert_allclose(_latest_positions(sim.client, robot.joint_names), goal,
                               atol=3e-3)

    rejected_before = sim.node.rejected_commands
    bad = [
        JointTrajectoryCommand(('wrong_joint',) + tuple(robot.joint_names[1:]),
                               ((1.0, tuple(home), (), ()),)),
        JointTrajectoryCommand(robot.joint_names, ((1.0, tuple(home[:-1]), (), ()),)),
        JointTrajectoryCommand(robot.joint_names, ((1.0, (math.nan,) + tuple(home[1:]), (),
                                                    ()),)),
        JointTrajectoryCommand(robot.joint_names, ((1.0, tuple(home), (), ()),
                                                   (0.5, tuple(home), (), ()))),
    ]
    for command in bad:
        sim.client.trajectory_pub.publish(trajectory_to_msg(command))
    nan_positions = Float64MultiArray(data=[math.nan] * robot.dof)
    sim.client.position_pub.publish(nan_positions)
    sim.client.gripper_pub.publish(Float64MultiArray(data=[0.5]))
    assert sim.run_until(lambda: sim.node.rejected_commands == rejected_before + 6)
    sim.run_for(0.5)
    # The arm held the last good command.
    np.testing.assert_allclose(_latest_positions(sim.client, robot.joint_names), goal,
                               atol=3e-3)

    # A forward position command and a gripper command are accepted.
    sim.client.position_pub.publish(Float64MultiArray(data=list(home)))
    sim.client.gripper_pub.publish(Float64MultiArray(data=[0.02]))
    sim.run_for(1.5)
    np.testing.assert_allclose(_latest_positions(sim.client, robot.joint_names), home,
                               atol=5e-3)
    fingers = _latest_positions(sim.client, robot.gripper.joint_names)
    np.testing.assert_allclose(fingers, [0.01, 0.01], atol=1e-3)


def test_scripted_expert_solves_the_task_over_dds(sim):
    """The expert acting only through the ROS command topics succeeds, as for recording."""
    node, client = sim.node, sim.client
    twin = node.twin
    expert = make_expert(twin, rate_hz=10.0)
    period_s = 0.1
    next_tick = twin.time_s
    while not expert.done and twin.time_s < 25.0:
        if twin.time_s + 1e-9 >= next_tick:
            action = expert.act(observe(twin, node.task))
            client.trajectory_pub.publish(trajectory_to_msg(action.trajectory))
            client.gripper_pub.publish(Float64MultiArray(data=[action.gripper_width_m]))
            # Wait for delivery before simulated time moves on (a lock-step client).
            spin_until(sim.executor, lambda: node.twin.controller.mode == 'trajectory',
                       timeout_s=2.0)
            for _ in range(3):
                sim.executor.spin_once(timeout_sec=0.005)
            next_tick += period_s
        node.tick()
    sim.run_for(0.3)
    assert expert.done
    assert node.task.success(twin)
    tcp = tcp_pose(twin.robot, twin.arm_positions())
    assert np.all(np.isfinite(tcp))


def test_real_time_mode_waits_for_the_wall_clock_and_free_mode_does_not(ros_context):
    paced = SimNode(context=ros_context, parameter_overrides=[
        Parameter('real_time_factor', value=1.0)])
    try:
        for _ in range(250):  # 1 s of simulated time, far faster than the wall clock
            paced.tick()
        # Ahead of the wall clock by most of a second: the loop must wait, not tick.
        assert paced.wall_time_until_next_tick() > 0.5
    finally:
        paced.destroy_node()
    free = SimNode(context=ros_context, parameter_overrides=[
        Parameter('real_time_factor', value=0.0)])
    try:
        for _ in range(250):
            free.tick()
        assert free.wall_time_until_next_tick() == 0.0
    finally:
        free.destroy_node()


def test_sim_node_refuses_use_sim_time(ros_context):
    from visuomotor.errors import VisuomotorError
    with pytest.raises(VisuomotorError, match='use_sim_time:=false'):
        SimNode(context=ros_context, parameter_overrides=[Parameter('use_sim_time', value=True)])
