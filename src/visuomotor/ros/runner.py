"""The launch-free runner: starts a node graph (visuomotor.ros.graph) as processes.

On machines without the `launch` package (these build machines, a bare pip install) this does
what `ros2 launch` does with the same graph: one process per node, the node name remapped,
the parameters in a YAML params file, the topic remappings on the command line. Each
process's output goes to `<log_dir>/<node>.log`. `visuomotor launch deploy robot:=sim ...`
runs a graph until Ctrl-C; the demo and the whole-graph tests use `GraphProcesses` directly
(they also kill and restart nodes to inject faults).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import yaml

from visuomotor.ros.graph import NodeSpec


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL('libc.so.6', use_errno=True)
    except OSError:
        return None  # not glibc Linux: Ctrl-C and close() still stop the graph


_LIBC = _load_libc()  # loaded here: the child after fork only makes the call


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the runner dies, however it dies (PR_SET_PDEATHSIG)."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)


def node_command(node: NodeSpec, params_file: Path) -> list[str]:
    """The command line that runs `node` (what launch_ros builds from a Node action)."""
    command = [sys.executable, '-m', node.module, '--ros-args', '-r', f'__node:={node.name}',
               '--params-file', str(params_file)]
    for source, target in node.remappings:
        command += ['-r', f'{source}:={target}']
    return command


def write_params_file(node: NodeSpec, directory: Path) -> Path:
    """The node's parameters as a ROS 2 params file."""
    path = directory / f'{node.name}.params.yaml'
    path.write_text(yaml.safe_dump({'/**': {'ros__parameters': dict(node.parameters)}},
                                   sort_keys=True))
    return path


class GraphProcesses:
    """A running graph: one child process per node.

    Args:
        nodes: the graph.
        log_dir: where params files and per-node logs go.
        env: extra environment variables for every node.
        domain_id: run the graph on this private ROS domain, discovering on this host only
            (a demo must never share a domain with a real robot's graph).
    """

    def __init__(self, nodes: Sequence[NodeSpec], log_dir: str | Path,
                 env: dict[str, str] | None = None, domain_id: int | None = None) -> None:
        self.nodes = {n.name: n for n in nodes}
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        private = {} if domain_id is None else {
            'ROS_DOMAIN_ID': str(domain_id), 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
        self.env = {**os.environ, 'PYTHONUNBUFFERED': '1', **private, **(env or {})}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self._down: set[str] = set()  # killed or stopped on purpose (not an unexpected exit)

    def start(self, name: str | None = None) -> None:
        """Start every node (or one, e.g. after `kill`)."""
        for node in ([self.nodes[name]] if name else self.nodes.values()):
            running = self.processes.get(node.name)
            if running is not None and running.poll() is None:
                continue
            self._down.discard(node.name)
            params = write_params_file(node, self.log_dir)
            log = self._logs.get(node.name)
            if log is None:
                log = self._logs[node.name] = open(self.log_dir / f'{node.name}.log', 'ab')  # noqa: SIM115
            self.processes[node.name] = subprocess.Popen(
                node_command(node, params), stdout=log, stderr=subprocess.STDOUT, env=self.env,
                start_new_session=True, preexec_fn=_die_with_parent)

    def alive(self, name: str) -> bool:
        """Whether the node's process runs."""
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def exited(self) -> dict[str, int]:
        """Nodes whose process ended unexpectedly (not killed or stopped), with exit codes."""
        return {name: code for name, p in self.processes.items()
                if name not in self._down and (code := p.poll()) is not None}

    def kill(self, name: str) -> None:
        """SIGKILL one node and its children (a crash: no cleanup runs)."""
        process = self.processes[name]
        self._down.add(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5.0)

    def stop(self, name: str | None = None, timeout_s: float = 10.0) -> None:
        """Ctrl-C the nodes (or one) and wait; SIGKILL those that do not exit."""
        names = [name] if name else list(self.processes)
        self._down.update(names)
        for n in names:
            if self.alive(n):
                with contextlib.suppress(ProcessLookupError):
                    self.processes[n].send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for n in names:
            process = self.processes[n]
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5.0)

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The last lines a node printed."""
        path = self.log_dir / f'{name}.log'
        if not path.is_file():
            return ''
        return '\n'.join(path.read_text(errors='replace').splitlines()[-lines:])

    def close(self) -> None:
        """Stop everything (SIGKILL whatever is left, even if interrupted) and close the logs."""
        try:
            self.stop()
        finally:
            for process in self.processes.values():
                if process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
            for log in self._logs.values():
                log.close()
            self._logs.clear()

    def __enter__(self) -> GraphProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def private_domain_id() -> int:
    """A ROS domain for a throw-away graph: 10-99 (clear of 0 and of ephemeral ports)."""
    return os.getpid() % 90 + 10


def parse_launch_arguments(items: Sequence[str]) -> dict[str, str]:
    """`name:=value` items (as `ros2 launch` takes them) as a dict."""
    args = {}
    for item in items:
        name, sep, value = item.partition(':=')
        if not sep or not name:
            raise ValueError(f'{item!r} is not name:=value')
        args[name] = value
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_graph(nodes: Sequence[NodeSpec], log_dir: Path) -> int:
    """Run a graph until Ctrl-C or until a node exits; returns the first failing exit code.

    SIGTERM and SIGHUP (a closed terminal, a CI timeout) stop the graph like Ctrl-C.
    """
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    with GraphProcesses(nodes, log_dir) as graph:
        graph.start()
        for node in nodes:
            print(f'started {node.name} ({node.executable}); log: '  # noqa: T201
                  f'{log_dir / (node.name + ".log")}')
        try:
            while True:
                time.sleep(0.5)
                exited = graph.exited()
                if exited:
                    for name, code in exited.items():
                        print(f'{name} exited with {code}:\n{graph.log_tail(name)}',  # noqa: T201
                              file=sys.stderr)
                    return next((c for c in exited.values() if c != 0), 0)
        except KeyboardInterrupt:
            return 0
