"""The twin + the safety bridge + a scripted policy client in one process, over real DDS.

Everything runs on simulated time: the sim node is paced at a real-time factor and the bridge
and the client use use_sim_time. The bridge listens to /relay/joint_states (remapped): the
client relays the twin's /joint_states there, so a fault can be injected by freezing or
stopping the joint states the bridge sees while the twin keeps running. Used by the demo's
safety stage, the fault-injection tests and bench/safety.py.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from rclpy.client import Client
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from visuomotor.errors import VisuomotorError
from visuomotor.ros.bridge_node import BridgeNode
from visuomotor.ros.sim_node import SimNode
from visuomotor.ros.trajectory_conversion import trajectory_to_msg
from visuomotor.trajectory import JointTrajectoryCommand


@dataclass
class Recorded:
    """Everything the harness saw, with simulated receive times."""

    decisions: list[dict[str, Any]] = field(default_factory=list)
    states: list[tuple[float, str]] = field(default_factory=list)
    controller: list[JointTrajectory] = field(default_factory=list)
    joint_states: list[tuple[float, np.ndarray, np.ndarray]] = field(default_factory=list)


class PolicyClient(Node):
    """A policy/operator stand-in: publishes commands, relays joint states, calls services."""

    def __init__(self, context: Context, joint_names: Sequence[str],
                 controller_topic: str | None,
                 ) -> None:
        super().__init__('policy_client', context=context,
                         parameter_overrides=[Parameter('use_sim_time', value=True)])
        self.joint_names = list(joint_names)
        self.record = Recorded()
        self.relay_mode = 'live'  # 'live' | 'frozen' (republish the last one) | 'off'
        self._last_state: JointState | None = None
        self.command_pub = self.create_publisher(JointTrajectory, '/safety_bridge/command', 20)
        self.gripper_pub = self.create_publisher(Float64, '/safety_bridge/gripper', 20)
        self.relay_pub = self.create_publisher(JointState, '/relay/joint_states', 50)
        self.create_subscription(JointState, '/joint_states', self._on_joint_state, 50)
        self.create_subscription(String, '/safety_bridge/decisions', self._on_decision, 200)
        if controller_topic is not None:  # a joint_trajectory interface: record what it gets
            self.create_subscription(JointTrajectory, controller_topic,
                                     self.record.controller.append, 200)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(String, '/safety_bridge/state', self._on_state, latched)
        self.services_: dict[str, Client] = {
            name: self.create_client(Trigger, f'/safety_bridge/{name}')
            for name in ('arm', 'disarm', 'stop', 'acknowledge')}

    def now(self) -> float:
        """Simulated time, seconds."""
        return float(self.get_clock().now().nanoseconds) * 1e-9

    def _on_joint_state(self, msg: JointState) -> None:
        index = {name: i for i, name in enumerate(msg.name)}
        q = np.array([msg.position[index[n]] for n in self.joint_names])
        v = np.array([msg.velocity[index[n]] for n in self.joint_names])
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self.record.joint_states.append((stamp, q, v))
        if self.relay_mode == 'live':
            self._last_state = msg
            self.relay_pub.publish(msg)
        elif self.relay_mode == 'frozen' and self._last_state is not None:
            self.relay_pub.publish(self._last_state)

    def _on_decision(self, msg: String) -> None:
        self.record.decisions.append(json.loads(msg.data))

    def _on_state(self, msg: String) -> None:
        self.record.states.append((self.now(), msg.data))

    def send(self, positions_by_time: Sequence[tuple[float, npt.ArrayLike]],
             stamp_s: float | None = None, names: Sequence[str] | None = None) -> None:
        """Publish a chunk: (time_from_start, positions) pairs stamped `stamp_s` (now)."""
        stamp = self.now() if stamp_s is None else stamp_s
        command = JointTrajectoryCommand(
            tuple(names or self.joint_names),
            tuple((t, tuple(float(v) for v in np.asarray(q, dtype=float)), (), ())
                  for t, q in positions_by_time), stamp)
        self.command_pub.publish(trajectory_to_msg(command))

    @property
    def state(self) -> str:
        """The bridge's latest published state."""
        return self.record.states[-1][1] if self.record.states else ''

    def measured(self) -> np.ndarray:
        """The latest measured arm positions."""
        return self.record.joint_states[-1][1]


class BridgeHarness:
    """Sim (paced at `real_time_factor`) + bridge + policy client.

    The sim runs in the calling thread (its loop is `run_for`); the bridge and the client
    spin in a background thread with their own executor, as separate processes would, so a
    slow sim tick never starves the bridge of the joint states it watches.
    """

    def __init__(self, context: Context, scene: str = 'fr3', workspace: str = 'twin_fr3',
                 real_time_factor: float = 1.0, bridge_params: Sequence[Parameter] = ()) -> None:
        self.sim = SimNode(context=context, parameter_overrides=[
            Parameter('real_time_factor', value=real_time_factor),
            Parameter('scene', value=scene)])
        robot = self.sim.twin.robot
        self.bridge = BridgeNode(
            context=context,
            cli_args=['--ros-args', '-r', '/joint_states:=/relay/joint_states'],
            parameter_overrides=[Parameter('use_sim_time', value=True),
                                 Parameter('robot', value=robot.name),
                                 Parameter('workspace', value=workspace), *bridge_params])
        profile = self.bridge.profile
        self.client = PolicyClient(
            context, robot.joint_names,
            profile.command_topic if profile.interface == 'joint_trajectory' else None)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.sim)
        self._others = SingleThreadedExecutor(context=context)
        self._others.add_node(self.bridge)
        self._others.add_node(self.client)
        # One interpreter stands in for three processes: hand the GIL over more often than the
        # default 5 ms so the bridge's timer is not held up behind a sim tick.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(0.0005)
        self._thread = threading.Thread(target=self._spin_others, daemon=True)
        self._thread.start()
        self.limits = self.bridge.profile.limits
        self.home = np.array(robot.home_rad)

    def run_for(self, sim_s: float, each_tick: Callable[[float], None] | None = None,
                until: Callable[[], bool] | None = None) -> bool:
        """Run the graph for `sim_s` simulated seconds (or until `until()`).

        `each_tick(now)` runs after every sim tick (a policy publishing at its own rate).
        Returns whether `until` became true (True when no condition was given).
        """
        end = self.sim.twin.time_s + sim_s
        deadline = time.monotonic() + sim_s / self.sim.real_time_factor * 3.0 + 5.0
        while self.sim.twin.time_s < end - 1e-9 and time.monotonic() < deadline:
            if until is not None and until():
                return True
            wait = self.sim.wall_time_until_next_tick()
            self.executor.spin_once(timeout_sec=min(wait, 0.002))
            if self.sim.wall_time_until_next_tick() <= 0.0:
                self.sim.tick()
                if each_tick is not None:
                    each_tick(self.sim.twin.time_s)
        return until() if until is not None else True

    def call(self, service: str, timeout_sim_s: float = 2.0) -> Trigger.Response:
        """Call a bridge service while the graph keeps running."""
        client = self.client.services_[service]
        future = client.call_async(Trigger.Request())
        self.run_for(timeout_sim_s, until=future.done)
        result = future.result()
        if result is None:
            raise VisuomotorError(f'~/{service} did not answer')
        return result

    def wait_for_state(self, state: str, timeout_sim_s: float = 3.0,
                       each_tick: Callable[[float], None] | None = None) -> bool:
        """Run until the bridge publishes `state`."""
        return self.run_for(timeout_sim_s, each_tick, until=lambda: self.client.state == state)

    def arm(self) -> None:
        """Wait for discovery and joint states, then arm; fail loudly if refused."""
        client = self.client
        matched = self.run_for(5.0, until=lambda: (
            client.command_pub.get_subscription_count() > 0
            and client.relay_pub.get_subscription_count() > 0
            and self.bridge.decision_pub.get_subscription_count() > 0
            and bool(client.record.states) and len(client.record.joint_states) > 5))
        if not matched:
            raise VisuomotorError('the bridge and the client did not discover each other')
        response = self.call('arm')
        if not response.success:
            raise VisuomotorError(f'arming refused: {response.message}')
        self.run_for(0.05)

    def stream(self, target: np.ndarray, rate_hz: float = 10.0, horizon: int = 4,
               ) -> Callable[[float], None]:
        """A policy publishing chunks toward `target` at `rate_hz` (for run_for's each_tick).

        Each chunk moves from the measured pose to the target over `horizon` steps of
        1/rate_hz (the policy's own idea of speed; the bridge enforces the caps).
        """
        next_time = [-math.inf]

        def publish(now: float) -> None:
            if now + 1e-9 < next_time[0]:
                return
            next_time[0] = now + 1.0 / rate_hz
            start = self.client.measured()
            chunk = [((k + 1) / rate_hz, start + (target - start) * (k + 1) / horizon)
                     for k in range(horizon)]
            self.client.send(chunk)
        return publish

    def _spin_others(self) -> None:
        with contextlib.suppress(ExternalShutdownException):
            self._others.spin()

    def close(self) -> None:
        """Shut the executors down and destroy the nodes."""
        self._others.shutdown()
        self._thread.join(timeout=5.0)
        sys.setswitchinterval(self._switch_interval)
        self.executor.shutdown()
        for node in (self.client, self.bridge, self.sim):
            node.destroy_node()
