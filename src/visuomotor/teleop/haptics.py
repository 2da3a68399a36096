"""Haptic feedback patterns (pure).

What the controller feels when an episode starts, stops, is discarded or refused, or the
headset yaw is aligned. Pulses are (start offset s, duration s, amplitude 0..1); the node
turns them into the source's feedback messages.
"""

from __future__ import annotations

Pulse = tuple[float, float, float]

PATTERN_GAP_S = 0.2
"""Pause between two queued patterns, so that 'stopped' then 'refused' reads as two cues."""

PATTERNS: dict[str, tuple[Pulse, ...]] = {
    'started': ((0.0, 0.12, 0.8),),
    'stopped': ((0.0, 0.08, 0.8), (0.16, 0.08, 0.8)),
    'discarded': ((0.0, 0.4, 1.0),),
    'refused': ((0.0, 0.05, 0.5), (0.1, 0.05, 0.5), (0.2, 0.05, 0.5)),
    'aligned': ((0.0, 0.06, 0.6), (0.12, 0.06, 0.6), (0.24, 0.06, 0.6)),
}


def pulse_schedule(event: str, now_s: float) -> list[tuple[float, float]]:
    """(time, amplitude) settings for `event` from `now_s`: each pulse on, then off."""
    schedule: list[tuple[float, float]] = []
    for offset, duration, amplitude in PATTERNS[event]:
        schedule += [(now_s + offset, amplitude), (now_s + offset + duration, 0.0)]
    return schedule


class HapticPlayer:
    """Plays pulse schedules one setting per call, in order, never skipping a pulse.

    The node calls `step` from its timer. When the timer runs late (a loaded machine, coarse
    simulated clock steps), several settings can be due at once; sending only the newest
    would turn a whole pulse (on, then off) into a single 'off' that the operator never
    feels. Instead, the oldest due setting is sent and everything after it moves later by
    the lateness, so every pulse is felt and keeps its length.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[float, float]] = []

    def add(self, event: str, now_s: float) -> None:
        """Queue the pattern of `event` from `now_s`, or after the pattern still playing.

        Patterns never overlap, so each stays recognisable. KeyError for an unknown event.
        """
        start = now_s if not self._pending else max(now_s, self._pending[-1][0] + PATTERN_GAP_S)
        self._pending += pulse_schedule(event, start)

    def step(self, now_s: float) -> float | None:
        """The amplitude to send now, or None when nothing is due."""
        if not self._pending or self._pending[0][0] > now_s:
            return None
        due_s, amplitude = self._pending.pop(0)
        late = now_s - due_s
        if late > 0.0:
            self._pending = [(t + late, a) for t, a in self._pending]
        return amplitude

    @property
    def idle(self) -> bool:
        """True when nothing is queued."""
        return not self._pending
