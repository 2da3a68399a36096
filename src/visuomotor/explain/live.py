"""Pacing of the policy node's live overlays (pure; the thread and publishers are in ros/).

Overlays ride on inferences the control loop makes anyway: the inference thread asks `due`
before a pass and, when it is, keeps that pass's network inputs and feature points and hands
them over. Saliency maps (a backward pass of the PyTorch twin) have their own, lower rate; the
last map is shown until the next one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OverlaySettings:
    """From the policy node's parameters (`debug_*`)."""

    rate_hz: float
    saliency: bool
    saliency_rate_hz: float
    scale: int

    def __post_init__(self) -> None:
        if not self.rate_hz > 0.0 or not self.saliency_rate_hz > 0.0:
            raise ValueError('overlay rates must be positive')
        if self.scale < 1:
            raise ValueError('overlay scale must be at least 1')


class OverlayPacer:
    """When the next overlay and the next saliency map are due (times in s, any clock)."""

    def __init__(self, settings: OverlaySettings) -> None:
        self.settings = settings
        self._next_s: float | None = None
        self._next_saliency_s: float | None = None

    def due(self, now_s: float) -> bool:
        """Whether the inference at `now_s` should keep its inputs for an overlay."""
        return self._next_s is None or now_s >= self._next_s

    def taken(self, now_s: float) -> None:
        """An overlay was taken at `now_s`.

        The next is due one period after the previous due time (a fixed cadence, so ticks
        that come a little early do not halve the rate), or one period from now when behind.
        """
        period = 1.0 / self.settings.rate_hz
        if self._next_s is None or now_s - self._next_s >= period:
            self._next_s = now_s + period
        else:
            self._next_s += period

    def saliency_due(self, now_s: float) -> bool:
        """Whether the overlay drawn at `now_s` computes a fresh saliency map (and takes it)."""
        if not self.settings.saliency:
            return False
        if self._next_saliency_s is not None and now_s < self._next_saliency_s:
            return False
        self._next_saliency_s = now_s + 1.0 / self.settings.saliency_rate_hz
        return True
