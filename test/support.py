"""Helpers shared by the test tiers (importable as `support`: test/ is on pytest's path)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

REPO = Path(__file__).resolve().parents[1]


class _Spinner(Protocol):
    def spin_once(self, timeout_sec: float | None = None) -> None: ...


def spin_until(executor: _Spinner, condition: Callable[[], bool],
               timeout_s: float = 10.0) -> bool:
    """Spin `executor` until `condition()` holds or `timeout_s` passes; return condition()."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
    return condition()



def make_test_bundle(directory: Path, **kwargs: object) -> Path:
    """A small untrained policy bundle (Levine encoder, random weights) for tests."""
    from visuomotor.training.export import untrained_bundle
    untrained_bundle(directory, **kwargs)  # type: ignore[arg-type]
    return directory
