"""The twin as a ROS 2 node: the same topics as a real arm with cameras, on simulated time.

Publishes /clock, /joint_states, <camera>/image_raw + camera_info (stamped at render time),
the privileged /sim/object_pose and /sim/target_pose (for the scripted expert only), and
/diagnostics. Accepts JointTrajectory on /<trajectory controller>/joint_trajectory,
Float64MultiArray on /<position controller>/commands and /<gripper controller>/commands
(one value: the opening width in metres). Controller names come from the robot description
(config/robots/<robot>.yaml). Services: ~/reset (std_srvs/Trigger) starts the next seed.

With `lockstep_with:=<node names>` simulated time never runs past those nodes' progress
reports on /sim/lockstep (visuomotor.ros.lockstep): each of their ticks runs, and its output
reaches the twin, before the twin moves on, so a starved consumer slows the twin down instead
of seeing its clock race ahead of its queued messages. The commands already queued are
applied before every step.

Every other node should run with use_sim_time:=true.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray, Header
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from visuomotor.calibration.rig_files import calibration_folder, load_board
from visuomotor.errors import VisuomotorError
from visuomotor.robots.transforms import Matrix
from visuomotor.ros.image_conversion import intrinsics_to_camera_info, numpy_to_image
from visuomotor.ros.lockstep import TOPIC as LOCKSTEP_TOPIC
from visuomotor.ros.lockstep import lockstep_qos, on_report_msg
from visuomotor.ros.node_main import pose_to_msg, run_node
from visuomotor.ros.parameters import declare_parameters
from visuomotor.ros.pending import take_pending
from visuomotor.ros.stamps import ns_to_stamp
from visuomotor.ros.trajectory_conversion import trajectory_from_msg
from visuomotor.sim.calibration_capture import with_board
from visuomotor.sim.camera_noise import CameraNoise
from visuomotor.sim.config import load_scene
from visuomotor.sim.joint_trajectory import CommandError
from visuomotor.sim.lockstep import LockstepGate
from visuomotor.sim.node_schema import SIM_NODE_PARAMS
from visuomotor.sim.stepper import Stepper
from visuomotor.sim.task import PickPlaceTask
from visuomotor.sim.twin import Twin

#: Wall-clock seconds the loop may lag its real-time factor before it stops catching up.
MAX_PACING_DEBT_S = 0.02
#: While waiting for lockstep consumers: wall seconds between /clock repeats (a consumer that
#: missed the last best-effort clock message would otherwise never report past it) and
#: before the wait is logged.
CLOCK_REPEAT_S = 0.05
WAIT_WARNING_S = 5.0


def _stamp(seconds: float) -> Time:
    return ns_to_stamp(int(round(seconds * 1e9)))


def _pose_msg(pose: Matrix, seconds: float, frame_id: str) -> PoseStamped:
    return pose_to_msg(pose, _stamp(seconds), frame_id)


class SimNode(Node):
    """Thin ROS wrapper of Twin + Stepper (see the module docstring for the interface)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__('sim', **kwargs)  # type: ignore[arg-type]
        params = declare_parameters(self, SIM_NODE_PARAMS)
        if self.get_parameter('use_sim_time').value:
            raise VisuomotorError('the sim node publishes /clock itself: start it with '
                                  'use_sim_time:=false (the other nodes use true)')
        scene = load_scene(str(params['scene']))
        width, height = int(params['image_width']), int(params['image_height'])
        if width or height:
            if not (width and height):
                raise VisuomotorError('set both image_width and image_height, or neither')
            scene = scene.with_resolution(width, height)
        if params['calibration_board']:
            placement = load_board(calibration_folder(str(params['calibration_board'])))
            scene = with_board(scene, placement, resolution=None)
        self.twin = Twin(scene)
        self.task = PickPlaceTask(scene.task)
        self.seed = int(params['seed'])
        self.real_time_factor = float(params['real_time_factor'])
        self.world_frame = str(params['world_frame'])
        self.noise_std = float(params['camera_noise_std'])
        self.camera_noise = CameraNoise.for_episode(self.noise_std, self.seed)
        self.task.apply(self.twin, self.task.sample(self.seed))
        self.stepper = Stepper(self.twin, float(params['tick_s']),
                               float(params['joint_state_rate_hz']))
        robot = scene.robot
        self._joint_names = list(robot.joint_names + robot.gripper.joint_names)

        self.clock_pub = self.create_publisher(Clock, '/clock', 10)
        self.joint_pub = self.create_publisher(JointState, '/joint_states', 10)
        self.object_pub = self.create_publisher(PoseStamped, '/sim/object_pose', 10)
        self.target_pub = self.create_publisher(PoseStamped, '/sim/target_pose', 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        sensor_qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.image_pubs = {c.name: self.create_publisher(Image, f'{c.name}/image_raw',
                                                         sensor_qos) for c in scene.cameras}
        self.info_pubs = {c.name: self.create_publisher(CameraInfo, f'{c.name}/camera_info',
                                                        sensor_qos) for c in scene.cameras}
        # Built once; each frame only restamps it (rclpy serialises inside publish()).
        self._infos = {c.name: intrinsics_to_camera_info(
            c.intrinsics(), frame_id=f'{c.name}_optical_frame') for c in scene.cameras}
        self._image_msgs: dict[str, Image] = {}
        controllers = robot.controllers
        self._inputs = [  # handled first at every step: apply what has arrived
            (self.create_subscription(JointTrajectory,
                                      f'/{controllers.trajectory}/joint_trajectory',
                                      self._on_trajectory, 10), self._on_trajectory),
            (self.create_subscription(Float64MultiArray, f'/{controllers.position}/commands',
                                      self._on_positions, 10), self._on_positions),
            (self.create_subscription(Float64MultiArray, f'/{controllers.gripper}/commands',
                                      self._on_gripper, 10), self._on_gripper)]
        self.create_service(Trigger, '~/reset', self._on_reset)
        self.lockstep = LockstepGate.from_names(str(params['lockstep_with']),
                                                float(params['max_lead_s']),
                                                float(params['lockstep_silence_s']))
        self._gone: set[str] = set()
        self.lockstep.restart(self.twin.time_s)
        if self.lockstep.consumers:
            def on_report(msg: Header) -> None:
                on_report_msg(self.lockstep, msg, self.twin.time_s)
            self._inputs.append((self.create_subscription(Header, LOCKSTEP_TOPIC, on_report,
                                                          lockstep_qos()), on_report))
        self._until: float | None = None
        self._waiting_since: float | None = None
        self._clock_repeated = 0.0
        self.lockstep_wait_s = 0.0
        self.rejected_commands = 0
        self._wall_start = time.monotonic()
        self._sim_start = self.twin.time_s
        self._pace_wall, self._pace_sim = self._wall_start, self._sim_start
        self._next_diagnostics = 0.0
        self.get_logger().info(
            f'twin {robot.name} ({scene.source}): cameras {list(self.image_pubs)}, commands on '
            f'/{controllers.trajectory}/joint_trajectory, /{controllers.position}/commands, '
            f'/{controllers.gripper}/commands; real_time_factor {self.real_time_factor}'
            + (f'; lockstep with {", ".join(self.lockstep.consumers)} (lead '
               f'{self.lockstep.max_lead_s:g} s)' if self.lockstep.consumers else ''))

    # -- commands ------------------------------------------------------------------------

    def _reject(self, topic: str, error: CommandError) -> None:
        self.rejected_commands += 1
        self.get_logger().error(f'rejected command on {topic}: {error}; the arm holds its '
                                f'current command')

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        try:
            self.twin.controller.command_trajectory(trajectory_from_msg(msg), self.twin.time_s)
        except CommandError as error:
            self._reject('joint_trajectory', error)

    def _on_positions(self, msg: Float64MultiArray) -> None:
        try:
            self.twin.controller.command_positions(list(msg.data), self.twin.time_s)
        except CommandError as error:
            self._reject('position commands', error)

    def _on_gripper(self, msg: Float64MultiArray) -> None:
        try:
            if len(msg.data) != 1:
                raise CommandError('data', f'must hold one value (the opening width in m), '
                                   f'got {len(msg.data)}')
            self.twin.controller.command_gripper(float(msg.data[0]), self.twin.time_s)
        except CommandError as error:
            self._reject('gripper commands', error)

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response
                  ) -> Trigger.Response:
        self.seed += 1
        self.task.apply(self.twin, self.task.sample(self.seed))
        self.camera_noise = CameraNoise.for_episode(self.noise_std, self.seed)
        self.stepper.restart()
        self.lockstep.restart(self.twin.time_s)
        # The new timeline starts now, on every node: their timers restart from this instant
        # (rcl restarts a timer one period after the jump it sees), so their ticks fall on
        # the same multiples of their periods as in the in-process rollout.
        self.clock_pub.publish(Clock(clock=_stamp(self.twin.time_s)))
        self._wall_start = time.monotonic()
        self._sim_start = self.twin.time_s
        self._pace_wall, self._pace_sim = self._wall_start, self._sim_start
        response.success = True
        response.message = f'reset to seed {self.seed}; simulated time restarts at 0'
        return response

    # -- the loop ------------------------------------------------------------------------

    def wall_time_until_next_tick(self) -> float:
        """Seconds to wait before the next tick keeps the real-time factor (0: now)."""
        if self.real_time_factor <= 0:
            return 0.0
        now = time.monotonic()
        due = self._pace_wall + (self.twin.time_s + self.stepper.tick_s - self._pace_sim) \
            / self.real_time_factor
        if due < now - MAX_PACING_DEBT_S:
            # Fell behind (a slow render, a GC pause): slow the simulated clock down instead
            # of bursting ticks, which would starve every subscriber on simulated time.
            self._pace_wall, self._pace_sim = now, self.twin.time_s
            return 0.0
        return max(due - now, 0.0)

    def waiting_for_consumers(self) -> bool:
        """Whether a lockstep consumer does not let the clock move yet (then wait).

        Handles the commands and reports already queued first. While waiting, the current
        /clock is repeated now and then and a long wait is logged.
        """
        for subscription, handle in self._inputs:
            take_pending(subscription, handle)
        wall = time.monotonic()
        gone = set(self.lockstep.gone(wall))
        for name in sorted(gone - self._gone):
            self.get_logger().warning(
                f'lockstep: {name} has not reported for {self.lockstep.silence_s:g} s (dead or '
                'hung?): simulated time goes on without it until it reports again')
        for name in sorted(self._gone - gone):
            self.get_logger().info(f'lockstep: {name} reports again')
        self._gone = gone
        self._until = self.lockstep.until(wall)
        half_step = self.twin.timestep_s / 2.0
        behind = self.lockstep.behind(self.twin.time_s + half_step, wall)
        if not behind:
            if self._waiting_since is not None:
                self.lockstep_wait_s += wall - self._waiting_since
                self._waiting_since = None
            return False
        if self._waiting_since is None:
            self._waiting_since = wall
        if wall - self._clock_repeated >= CLOCK_REPEAT_S:
            self._clock_repeated = wall
            self.clock_pub.publish(Clock(clock=_stamp(self.twin.time_s)))
        if wall - self._waiting_since >= WAIT_WARNING_S:
            self.get_logger().warning(
                f'simulated time held at {self.twin.time_s:.3f} s for '
                f'{wall - self._waiting_since:.0f} s: waiting for {", ".join(behind)} '
                '(lockstep); is it running and on use_sim_time?', throttle_duration_sec=10.0)
        return True

    def tick(self) -> None:
        """Advance one tick (in lockstep: not past what the consumers allow) and publish."""
        output = self.stepper.tick(self._until)
        now = output.time_s
        stamp = _stamp(now)
        if output.joint_state is not None:
            state = output.joint_state
            msg = JointState(name=self._joint_names)
            msg.header.stamp = stamp
            msg.position = state.positions.tolist()
            msg.velocity = state.velocities.tolist()
            msg.effort = state.efforts.tolist()
            self.joint_pub.publish(msg)
            self.object_pub.publish(_pose_msg(self.twin.object_pose(), now, self.world_frame))
            target = np.eye(4)
            target[:2, 3] = self.task.target_xy(self.twin)
            self.target_pub.publish(_pose_msg(target, now, self.world_frame))
        for name, (capture_s, image) in output.images.items():
            capture = _stamp(capture_s)
            image = self.camera_noise(image)
            frame_id = f'{name}_optical_frame'
            out = self._image_msgs.get(name)
            self._image_msgs[name] = numpy_to_image(image, 'rgb8', stamp=capture,
                                                    frame_id=frame_id, out=out)
            self.image_pubs[name].publish(self._image_msgs[name])
            info = self._infos[name]
            info.header.stamp = capture
            self.info_pubs[name].publish(info)
        # The clock last: a node whose timer fires on this instant finds its measurements
        # already sent (a camera frame and its tick at the same time, as in the rollout).
        self.clock_pub.publish(Clock(clock=stamp))
        if now >= self._next_diagnostics:
            self._publish_diagnostics(now)
            self._next_diagnostics = now + 1.0

    def _publish_diagnostics(self, now: float) -> None:
        wall = time.monotonic() - self._wall_start
        achieved = (now - self._sim_start) / wall if wall > 0 else 0.0
        status = DiagnosticStatus(name='visuomotor sim: twin', hardware_id=self.twin.robot.name)
        behind = self.real_time_factor > 0 and achieved < 0.9 * self.real_time_factor \
            and wall > 2.0
        status.level = DiagnosticStatus.WARN if behind else DiagnosticStatus.OK
        status.message = (f'running at {achieved:.2f}x real time (target '
                          f'{self.real_time_factor}x)' if behind else 'running')
        status.values = [KeyValue(key='sim_time_s', value=f'{now:.3f}'),
                         KeyValue(key='achieved_real_time_factor', value=f'{achieved:.3f}'),
                         KeyValue(key='lockstep_wait_s', value=f'{self.lockstep_wait_s:.3f}'),
                         KeyValue(key='rejected_commands', value=str(self.rejected_commands)),
                         KeyValue(key='seed', value=str(self.seed))]
        array = DiagnosticArray(status=[status])
        array.header.stamp = _stamp(now)
        self.diagnostics_pub.publish(array)

    def destroy_node(self) -> None:
        """Release the renderers with the node (none yet if it refused to start)."""
        twin = getattr(self, 'twin', None)
        if twin is not None:
            twin.close()
        super().destroy_node()


def spin_sim(node: SimNode, executor: SingleThreadedExecutor) -> None:
    """Run the sim loop: handle callbacks, keep the real-time factor, tick."""
    while rclpy.ok(context=executor.context):
        wait = node.wall_time_until_next_tick()
        executor.spin_once(timeout_sec=wait)
        if node.wall_time_until_next_tick() > 0.0:
            continue
        if node.waiting_for_consumers():
            executor.spin_once(timeout_sec=0.002)  # their reports arrive as callbacks
            continue
        node.tick()


def main(args: list[str] | None = None) -> int:
    """Entry point of the `sim_node` executable."""
    return run_node('sim_node', SimNode, args, spin_sim)

if __name__ == '__main__':
    sys.exit(main())
