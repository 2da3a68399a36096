"""Running seeded episodes of the task on the twin with the scripted expert (pure, no ROS)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from visuomotor.sim.expert import ExpertAction, ExpertObservation, ScriptedExpert
from visuomotor.sim.task import PickPlaceTask
from visuomotor.sim.twin import Twin


@dataclass(frozen=True)
class EpisodeResult:
    """How one episode ended."""

    seed: int
    success: bool
    duration_s: float
    ticks: int
    final_phase: str


def observe(twin: Twin, task: PickPlaceTask) -> ExpertObservation:
    """The expert's privileged observation of the twin now."""
    return ExpertObservation(twin.time_s, twin.arm_positions(), twin.gripper_width_m(),
                             twin.object_pose(), task.target_xy(twin))


def make_expert(twin: Twin, rate_hz: float = 10.0) -> ScriptedExpert:
    """The scripted expert for this twin's robot and task."""
    return ScriptedExpert(twin.robot, twin.base_pose, twin.config.task.object_size_m,
                          rate_hz=rate_hz)


def run_episode(twin: Twin, task: PickPlaceTask, seed: int, *, rate_hz: float = 10.0,
                max_duration_s: float = 25.0,
                on_tick: Callable[[Twin, ExpertAction], None] | None = None) -> EpisodeResult:
    """Reset to the seed's initial state and let the expert act until done or timeout.

    `on_tick(twin, action)` runs after each action is applied, before physics advances
    (for recording frames or commands).
    """
    task.apply(twin, task.sample(seed))
    expert = make_expert(twin, rate_hz)
    ticks = 0
    while twin.time_s < max_duration_s and not expert.done:
        action = expert.act(observe(twin, task))
        now = twin.time_s
        twin.controller.command_trajectory(action.trajectory, now)
        twin.controller.command_gripper(action.gripper_width_m, now)
        if on_tick is not None:
            on_tick(twin, action)
        twin.step(1.0 / rate_hz)
        ticks += 1
    # Let the cube settle after the release before judging.
    twin.step(0.3)
    return EpisodeResult(seed, task.success(twin), twin.time_s, ticks, expert.phase)
