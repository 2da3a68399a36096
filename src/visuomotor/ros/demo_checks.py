"""What each demo stage must show: named checks, so `make demo` fails when one does not."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One acceptance check of a demo stage."""

    what: str
    passed: bool

    def line(self) -> str:
        """The report line."""
        return f'  check: {self.what}: {"PASS" if self.passed else "FAIL"}'
