"""The twin in lockstep: simulated time waits for each consumer's tick, and for a starved one."""

from __future__ import annotations

import time

import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from visuomotor.ros.bridge_node import BridgeNode
from visuomotor.ros.sim_node import SimNode


@pytest.fixture
def rig(ros_context):
    sim = SimNode(context=ros_context, parameter_overrides=[
        Parameter('real_time_factor', value=0.0), Parameter('image_width', value=32),
        Parameter('image_height', value=24), Parameter('lockstep_with', value='safety_bridge')])
    bridge = BridgeNode(context=ros_context, parameter_overrides=[
        Parameter('use_sim_time', value=True), Parameter('robot', value='fr3'),
        Parameter('workspace', value='twin_fr3'), Parameter('lockstep', value=True)])
    executors = (SingleThreadedExecutor(context=ros_context),
                 SingleThreadedExecutor(context=ros_context))
    executors[0].add_node(sim)
    executors[1].add_node(bridge)
    yield sim, bridge, executors
    bridge.destroy_node()
    sim.destroy_node()


def run(sim, executors, wall_s: float, spin_bridge: bool = True) -> None:
    """The sim node's loop (spin_sim, without pacing) with the bridge beside it."""
    end = time.monotonic() + wall_s
    while time.monotonic() < end:
        executors[0].spin_once(timeout_sec=0.0)
        if not sim.waiting_for_consumers():
            sim.tick()
        if spin_bridge:
            executors[1].spin_once(timeout_sec=0.001)


def test_simulated_time_waits_for_every_tick_of_its_consumer(rig) -> None:
    sim, bridge, executors = rig
    run(sim, executors, 0.5, spin_bridge=False)  # the bridge has not started spinning
    assert sim.twin.time_s <= sim.twin.timestep_s / 2
    ticks: list[float] = []
    tick = bridge.bridge.tick
    bridge.bridge.tick = lambda now: (ticks.append(now), tick(now))[1]  # type: ignore[method-assign]
    run(sim, executors, 3.0)
    assert sim.twin.time_s > 0.3  # it runs with its consumer
    # The bridge ticked at every 10 ms of simulated time, none skipped (the clock never ran
    # past a tick that had not happened).
    steps = [round((b - a) * 1000) for a, b in zip(ticks, ticks[1:], strict=False)]
    assert steps and set(steps) == {10}, steps
    held = sim.twin.time_s
    run(sim, executors, 0.5, spin_bridge=False)  # the consumer starves
    assert sim.twin.time_s <= held + 0.01 + 1e-9  # at most up to its next tick
    assert sim.waiting_for_consumers()
    assert abs(sim.twin.time_s * 100 - round(sim.twin.time_s * 100)) < 1e-6  # at its tick
    run(sim, executors, 1.0)
    assert sim.twin.time_s > held + 0.1
    assert bridge.bridge.counters.values['faults'] == 0


def test_a_consumer_that_dies_no_longer_holds_the_twin(rig) -> None:
    """A killed node (no report, no heartbeat) must not freeze the twin: the bridge's
    watchdog on the rest of the graph has to see it stop."""
    sim, bridge, executors = rig
    run(sim, executors, 1.0)
    held = sim.twin.time_s
    silence = sim.lockstep.silence_s
    run(sim, executors, silence + 1.0, spin_bridge=False)  # silent: no heartbeat either
    assert sim.twin.time_s > held + 0.1
    assert sim.lockstep.gone(time.monotonic()) == ['safety_bridge']
