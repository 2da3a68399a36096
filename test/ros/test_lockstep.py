"""The twin in lockstep: simulated time waits for a starved consumer, then moves on."""

from __future__ import annotations

import time

from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from visuomotor.ros.bridge_node import BridgeNode
from visuomotor.ros.sim_node import SimNode


def test_simulated_time_never_runs_more_than_the_lead_ahead_of_a_consumer(ros_context):
    lead = 0.03
    sim = SimNode(context=ros_context, parameter_overrides=[
        Parameter('real_time_factor', value=0.0), Parameter('image_width', value=32),
        Parameter('image_height', value=24), Parameter('lockstep_with', value='safety_bridge'),
        Parameter('max_lead_s', value=lead)])
    bridge = BridgeNode(context=ros_context, parameter_overrides=[
        Parameter('use_sim_time', value=True), Parameter('robot', value='fr3'),
        Parameter('workspace', value='twin_fr3'), Parameter('lockstep', value=True)])
    sim_exec, bridge_exec = (SingleThreadedExecutor(context=ros_context) for _ in range(2))
    sim_exec.add_node(sim)
    bridge_exec.add_node(bridge)

    def run(wall_s: float, spin_bridge: bool) -> None:
        end = time.monotonic() + wall_s
        while time.monotonic() < end:
            sim_exec.spin_once(timeout_sec=0.0)
            if not sim.waiting_for_consumers():
                sim.tick()
            if spin_bridge:
                bridge_exec.spin_once(timeout_sec=0.001)
    try:
        run(0.5, spin_bridge=False)  # the bridge has not started spinning: the twin waits
        assert sim.twin.time_s <= lead + sim.stepper.tick_s + 1e-9
        run(3.0, spin_bridge=True)
        assert sim.twin.time_s > 0.5  # it runs with its consumer
        held = sim.twin.time_s
        run(0.5, spin_bridge=False)  # the consumer starves: the clock stops within the lead
        reported = sim.lockstep.progress['safety_bridge']  # its newest joint state handled
        assert reported <= held + 1e-9
        assert sim.twin.time_s <= reported + lead + sim.stepper.tick_s + 1e-9
        assert sim.waiting_for_consumers()
        run(1.0, spin_bridge=True)
        assert sim.twin.time_s > held + 0.1
        assert bridge.bridge.counters.values['faults'] == 0
    finally:
        bridge.destroy_node()
        sim.destroy_node()


def test_progress_is_reported_at_once_without_the_report_timer(ros_context):
    """Seen in the demo: the policy released its hold (inference done) before its executor
    handed it the joint states that arrived meanwhile, so the release reported nothing new;
    the twin waited, its clock stood still, and the report timer (on that clock) never fired
    again. New progress must be published when it is handled, not on the next timer."""
    from rclpy.node import Node
    from std_msgs.msg import Header

    from visuomotor.ros.lockstep import TOPIC, LockstepReporter, lockstep_qos
    from visuomotor.ros.stamps import stamp_to_ns

    consumer = Node('consumer', context=ros_context)  # never spun: its timer cannot fire
    reporter = LockstepReporter(consumer, True)
    listener = Node('listener', context=ros_context)
    reports: list[float] = []
    listener.create_subscription(Header, TOPIC, lambda msg: reports.append(
        stamp_to_ns(msg.stamp) * 1e-9), lockstep_qos())
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(listener)

    def received(value: float) -> bool:
        end = time.monotonic() + 5.0
        while time.monotonic() < end and not any(abs(r - value) < 1e-6 for r in reports):
            executor.spin_once(timeout_sec=0.01)
        return any(abs(r - value) < 1e-6 for r in reports)
    try:
        assert received_after(lambda: reporter.progress(100.0), received, 100.0)
        reporter.hold(100.0)  # an inference starts at 100.0
        reporter.progress(100.02)  # states handled meanwhile: the hold still wins
        reporter.hold(None)  # released: 100.02 goes out at once
        assert received(100.02)
        reporter.progress(100.03)  # handled after the release
        assert received(100.03)
        assert reports == sorted(reports)
    finally:
        listener.destroy_node()
        consumer.destroy_node()


def received_after(action, received, value: float) -> bool:
    """Wait for discovery by repeating `action` until `value` arrives."""
    end = time.monotonic() + 10.0
    while time.monotonic() < end:
        action()
        if received(value):
            return True
    return False
