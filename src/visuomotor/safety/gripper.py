"""Gripper command checks (pure): finite first, then range, then toggle rate."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class GripperDecision:
    """What happens to one gripper command.

    Attributes:
        width_m: the width to send, or None when nothing is sent.
        reason: '' when sent unchanged, else `non_finite`, `clipped`, `toggle_rate`.
    """

    width_m: float | None
    reason: str


class GripperGate:
    """Checks opening-width commands in metres against one gripper.

    A toggle is a reversal of direction (opening after closing or the reverse); a reversal
    sooner than `min_toggle_interval_s` after the previous one is dropped, so a policy
    chattering around a threshold cannot hammer the fingers. Changes smaller than
    `deadband_m` are not sent. A time before the last toggle (a clock that went back, as a
    reset twin's does) does not block a reversal: it would otherwise block it until the new
    clock caught up with the old one.
    """

    def __init__(self, max_width_m: float, min_toggle_interval_s: float,
                 deadband_m: float = 0.001) -> None:
        self.max_width_m = max_width_m
        self.min_toggle_interval_s = min_toggle_interval_s
        self.deadband_m = deadband_m
        self._last_width: float | None = None
        self._last_direction = 0
        self._last_toggle_s = -math.inf

    def reset(self) -> None:
        """Forget history (after a fault is acknowledged)."""
        self._last_width, self._last_direction, self._last_toggle_s = None, 0, -math.inf

    def check(self, now_s: float, width_m: float) -> GripperDecision:
        """The decision for a command received at `now_s`."""
        if isinstance(width_m, bool) or not isinstance(width_m, (int, float)) or \
                not math.isfinite(width_m):
            return GripperDecision(None, 'non_finite')
        width = min(max(float(width_m), 0.0), self.max_width_m)
        reason = 'clipped' if width != width_m else ''
        if self._last_width is None:
            self._last_width = width
            return GripperDecision(width, reason)
        delta = width - self._last_width
        if abs(delta) < self.deadband_m:
            return GripperDecision(None, reason)
        direction = 1 if delta > 0 else -1
        if self._last_direction and direction != self._last_direction:
            if 0.0 <= now_s - self._last_toggle_s < self.min_toggle_interval_s:
                return GripperDecision(None, 'toggle_rate')
            self._last_toggle_s = now_s
        elif not self._last_direction:
            self._last_toggle_s = now_s
        self._last_direction = direction
        self._last_width = width
        return GripperDecision(width, reason)
