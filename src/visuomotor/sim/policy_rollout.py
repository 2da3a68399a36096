"""A policy bundle rolled out on the twin in-process (pure, no ROS): the reference figure.

The policy sees what the policy node sees (camera frames at their rate and stamps with the
sim node's sensor noise, joint states at 100 Hz) through the same core, `PolicyLoop`
(synchroniser and chunk scheduler) and `PolicyRuntime`; its plan goes straight to the twin's
trajectory controller (or, on request, through the pure `SafetyBridge` as the deploy graph
sends it), without DDS or any waiting: simulated time stands still while the network runs.
`make demo` compares this success rate with the one through the whole ROS graph.

An episode succeeds when the task's success check holds for `hold_s` in a row (the cube
released, resting in the target square); it fails at `max_duration_s`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from visuomotor.cameras.sync import SyncConfig
from visuomotor.policy.chunking import Plan, SchedulerConfig
from visuomotor.policy.loop import PolicyLoop
from visuomotor.policy.node_schema import POLICY_NODE_PARAMS, scheduler_config, sync_config
from visuomotor.policy.runtime import PolicyRuntime
from visuomotor.safety.bridge import SafetyBridge, Setpoint, State
from visuomotor.sim.camera_noise import CameraNoise
from visuomotor.sim.joint_trajectory import JointTrajectoryCommand
from visuomotor.sim.stepper import Stepper
from visuomotor.sim.task import PickPlaceTask
from visuomotor.sim.twin import Image, Twin


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


def plan_command(plan: Plan, joint_names: tuple[str, ...], now_s: float
                 ) -> JointTrajectoryCommand | None:
    """The plan's rows still ahead of `now_s` as a trajectory for the controller."""
    points = tuple((float(t - now_s), tuple(float(v) for v in row), (), ())
                   for t, row in zip(plan.times, plan.positions, strict=True)
                   if t - now_s > 1e-6)
    return JointTrajectoryCommand(joint_names, points) if points else None


def setpoint_command(setpoint: Setpoint, joint_names: tuple[str, ...]
                     ) -> JointTrajectoryCommand:
    """A bridge setpoint (and its braking tail) as the controller gets it through ROS."""
    points: list[tuple[float, tuple[float, ...], tuple[float, ...], tuple[()]]] = [
        (setpoint.time_from_now_s, tuple(setpoint.positions.tolist()),
         tuple(setpoint.velocities.tolist()), ())]
    if setpoint.tail_positions is not None:
        points.append((setpoint.tail_time_s, tuple(setpoint.tail_positions.tolist()),
                       (0.0,) * len(joint_names), ()))
    return JointTrajectoryCommand(joint_names, tuple(points))


def rollout(twin: Twin, task: PickPlaceTask, runtime: PolicyRuntime, seed: int,
            settings: RolloutSettings = RolloutSettings(),
            on_frame: Callable[[float, dict[str, Image]], None] | None = None,
            bridge: SafetyBridge | None = None) -> RolloutResult:
    """Reset to the seed's initial state and let the policy act until success or timeout.

    `on_frame(t, images)` sees every rendered frame set (for videos). With a `bridge`, the
    plan and gripper widths go through the pure safety bridge (armed at the start, ticking at
    its control period) as they do in the deploy graph, instead of straight to the controller.
    """
    task.apply(twin, task.sample(seed))
    spec = runtime.spec
    defaults = {p.name: p.default for p in POLICY_NODE_PARAMS}  # as the ROS graph runs it
    loop = PolicyLoop(spec, settings.sync or sync_config(defaults),
                      settings.scheduler or scheduler_config(defaults, spec.chunk_length,
                                                             spec.control_period_s,
                                                             spec.execution))
    noise = CameraNoise(settings.camera_noise_std, seed + 7919)
    stepper = Stepper(twin, tick_s=0.004, joint_state_rate_hz=100.0)
    controller = twin.controller
    joints = tuple(spec.action.joint_names)
    period = spec.control_period_s
    next_tick = twin.time_s + period
    next_bridge_tick = twin.time_s
    success_since = math.nan
    inferences, inference_ms = 0, []
    while twin.time_s < settings.max_duration_s:
        out = stepper.tick()
        now = twin.time_s
        if out.joint_state is not None:
            js = out.joint_state
            loop.on_joint_state(js.stamp_s, js.names, js.positions.tolist())
            if bridge is not None:
                bridge.on_joint_state(now, js.names, js.positions.tolist(), js.stamp_s)
        if bridge is not None and now + 1e-9 >= next_bridge_tick:
            next_bridge_tick += bridge.timing.control_period_s
            if bridge.state is State.DISARMED and bridge.measured_q is not None:
                bridge.arm(now)
            setpoint, _ = bridge.tick(now)
            if setpoint is not None:
                controller.command_trajectory(setpoint_command(setpoint, joints), now)
        for name, (stamp, image) in out.images.items():
            loop.on_frame(name, stamp, noise(image), encoding='rgb8')
        if on_frame is not None and out.images:
            on_frame(now, {n: img for n, (_, img) in out.images.items()})
        if now + 1e-9 < next_tick:
            continue
        next_tick += period
        obs = loop.next_observation(now)
        if obs is not None:
            chunk = runtime(obs)
            loop.on_chunk(chunk, now, runtime.last_times)
            inferences += 1
            inference_ms.append(runtime.last_times.inference_ms)
        plan = loop.plan(now)
        if plan is not None and bridge is not None:
            bridge.on_command(now, JointTrajectoryCommand(
                joints, tuple((max(0.0, float(t - now)), tuple(float(v) for v in row), (), ())
                              for t, row in zip(plan.times, plan.positions, strict=True)), now))
            if plan.gripper is not None:
                decision = bridge.on_gripper(now, float(plan.gripper[0]))
                if decision.width_m is not None:
                    controller.command_gripper(decision.width_m, now)
        elif plan is not None:
            command = plan_command(plan, joints, now)
            if command is not None:
                controller.command_trajectory(command, now)
            if plan.gripper is not None:
                width = float(np.clip(plan.gripper[0], 0.0, twin.robot.gripper.max_width_m))
                controller.command_gripper(width, now)
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
