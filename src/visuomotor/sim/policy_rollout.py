"""A policy bundle rolled out on the twin in-process (pure, no ROS): the reference figure.

The same execution as the deploy graph, without DDS or any waiting: the policy sees what the
policy node sees (camera frames at their rate and stamps with the sim node's sensor noise for
the seed, joint states at the sim node's rate) through the same deploy loop (`PolicyLoop`:
synchroniser, chunk scheduler, plan -> trajectory) and `PolicyRuntime`; its commands go
through the pure `SafetyBridge` with the deploy graph's profile, workspace and timing, whose
setpoints reach the twin's controllers. Simulated time stands still while the network runs
(the sim node's lockstep mode holds it too). `make demo` compares this success rate with the
one through the whole ROS graph.

An episode succeeds when the task's success check holds for `hold_s` in a row (the cube
released, resting in the target square); it fails at `max_duration_s`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from visuomotor.cameras.sync import SyncConfig
from visuomotor.params import resolve
from visuomotor.policy.chunking import SchedulerConfig
from visuomotor.policy.loop import PolicyCommand, PolicyLoop
from visuomotor.policy.node_schema import POLICY_NODE_PARAMS, scheduler_config, sync_config
from visuomotor.policy.runtime import PolicyRuntime
from visuomotor.safety.bridge import SafetyBridge, State
from visuomotor.safety.node_schema import BRIDGE_NODE_PARAMS, timing_from_params
from visuomotor.safety.profile import load_safety_profile
from visuomotor.safety.workspace import load_workspace
from visuomotor.sim.camera_noise import CameraNoise
from visuomotor.sim.node_schema import SIM_NODE_PARAMS
from visuomotor.sim.stepper import Stepper
from visuomotor.sim.task import PickPlaceTask
from visuomotor.sim.twin import Image, Twin

#: The sim node's defaults (tick and joint-state rate), as the deploy graph runs the twin.
SIM_DEFAULTS = {p.name: float(p.default) for p in SIM_NODE_PARAMS
                if p.name in ('tick_s', 'joint_state_rate_hz')}


@dataclass(frozen=True)
class RolloutSettings:
    """How a rollout is run and judged."""

    max_duration_s: float = 45.0
    hold_s: float = 1.0
    camera_noise_std: float = 2.0
    scheduler: SchedulerConfig | None = None  # None: the policy node's defaults
    sync: SyncConfig | None = None  # None: the policy node's defaults


@dataclass(frozen=True)
class RolloutResult:
    """How one episode went."""

    seed: int
    success: bool
    duration_s: float
    inferences: int
    inference_ms: float


def deploy_bridge(robot: str, tier: str = 'commissioning') -> SafetyBridge:
    """The safety bridge exactly as the deploy graph starts it on the twin.

    The robot file's profile in `tier`, the twin cell's workspace box and the bridge node's
    default timing (its parameter schema), so the in-process figure is made under the same
    limits as the one through ROS.
    """
    profile = load_safety_profile(robot, tier)
    timing = timing_from_params(resolve(BRIDGE_NODE_PARAMS, {}), profile.driver)
    return SafetyBridge(profile, load_workspace(f'twin_{robot}'), timing)


def rollout(twin: Twin, task: PickPlaceTask, runtime: PolicyRuntime, seed: int,
            settings: RolloutSettings = RolloutSettings(),
            on_frame: Callable[[float, dict[str, Image]], None] | None = None,
            bridge: SafetyBridge | None = None) -> RolloutResult:
    """Reset to the seed's initial state and let the policy act until success or timeout.

    The deploy loop of the policy node (`PolicyLoop.command` at every control tick, an
    inference when one is due, the new chunk's plan sent at once) drives the pure safety
    bridge (a fresh one per episode unless `bridge` is given: `deploy_bridge`, armed as soon
    as a joint state arrives, ticking at its control period), whose setpoints and gripper
    widths reach the twin's controllers as the bridge node's messages reach the sim node.
    `on_frame(t, images)` sees every rendered frame set (for videos).
    """
    task.apply(twin, task.sample(seed))
    spec = runtime.spec
    defaults = {p.name: p.default for p in POLICY_NODE_PARAMS}  # as the ROS graph runs it
    loop = PolicyLoop(spec, settings.sync or sync_config(defaults),
                      settings.scheduler or scheduler_config(defaults, spec.chunk_length,
                                                             spec.control_period_s,
                                                             spec.execution))
    bridge = bridge or deploy_bridge(twin.robot.name)
    noise = CameraNoise.for_episode(settings.camera_noise_std, seed)
    stepper = Stepper(twin, tick_s=SIM_DEFAULTS['tick_s'],
                      joint_state_rate_hz=SIM_DEFAULTS['joint_state_rate_hz'])
    controller = twin.controller
    joints = twin.robot.joint_names
    period = spec.control_period_s
    next_tick = twin.time_s + period
    next_bridge_tick = twin.time_s
    success_since = math.nan
    inferences, inference_ms = 0, []

    def send(command: PolicyCommand, now: float) -> None:
        bridge.on_command(now, command.trajectory)
        if command.gripper_m is not None:
            decision = bridge.on_gripper(now, command.gripper_m)
            if decision.width_m is not None:
                controller.command_gripper(decision.width_m, now)

    while twin.time_s < settings.max_duration_s:
        out = stepper.tick()
        now = twin.time_s
        if out.joint_state is not None:
            js = out.joint_state
            loop.on_joint_state(js.stamp_s, js.names, js.positions.tolist())
            bridge.on_joint_state(now, js.names, js.positions.tolist(), js.stamp_s)
        if now + 1e-9 >= next_bridge_tick:
            next_bridge_tick += bridge.timing.control_period_s
            if bridge.state is State.DISARMED and bridge.measured_q is not None:
                bridge.arm(now)
            setpoint, _ = bridge.tick(now)
            if setpoint is not None:
                controller.command_trajectory(setpoint.trajectory(joints), now)
        for name, (stamp, image) in out.images.items():
            loop.on_frame(name, stamp, noise(image), encoding='rgb8')
        if on_frame is not None and out.images:
            on_frame(now, {n: img for n, (_, img) in out.images.items()})
        if now + 1e-9 < next_tick:
            continue
        next_tick += period
        command = loop.command(now)
        obs = loop.next_observation(now)
        if obs is not None:  # simulated time stands still while the network runs
            chunk = runtime(obs)
            loop.on_chunk(chunk, now, runtime.last_times)
            command = loop.command(now) or command
            inferences += 1
            inference_ms.append(runtime.last_times.inference_ms)
        if command is not None:
            send(command, now)
        if task.success(twin):
            if math.isnan(success_since):
                success_since = now
            if now - success_since >= settings.hold_s:
                return RolloutResult(seed, True, now, inferences,
                                     float(np.median(inference_ms)))
        else:
            success_since = math.nan
    return RolloutResult(seed, False, twin.time_s, inferences,
                         float(np.median(inference_ms)) if inference_ms else math.nan)
