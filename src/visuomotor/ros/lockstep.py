"""The twin in lockstep: simulated time never runs ahead of the nodes that consume it.

On simulated time a slow or starved node sees the clock jump ahead of the messages it has
not handled yet (rclpy keeps only the newest /clock message), so a joint state that is
merely queued looks old, and a policy whose inference took 80 ms of a loaded CPU acts 80 ms
late. A real robot does not wait for anyone; a simulator can. In lockstep mode:

- every consumer node (parameter `lockstep:=true`) publishes on `/sim/lockstep`
  (std_msgs/Header: frame_id = its node name, stamp = simulated time) how far it has done
  its work: the time its tick timer is next due, reported after each tick; while it holds
  the clock (`hold`: the policy node, for the observation its inference is working on) the
  report says so (frame_id `<name>/hold`) and the twin does not move past the held time;
- the sim node (parameter `lockstep_with:=<node names>`) steps only as far as every named
  consumer allows (visuomotor.sim.lockstep), so each consumer's tick at time T runs, and its
  output reaches the twin, before the twin moves past T: the execution of the in-process
  rollout, whatever the load.
"""

from __future__ import annotations

import threading
import time

from rclpy.clock import Clock
from rclpy.clock_type import ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.timer import Timer
from std_msgs.msg import Header

from visuomotor.ros.stamps import ns_to_stamp, stamp_to_ns
from visuomotor.sim.lockstep import FUTURE_S, HEARTBEAT_S, LockstepGate

TOPIC = '/sim/lockstep'
#: frame_id suffix of a report that holds the clock.
HOLD_SUFFIX = '/hold'


def lockstep_qos() -> QoSProfile:
    """Reliable: a lost report would stall the twin until the next heartbeat."""
    return QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)


class LockstepReporter:
    """A consumer node's progress reports (does nothing unless enabled).

    `follow(timer)` names the node's tick timer: after each of its callbacks the reporter
    publishes the timer's next due time (a node without one reports the clock). A heartbeat on
    the wall clock repeats the report, recomputed, so a report lost or made before a reset
    never stalls the twin for long, and the twin can tell a live node from a dead one.
    """

    def __init__(self, node: Node, enabled: bool) -> None:
        self.node = node
        self.enabled = enabled
        self._timer: Timer | None = None
        self._hold: float | None = None
        self._sent: tuple[float, bool] | None = None  # (value, holding)
        self._lock = threading.Lock()  # hold() may come from a worker thread
        if not enabled:
            return
        self._name = node.get_name()
        self._pub = node.create_publisher(Header, TOPIC, lockstep_qos())
        node.create_timer(HEARTBEAT_S, lambda: self.report(force=True),
                          clock=Clock(clock_type=ClockType.STEADY_TIME))

    def follow(self, timer: Timer) -> Timer:
        """The node acts on `timer`: its progress is the time the timer is next due.

        The timer's callback is wrapped to report once it has run (rclpy's executor calls
        `Timer.callback`). Returns the timer.
        """
        self._timer = timer
        if self.enabled and timer.callback is not None:
            tick = timer.callback

            def tick_then_report() -> None:
                try:
                    tick()  # type: ignore[call-arg]
                finally:
                    self.report()
            timer.callback = tick_then_report
        return timer

    def hold(self, time_s: float | None) -> None:
        """Stop the twin's clock at `time_s` until released (None).

        What the policy node does while an inference runs: simulated time stands still, as in
        the in-process rollout, so a slow inference on a loaded machine acts as early as a
        fast one.
        """
        with self._lock:
            self._hold = time_s
        self.report()

    def release(self, time_s: float) -> None:
        """End the hold at `time_s` (a newer hold set meanwhile stays)."""
        with self._lock:
            if self._hold != time_s:
                return
        self.hold(None)

    def report(self, force: bool = False) -> None:
        """Publish the progress if it changed (or always, with `force`)."""
        if not self.enabled:
            return
        now = float(self.node.get_clock().now().nanoseconds) * 1e-9
        value = now
        timer = self._timer
        if timer is not None:
            until_ns = timer.time_until_next_call()
            if until_ns is not None:
                value = now + max(0, until_ns) * 1e-9
        with self._lock:
            holding = self._hold is not None
            if self._hold is not None and self._hold <= now + FUTURE_S:
                value = min(value, self._hold)
            if (value, holding) == self._sent and not force:
                return
            self._sent = (value, holding)
        msg = Header(frame_id=self._name + (HOLD_SUFFIX if holding else ''))
        msg.stamp = ns_to_stamp(int(round(value * 1e9)))
        self._pub.publish(msg)


def on_report_msg(gate: LockstepGate, msg: Header, clock_s: float) -> None:
    """Feed a /sim/lockstep message to the gate (received now, on the monotonic clock)."""
    name = msg.frame_id.removesuffix(HOLD_SUFFIX)
    gate.on_report(name, stamp_to_ns(msg.stamp) * 1e-9, clock_s, time.monotonic(),
                   holding=name != msg.frame_id)
