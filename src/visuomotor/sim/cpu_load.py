"""A CPU hog for load tests of the twin graphs: busy processes on every core, nice 0.

What an ordinary loaded machine does to a graph (a compile, a training run, a browser), made
reproducible: `with CpuHog(2): ...` runs two spinning processes (same priority as the graph)
and stops them on exit, however the block ends. Each hog process also dies with its parent
(PR_SET_PDEATHSIG on Linux), so a killed test or bench never leaves one behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_SPIN = ('import ctypes, signal\n'
         'try:\n'
         '    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)\n'
         'except OSError:\n'
         '    pass\n'
         'x = 0\n'
         'while True:\n'
         '    x += 1\n')


class CpuHog:
    """`processes` busy loops at nice 0 while the `with` block runs.

    Attributes:
        cpu_s: CPU seconds the hog processes used (after the block), to report their share.
    """

    def __init__(self, processes: int | None = None) -> None:
        self.processes = processes if processes is not None else (os.cpu_count() or 1)
        self._children: list[subprocess.Popen[bytes]] = []
        self.cpu_s = 0.0
        self.wall_s = 0.0
        self._start = 0.0

    def __enter__(self) -> CpuHog:
        self._start = time.monotonic()
        for _ in range(self.processes):
            self._children.append(subprocess.Popen([sys.executable, '-c', _SPIN],
                                                   stdin=subprocess.DEVNULL))
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.monotonic() - self._start
        for child in self._children:
            self.cpu_s += _cpu_seconds(child.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        self._children.clear()

    @property
    def cores_used(self) -> float:
        """Average cores the hog kept busy."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc), 0 where unreadable."""
    try:
        fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

