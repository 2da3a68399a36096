"""The safety bridge as a ROS 2 node: every command to the arm passes through here.

NOT a certified safety function: a hardware E-stop and the robot's own safety configuration
are required (the node says so at startup and on /diagnostics).

Subscribes:
    ~/command (trajectory_msgs/JointTrajectory): policy chunks and teleop targets; header.stamp
        is the time the command was computed for, points' time_from_start are relative to it.
    ~/gripper (std_msgs/Float64): gripper opening width, metres.
    /joint_states (sensor_msgs/JointState): the measured arm state (the robot file's
        driver.joint_states_topic, or the joint_states_topic parameter). Every tick first
        handles the joint states already waiting in the queue, so freshness is judged on what
        has arrived by then, never on a backlog a busy executor has not handed over yet.
Publishes:
    the profile's controller interface: JointTrajectory on /<trajectory controller>/
        joint_trajectory, Float64MultiArray on /<position controller>/commands, or PoseStamped
        on the profile's Cartesian target topic; gripper widths on /<gripper>/commands.
    ~/state (std_msgs/String, latched): disarmed | holding | armed | stopping | fault.
    ~/decisions (std_msgs/String, JSON per tick): raw target, limited command, reasons.
    ~/limited (sensor_msgs/JointState): the command actually sent (positions, velocities).
    /diagnostics: state, tier, fault reason and every counter, once per second.
Services (std_srvs/Trigger): ~/arm, ~/disarm, ~/stop, ~/acknowledge.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, Float64MultiArray, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from visuomotor.params import ParameterError
from visuomotor.ros.controller_output import (
    setpoint_to_pose,
    setpoint_to_positions,
    setpoint_to_trajectory,
)
from visuomotor.ros.lockstep import LockstepReporter
from visuomotor.ros.node_main import run_node
from visuomotor.ros.parameters import declare_parameters
from visuomotor.ros.pending import take_pending
from visuomotor.ros.stamps import stamp_to_ns
from visuomotor.ros.trajectory_conversion import trajectory_from_msg
from visuomotor.safety.bridge import DISCLAIMER, Decision, SafetyBridge, Setpoint, State
from visuomotor.safety.node_schema import BRIDGE_NODE_PARAMS, timing_from_params
from visuomotor.safety.profile import load_safety_profile
from visuomotor.safety.workspace import load_workspace


class BridgeNode(Node):
    """Thin ROS wrapper of SafetyBridge (see the module docstring for the interface)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__('safety_bridge', **kwargs)  # type: ignore[arg-type]
        self._log_file: IO[str] | None = None
        params = declare_parameters(self, BRIDGE_NODE_PARAMS)
        log = self.get_logger()
        log.warning(DISCLAIMER)
        profile = load_safety_profile(str(params['robot']), str(params['tier']),
                                      str(params['interface']))
        rate = float(params['control_rate_hz'])
        if rate > profile.driver.controller_rate_hz:
            raise ParameterError('control_rate_hz', f'{rate:g} Hz is faster than the '
                                 f'{profile.driver.package} controller runs '
                                 f'({profile.driver.controller_rate_hz:g} Hz): lower it')
        workspace = load_workspace(str(params['workspace']), profile.robot.name) \
            if params['workspace'] else None
        self.bridge = SafetyBridge(profile, workspace, timing_from_params(params, profile.driver))
        self.profile = profile
        self.joint_names = list(profile.robot.joint_names)
        self.joint_states_topic = str(params['joint_states_topic']) or \
            profile.driver.joint_states_topic
        self.arm_on_start = bool(params['arm_on_start'])
        self._arm_pending = self.arm_on_start
        # Inputs that arrived at the current instant, with their arrival times, in order.
        self._deferred: list[tuple[float, Callable[[], object]]] = []
        self._resets_seen = 0
        for warning in profile.warnings:
            log.warning(warning)
        lim = profile.limits
        log.info(f'{profile.robot.name}, tier {lim.tier}: joints <= '
                 f'{lim.velocity_rad_s.max():g} rad/s, a <= {lim.acceleration_rad_s2.max():g} '
                 f'rad/s^2, TCP <= {lim.tcp_linear_m_s:g} m/s; interface {profile.interface} on '
                 f'{profile.command_topic}; control {1.0 / self.bridge.timing.control_period_s:g}'
                 f' Hz, watchdog {self.bridge.timing.watchdog_s} s; joint states on '
                 f'{self.joint_states_topic} ({profile.driver.joint_state_rate_hz:g} Hz) older '
                 f'than {self.bridge.timing.joint_state_timeout_s:g} s fault')
        if workspace is None:
            log.error('no workspace box configured (parameter workspace): the bridge will '
                      'refuse to arm until one is given; there is no default box')
        else:
            log.info(f'workspace {workspace.describe()} from {workspace.source}')

        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.state_pub = self.create_publisher(String, '~/state', latched)
        self.decision_pub = self.create_publisher(String, '~/decisions', 50)
        self.limited_pub = self.create_publisher(JointState, '~/limited', 50)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._send = self._output(profile.interface)
        self.gripper_pub = self.create_publisher(Float64MultiArray, profile.topics['gripper'],
                                                 10)
        self.joint_states = self.create_subscription(JointState, self.joint_states_topic,
                                                     self._on_joint_state, 50)
        self.lockstep = LockstepReporter(self, bool(params['lockstep']))
        self.create_subscription(JointTrajectory, '~/command', self._on_command, 20)
        self.create_subscription(Float64, '~/gripper', self._on_gripper, 20)
        for name, handler in (('arm', self.bridge.arm), ('disarm', self.bridge.disarm),
                              ('stop', self.bridge.stop),
                              ('acknowledge', self.bridge.acknowledge)):
            self.create_service(Trigger, f'~/{name}', self._service(name, handler))
        if params['decision_log']:
            path = Path(str(params['decision_log']))
            path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = path.open('a', buffering=1)  # one line per decision, flushed
        self._published_state: State | None = None
        self._next_diagnostics = 0.0
        self.lockstep.follow(self.create_timer(self.bridge.timing.control_period_s, self._tick))
        # Fully qualified, as get_publishers_info_by_topic wants it.
        self._command_topic = self.resolve_topic_name('~/command')
        self.create_timer(0.1, self._poll_command_sources)
        self._publish_state()

    def _now(self) -> float:
        return float(self.get_clock().now().nanoseconds) * 1e-9

    def _output(self, interface: str) -> Callable[[Setpoint], None]:
        topic = self.profile.command_topic
        if interface == 'joint_trajectory':
            pub = self.create_publisher(JointTrajectory, topic, 10)
            return lambda s: pub.publish(setpoint_to_trajectory(s, self.joint_names))
        if interface == 'forward_position':
            pub_f = self.create_publisher(Float64MultiArray, topic, 10)
            return lambda s: pub_f.publish(setpoint_to_positions(s))
        pub_p = self.create_publisher(PoseStamped, topic, 10)
        frame = self.profile.driver.base_frame
        return lambda s: pub_p.publish(setpoint_to_pose(
            s, self.bridge.kinematics, frame, self.get_clock().now().to_msg()))

    # -- inputs -----------------------------------------------------------------------------

    def _on_joint_state(self, msg: JointState) -> None:
        self.bridge.on_joint_state(self._now(), list(msg.name), list(msg.position),
                                   stamp_to_ns(msg.header.stamp) * 1e-9)

    def _on_command(self, msg: JointTrajectory, info: MessageInfo) -> None:
        now = self._now()
        command = trajectory_from_msg(msg)
        if self.lockstep.enabled and abs(command.start_time_s - now) < SAME_INSTANT_S:
            # On the twin in lockstep the policy and the bridge tick on the same clock
            # message, in either order: a command of this instant is applied right after
            # this instant's tick, as in the in-process rollout, whatever order the two
            # processes ran in. (On wall time a command arrives after its stamp.)
            source = _publisher(info)
            self._deferred.append((now, lambda: self.bridge.on_command(now, command, source)))
            return
        self.bridge.on_command(now, command, _publisher(info))
        self._log_events()

    def _apply_deferred(self, before_s: float) -> None:
        """Apply, in arrival order, the deferred inputs that arrived before `before_s`."""
        while self._deferred and self._deferred[0][0] < before_s:
            self._deferred.pop(0)[1]()

    def _on_gripper(self, msg: Float64, info: MessageInfo) -> None:
        now, width, source = self._now(), float(msg.data), _publisher(info)
        if self.lockstep.enabled:  # like a command of this instant, in the order they came
            self._deferred.append((now, lambda: self._gripper(now, width, source)))
            return
        self._gripper(now, width, source)

    def _gripper(self, now: float, width: float, source: str | None) -> None:
        decision = self.bridge.on_gripper(now, width, source)
        if decision.width_m is not None:
            self.gripper_pub.publish(Float64MultiArray(data=[decision.width_m]))
        elif decision.reason in ('non_finite', 'not_armed'):
            self.get_logger().warning(f'gripper command {width!r} not sent: '
                                      f'{decision.reason}', throttle_duration_sec=1.0)

    def _service(self, name: str, handler: Callable[[float], tuple[bool, str]]
                 ) -> Callable[[Trigger.Request, Trigger.Response], Trigger.Response]:
        def serve(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            take_pending(self.joint_states, self._on_joint_state)  # decide on what arrived
            response.success, response.message = handler(self._now())
            if response.success:
                self.get_logger().info(f'~/{name}: {response.message}')
            else:
                self.get_logger().error(f'~/{name} refused: {response.message}')
            self._log_events()
            self._publish_state()
            return response
        return serve

    def _poll_command_sources(self) -> None:
        """Tell the core which publishers feed ~/command (a new one after arming faults)."""
        infos = self.get_publishers_info_by_topic(self._command_topic)
        self.bridge.on_command_sources(self._now(), frozenset(
            bytes(info.endpoint_gid).hex() for info in infos))
        self._log_events()
        self._publish_state()

    # -- the loop ---------------------------------------------------------------------------

    def _tick(self) -> None:
        take_pending(self.joint_states, self._on_joint_state)
        now = self._now()
        self._apply_deferred(now - SAME_INSTANT_S)  # from earlier instants
        counters = self.bridge.counters.values
        resets = counters['clock_jumps'] + counters['joint_state_time_jumps']
        if self.arm_on_start and resets != self._resets_seen:  # the twin reset: arm again
            self._resets_seen, self._arm_pending = resets, True
        if self._arm_pending and self.bridge.state is State.DISARMED and \
                self.bridge.measured_q is not None:
            ok, message = self.bridge.arm(now)
            self._arm_pending = not ok
            if not ok:
                self.get_logger().warning(f'arm_on_start: {message}', throttle_duration_sec=2.0)
        setpoint, decision = self.bridge.tick(now)
        if setpoint is not None:
            self._send(setpoint)
            limited = JointState(name=self.joint_names)
            limited.header.stamp = self.get_clock().now().to_msg()
            limited.position = setpoint.positions.tolist()
            limited.velocity = setpoint.velocities.tolist()
            self.limited_pub.publish(limited)
        if decision is not None:
            self._record(decision)
        self._apply_deferred(now + SAME_INSTANT_S)  # stamped now: after this tick
        self._log_events()
        self._publish_state()
        if now >= self._next_diagnostics or now < self._next_diagnostics - 2.0:
            self._publish_diagnostics()
            self._next_diagnostics = now + 1.0

    def _record(self, decision: Decision) -> None:
        line = json.dumps(decision.as_dict())
        self.decision_pub.publish(String(data=line))
        if self._log_file is not None:
            self._log_file.write(line + '\n')

    def _log_events(self) -> None:
        # rclpy requires one severity per call site, hence three calls.
        log = self.get_logger()
        for event in self.bridge.drain_events():
            if event.level == 'error':
                log.error(event.message)
            elif event.level == 'warn':
                log.warning(event.message)
            else:
                log.info(event.message)

    def _publish_state(self) -> None:
        if self.bridge.state is not self._published_state:
            self._published_state = self.bridge.state
            self.state_pub.publish(String(data=self.bridge.state.value))
            self._publish_diagnostics()  # the reason of a fault at once, not within a second

    def _publish_diagnostics(self) -> None:
        bridge = self.bridge
        status = DiagnosticStatus(name='visuomotor: safety bridge',
                                  hardware_id=self.profile.robot.name)
        if bridge.state is State.FAULT:
            status.level, status.message = DiagnosticStatus.ERROR, f'fault: {bridge.fault_reason}'
        elif bridge.state is State.STOPPING:
            status.level, status.message = DiagnosticStatus.WARN, 'stopping'
        elif bridge.workspace is None:
            status.level, status.message = DiagnosticStatus.WARN, 'no workspace box: cannot arm'
        else:
            status.level, status.message = DiagnosticStatus.OK, bridge.state.value
        values = {'state': bridge.state.value, 'tier': bridge.limits.tier,
                  'interface': self.profile.interface, 'fault': bridge.fault_reason,
                  'certified_safety_function': 'no: hardware E-stop and vendor safety '
                                               'configuration required'}
        values.update({key: str(count) for key, count in sorted(bridge.counters.values.items())})
        status.values = [KeyValue(key=key, value=value) for key, value in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def destroy_node(self) -> None:
        """Close the decision log with the node."""
        if self._log_file is not None:
            self._log_file.close()
        super().destroy_node()


#: Stamps this close to the clock are "this instant" (simulated time moves in steps >= 1 ms).
SAME_INSTANT_S = 1e-6


def _publisher(info: MessageInfo) -> str | None:
    """The sending publisher's id (as the graph lists it), where the RMW reports one."""
    gid = info.get('publisher_gid')
    data = gid.get('data') if isinstance(gid, dict) else None
    return bytes(data).hex() if data else None


def main(args: list[str] | None = None) -> int:
    """Entry point of the `safety_bridge` executable."""
    return run_node('safety_bridge', BridgeNode, args)


if __name__ == '__main__':
    sys.exit(main())
