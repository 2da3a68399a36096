"""The twin's bounded lead: simulated time never runs ahead of the nodes that consume it.

On simulated time a slow or starved node sees the clock jump ahead of the messages it has
not handled yet (rclpy keeps only the newest /clock message), so a joint state that is
merely queued looks old, and a policy whose inference took 80 ms of a loaded CPU acts 80 ms
late. A real robot does not wait for anyone; a simulator can. In lockstep mode:

- every consumer node (parameter `lockstep:=true`) publishes, on `/sim/lockstep`
  (std_msgs/Header: frame_id = its node name, stamp = the simulated time it has caught up
  to), its progress: the newest /joint_states stamp it has handled (`progress`), or the
  clock when it tracks no stream; while it holds the clock (`hold`: the policy node, for the
  observation its inference is working on) the report says so (frame_id `<name>/hold`) and
  the twin does not move past the held time at all;
- the sim node (parameter `lockstep_with:=<node names>`) advances only while every named
  consumer's progress is within `max_lead_s` of the next tick (visuomotor.sim.lockstep).
"""

from __future__ import annotations

import threading
import time

from rclpy.clock import Clock
from rclpy.clock_type import ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from visuomotor.ros.stamps import ns_to_stamp, stamp_to_ns
from visuomotor.sim.lockstep import FUTURE_S, HEARTBEAT_S, REPORT_PERIOD_S, LockstepGate

TOPIC = '/sim/lockstep'
#: frame_id suffix of a report that holds the clock (no lead while it lasts).
HOLD_SUFFIX = '/hold'


def lockstep_qos() -> QoSProfile:
    """Reliable: a lost report would stall the twin until the next one."""
    return QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)


class LockstepReporter:
    """A consumer node's progress reports (does nothing unless enabled)."""

    def __init__(self, node: Node, enabled: bool) -> None:
        self.node = node
        self.enabled = enabled
        self._progress: float | None = None
        self._hold: float | None = None
        self._sent: tuple[float, bool] | None = None  # (value, holding)
        self._lock = threading.Lock()  # hold() may come from a worker thread
        if not enabled:
            return
        self._name = node.get_name()
        self._pub = node.create_publisher(Header, TOPIC, lockstep_qos())
        node.create_timer(REPORT_PERIOD_S, self.report)
        # A heartbeat on the wall clock: the twin tells a live consumer (maybe holding the
        # clock through a long inference) from a dead one by it.
        node.create_timer(HEARTBEAT_S, self._heartbeat,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))

    def progress(self, stamp_s: float) -> None:
        """The node has handled its input stream up to `stamp_s` (simulated time).

        Reported at once: the twin may be waiting for exactly this, with its clock (and so
        this node's report timer) standing still.
        """
        with self._lock:
            if self._progress is not None and self._progress - FUTURE_S <= stamp_s <= \
                    self._progress:
                return  # not newer (and not from a timeline after a reset)
            self._progress = stamp_s
        self.report()

    def hold(self, time_s: float | None) -> None:
        """Stop the twin's clock at `time_s` (no lead) until released (None).

        What the policy node does while an inference runs: simulated time stands still, as in
        the in-process rollout, so a slow inference on a loaded machine acts as early as a
        fast one.
        """
        with self._lock:
            self._hold = time_s
        if time_s is None:
            self.report()  # release at once: the twin is waiting on exactly this

    def release(self, time_s: float) -> None:
        """End the hold at `time_s` (a newer hold set meanwhile stays)."""
        with self._lock:
            if self._hold != time_s:
                return
        self.hold(None)

    def _heartbeat(self) -> None:
        with self._lock:
            sent = self._sent
        if sent is not None:
            self._send(*sent)

    def report(self) -> None:
        """Publish the progress if it changed (also every REPORT_PERIOD_S of the clock)."""
        if not self.enabled:
            return
        now = float(self.node.get_clock().now().nanoseconds) * 1e-9
        with self._lock:
            if self._progress is not None and self._progress > now + FUTURE_S:
                self._progress = None  # from before a reset
            value = now if self._progress is None else self._progress
            holding = self._hold is not None
            if self._hold is not None:
                value = min(value, self._hold)
            if (value, holding) == self._sent:
                return
            self._sent = (value, holding)
        self._send(value, holding)

    def _send(self, value: float, holding: bool) -> None:
        msg = Header(frame_id=self._name + (HOLD_SUFFIX if holding else ''))
        msg.stamp = ns_to_stamp(int(round(value * 1e9)))
        self._pub.publish(msg)


def on_report_msg(gate: LockstepGate, msg: Header, clock_s: float) -> None:
    """Feed a /sim/lockstep message to the gate (received now, on the monotonic clock)."""
    name = msg.frame_id.removesuffix(HOLD_SUFFIX)
    gate.on_report(name, stamp_to_ns(msg.stamp) * 1e-9, clock_s, time.monotonic(),
                   holding=name != msg.frame_id)
