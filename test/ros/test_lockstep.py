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
