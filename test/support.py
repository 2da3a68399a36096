"""Helpers shared by the test tiers (importable as `support`: test/ is on pytest's path)."""

from __future__ import annotations

import os
import re
import subprocess
import threading
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


class FollowedProcess:
    """A child process whose output (stdout and stderr together) is read on a thread, so a
    test can wait for a line while it runs (nodes, `visuomotor launch`)."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**env, 'RCUTILS_LOGGING_BUFFERED_STREAM': '0', 'PYTHONUNBUFFERED': '1',
                 'ROS_LOG_DIR': str(cwd / 'ros_log')})
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        """Everything printed so far."""
        return ''.join(self.lines)

    def wait_for(self, pattern: str, timeout_s: float = 60.0) -> bool:
        """Whether `pattern` (a regex) appears before the timeout or the process's end."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if re.search(pattern, self.output):
                return True
            if self.process.poll() is not None:
                self._reader.join(5)
                return re.search(pattern, self.output) is not None
            time.sleep(0.05)
        return False

    def finish(self, timeout_s: float = 30.0) -> int | None:
        """The exit code, or None (then killed) when it is still running after `timeout_s`."""
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self._reader.join(5)
        return code

    def kill(self) -> None:
        """SIGKILL it (a test that failed must not leave it behind)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def run_checked(command: list[str], cwd: Path) -> str:
    """Run `command`; fail the test with its output when it fails."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600,
                            env={**os.environ, 'PYTHONDONTWRITEBYTECODE': '1'})
    assert result.returncode == 0, f'{command} failed:\n{result.stdout}\n{result.stderr}'
    return result.stdout
