"""Haptic feedback patterns (pure).

What the controller feels when an episode starts, stops, is discarded or refused, or the
headset yaw is aligned. Pulses are (start offset s, duration s, amplitude 0..1); the node
turns them into the source's feedback messages.
"""

from __future__ import annotations

Pulse = tuple[float, float, float]

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
