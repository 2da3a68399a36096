"""Drives the twin in ticks and says what is due for publishing (pure: no rclpy).

One tick advances simulated time to the next event: a camera frame time (multiples of 1/fps),
a joint-state time, or at most `tick_s`, in whole physics steps. Each camera is rendered at its
frame time and stamped with it, so frame stamps are exact in simulated time whatever the
render speed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from visuomotor.sim.twin import Image, JointStateSample, Twin


@dataclass
class TickOutput:
    """What one tick produced."""

    time_s: float
    joint_state: JointStateSample | None = None
    images: dict[str, tuple[float, Image]] = field(default_factory=dict)


class Stepper:
    """Advances a twin tick by tick with publishing schedules on simulated time."""

    def __init__(self, twin: Twin, tick_s: float, joint_state_rate_hz: float) -> None:
        if not tick_s > 0 or not math.isfinite(tick_s):
            raise ValueError(f'tick_s must be a positive number, got {tick_s}')
        self.twin = twin
        self.tick_s = tick_s
        self.joint_state_period_s = 1.0 / joint_state_rate_hz
        self.restart()

    def restart(self) -> None:
        """Schedules restart from the twin's current time (after a reset)."""
        now = self.twin.time_s
        self._frame_period = {c.name: 1.0 / c.fps for c in self.twin.config.cameras}
        self._next_joint_state = now + self.joint_state_period_s
        self._next_frame = {name: now + period for name, period in self._frame_period.items()}

    def tick(self, until_s: float | None = None) -> TickOutput:
        """Advance to the next event and return what is due.

        At most tick_s, and not past `until_s` (a lockstep limit) by more than half a physics
        step; always at least one physics step.
        """
        before = self.twin.time_s
        dt = self.twin.timestep_s
        next_event = min(self._next_joint_state, before + self.tick_s,
                         *self._next_frame.values())
        if until_s is not None:
            next_event = min(next_event, until_s)
        self.twin.step(max(1, round((next_event - before) / dt)) * dt)
        now = self.twin.time_s
        output = TickOutput(now)
        eps = 1e-9
        if now + eps >= self._next_joint_state:
            output.joint_state = self.twin.joint_state()
            while self._next_joint_state <= now + eps:
                self._next_joint_state += self.joint_state_period_s
        due = [name for name, t in self._next_frame.items() if now + eps >= t]
        if due:
            for name, image in self.twin.render(due).items():
                output.images[name] = (now, image)
            for name in due:
                while self._next_frame[name] <= now + eps:
                    self._next_frame[name] += self._frame_period[name]
        return output
