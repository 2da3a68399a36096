"""The teleop node: Quest controller -> clutch mapping -> IK -> the safety bridge.

Subscribes: the controller source's topics (visuomotor.ros.teleop_sources), /joint_states,
the recorder's `<recorder>/state` (latched). Publishes `<bridge>/command`
(trajectory_msgs/JointTrajectory: one point, `lead_s` after its stamp, exactly like a policy
chunk, so the bridge's limits, watchdog and source checks apply unchanged) and
`<bridge>/gripper` (std_msgs/Float64 width), the source's haptic feedback, `~/state`
(latched String: released | clutched | homing | aligning) and /diagnostics.
Calls the recorder's `~/start`, `~/stop`, `~/discard` (std_srvs/Trigger) on the buttons.
Service `~/align` (std_srvs/Trigger): the next grip-held stroke (>= 10 cm, towards the
robot's front) measures the headset's yaw instead of moving the arm.

The deadman: a target is published only for a fresh, checked controller pose while the grip
is held, so releasing the grip, losing the controller (pose or inputs silent for
`input_timeout_s`) or a refused input leaves the bridge without commands, and its watchdog
stops the arm within `watchdog_s` of the last one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.client import Client
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from visuomotor.robots.description import load_robot
from visuomotor.robots.transforms import rpy_from_matrix
from visuomotor.ros.lockstep import LockstepReporter
from visuomotor.ros.node_main import run_node
from visuomotor.ros.parameters import declare_parameters
from visuomotor.ros.teleop_sources import PoseFields, make_source
from visuomotor.ros.trajectory_conversion import trajectory_to_msg
from visuomotor.safety.profile import load_safety_profile
from visuomotor.teleop.config import load_teleop_config
from visuomotor.teleop.core import JointTarget, TeleopCore
from visuomotor.teleop.haptics import HapticPlayer
from visuomotor.teleop.inputs import ControllerInputs, TeleopInputError, pose_from_fields
from visuomotor.teleop.mapping import ALIGN_FAILED, ALIGNED, DISCARD, TOGGLE_EPISODE
from visuomotor.teleop.node_schema import TELEOP_NODE_PARAMS
from visuomotor.trajectory import JointTrajectoryCommand

GRIPPER_REPEAT_S = 0.5


class TeleopNode(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__('teleop', **kwargs)  # type: ignore[arg-type]
        params = declare_parameters(self, TELEOP_NODE_PARAMS)
        self.config = load_teleop_config(str(params['teleop']))
        self.robot = load_robot(str(params['robot']))
        limits = load_safety_profile(str(params['robot']), str(params['tier']), '').limits
        self.core = TeleopCore(self.config, self.robot, (limits.lower_rad, limits.upper_rad))
        self.source = make_source(self, self.config, self._on_pose, self._on_inputs,
                                  self._on_input_error)
        self._last_stamp: float | None = None
        self._recorder_state = ''
        self._haptics = HapticPlayer()
        self._gripper_sent: tuple[float, float] | None = None  # (width, time)
        self._published_state = ''
        self.last_error = ''
        self.ik_error_m = 0.0
        bridge = str(params['bridge']).rstrip('/')
        recorder = str(params['recorder']).rstrip('/')
        self.command_pub = self.create_publisher(JointTrajectory, f'{bridge}/command', 20)
        self.gripper_pub = self.create_publisher(Float64, f'{bridge}/gripper', 10)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.state_pub = self.create_publisher(String, '~/state', latched)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_subscription(JointState, '/joint_states', self._on_joint_state, 50)
        self.create_subscription(String, f'{recorder}/state', self._on_recorder_state, latched)
        self.recorder_clients: dict[str, Client] = {
            name: self.create_client(Trigger, f'{recorder}/{name}')
            for name in ('start', 'stop', 'discard')}
        self.create_service(Trigger, '~/align', self._align)
        tick_timer = self.create_timer(1.0 / float(params['timer_rate_hz']), self._tick)
        self.create_timer(1.0, self._publish_diagnostics)
        self.lockstep = LockstepReporter(self, bool(params['lockstep']))
        self.lockstep.follow(tick_timer)
        self._publish_state()
        cfg = self.config
        roll, pitch, yaw = (math.degrees(a) for a in rpy_from_matrix(cfg.headset_to_base))
        self.get_logger().info(
            f'teleop {cfg.name}: {self.source.description} (frame {cfg.frame_id!r}, '
            f'{cfg.hand} hand) -> {bridge}/command for {self.robot.name}; headset-to-base '
            f'rpy [{roll:.1f}, {pitch:.1f}, {yaw:.1f}] deg, scales {cfg.translation_scale:g} / '
            f'{cfg.rotation_scale:g}; grip = clutch, trigger = gripper, A/X = start/stop '
            'episode, B/Y = discard (recording) or hold to move home (idle)')

    def _now(self) -> float:
        return float(self.get_clock().now().nanoseconds) * 1e-9

    @property
    def recording(self) -> bool:
        """Whether the recorder says it is recording."""
        return self._recorder_state.startswith('recording')

    # -- inputs -----------------------------------------------------------------------------

    def _on_joint_state(self, msg: JointState) -> None:
        index = {name: i for i, name in enumerate(msg.name)}
        try:
            q = np.array([msg.position[index[n]] for n in self.robot.joint_names])
        except (KeyError, IndexError):
            self.core.count('joint_states_incomplete')
            return
        if np.all(np.isfinite(q)):
            self.core.on_joint_state(q)

    def _on_input_error(self, error: TeleopInputError) -> None:
        self.core.count(f'rejected_{error.field}')
        self.last_error = str(error)
        self.get_logger().error(f'controller input refused, no motion: {error}',
                                throttle_duration_sec=1.0)

    def _on_pose(self, fields: PoseFields) -> None:
        stamp, frame, position, quaternion = fields
        try:
            pose = pose_from_fields(stamp, frame, position, quaternion, self.config.frame_id,
                                    self._last_stamp)
        except TeleopInputError as error:
            self._on_input_error(error)
            return
        self._last_stamp = stamp
        now = self._now()
        target = self.core.on_pose(now, pose)
        if target is not None:
            self._send(target, now)
            self.ik_error_m = target.position_error_m
        self._publish_state()

    def _on_inputs(self, inputs: ControllerInputs) -> None:
        now = self._now()
        for event in self.core.on_inputs(now, inputs, self.recording):
            self._on_event(event, now)
        self._send_gripper(now)
        self._publish_state()

    def _on_recorder_state(self, msg: String) -> None:
        self._recorder_state = msg.data

    # -- outputs ----------------------------------------------------------------------------

    def _send(self, target: JointTarget, now: float) -> None:
        command = JointTrajectoryCommand(
            tuple(self.robot.joint_names),
            ((target.time_from_stamp_s, tuple(float(v) for v in target.q), (), ()),), now)
        self.command_pub.publish(trajectory_to_msg(command))

    def _send_gripper(self, now: float) -> None:
        """Publish the gripper width on change, and repeated.

        The bridge drops widths until the first arm command fixes the sources, and drops
        unchanged ones.
        """
        width = self.core.gripper_width_m
        sent = self._gripper_sent
        if sent is None or sent[0] != width or now - sent[1] >= GRIPPER_REPEAT_S:
            self.gripper_pub.publish(Float64(data=width))
            self._gripper_sent = (width, now)

    def _on_event(self, event: str, now: float) -> None:
        if event == TOGGLE_EPISODE:
            if self.recording:
                self._call_recorder('stop', 'stopped', now)
            elif self._recorder_state == 'idle':
                self._call_recorder('start', 'started', now)
            else:
                self._refuse(f'episode button: the recorder is '
                             f'{self._recorder_state or "not running"}', now)
        elif event == DISCARD:
            self._call_recorder('discard', 'discarded', now)
        elif event == ALIGNED:
            mapping = self.core.mapping
            roll, pitch, yaw = (math.degrees(a) for a in
                                rpy_from_matrix(mapping.headset_to_base))
            self.get_logger().warning(
                f'headset yaw corrected by {math.degrees(mapping.yaw_correction_rad):.1f} deg; '
                f'to keep it, set in {self.config.source_file}: headset_to_base_rpy_deg: '
                f'[{roll:.1f}, {pitch:.1f}, {yaw:.1f}]')
            self._haptics.add('aligned', now)
        elif event == ALIGN_FAILED:
            self._refuse('alignment stroke shorter than 10 cm horizontally: nothing changed; '
                         'call ~/align again', now)
        else:
            self.get_logger().info(f'button: {event}')

    def _call_recorder(self, service: str, feedback: str, now: float) -> None:
        client = self.recorder_clients[service]
        if not client.service_is_ready():
            self._refuse(f'no recorder answers {client.srv_name}', now)
            return
        future = client.call_async(Trigger.Request())

        def done(result: Future) -> None:
            response: Any = result.result()
            when = self._now()
            if response is not None and response.success:
                self.get_logger().info(f'recorder: {response.message}')
                self._haptics.add(feedback, when)
            else:
                self._refuse(f'recorder refused {service}: '
                             f'{getattr(response, "message", "no answer")}', when)
        future.add_done_callback(done)

    def _refuse(self, why: str, now: float) -> None:
        self.get_logger().warning(why)
        self._haptics.add('refused', now)

    def _align(self, request: Trigger.Request, response: Trigger.Response
               ) -> Trigger.Response:
        self.core.mapping.start_alignment()
        self._publish_state()
        response.success = True
        response.message = ('aligning: hold the grip and move the controller at least 10 cm '
                            "straight towards the robot's front, then release (the arm does "
                            'not move)')
        return response

    # -- timer ------------------------------------------------------------------------------

    def _tick(self) -> None:
        now = self._now()
        released = self.core.mapping.check_streams(now)
        if released:
            self.core.count('stream_releases')
            self.get_logger().warning(f'clutch released: {released}; press the grip again')
        target = self.core.home_step()
        if target is not None:
            self._send(target, now)
        amplitude = self._haptics.step(now)
        if amplitude is not None:
            self.source.haptic(amplitude)
        if self.core.mapping.inputs_received_s is not None:
            self._send_gripper(now)
        self._publish_state()

    def _state(self) -> str:
        mapping = self.core.mapping
        if mapping.aligning:
            return 'aligning'
        if mapping.homing:
            return 'homing'
        return 'clutched' if mapping.engaged else 'released'

    def _publish_state(self) -> None:
        state = self._state()
        if state != self._published_state:
            self._published_state = state
            self.state_pub.publish(String(data=state))
            if state == 'released' and self.core.mapping.last_release:
                self.get_logger().info(f'clutch released ({self.core.mapping.last_release})')

    def _publish_diagnostics(self) -> None:
        status = DiagnosticStatus(name='visuomotor: teleop', hardware_id=self.config.name)
        now = self._now()
        last = self.core.mapping.pose_received_s
        silent = last is None or now - last > self.config.input_timeout_s
        status.level = DiagnosticStatus.WARN if silent or self.last_error else \
            DiagnosticStatus.OK
        status.message = (f'{self._state()}; controller '
                          f'{"silent" if silent else "streaming"}'
                          + (f'; last refused input: {self.last_error}' if self.last_error
                             else ''))
        status.values = [KeyValue(key='recorder', value=self._recorder_state),
                         KeyValue(key='ik_error_mm', value=f'{self.ik_error_m * 1000:.2f}'),
                         KeyValue(key='last_release', value=self.core.mapping.last_release)]
        status.values += [KeyValue(key=k, value=str(v))
                          for k, v in sorted(self.core.counters.items())]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)
        self.last_error = ''


def main(args: list[str] | None = None) -> int:
    """Entry point of the `teleop_node` executable."""
    return run_node('teleop_node', TeleopNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
