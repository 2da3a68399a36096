"""The launch-free runner: starts a node graph (visuomotor.ros.graph) as processes.

On machines without the `launch` package (these build machines, a bare pip install) this does
what `ros2 launch` does with the same graph: one process per node, the node name remapped,
the parameters in a YAML params file, the topic remappings on the command line. Each
process's output goes to `<log_dir>/<node>.log`. `visuomotor launch deploy robot:=sim ...`
runs a graph until Ctrl-C, following it (visuomotor.ros.graph_monitor: the bridge's state,
errors on /diagnostics, node exits) and ending with a non-zero exit and the reason when the
bridge latches a fault or a node dies; the demo and the whole-graph tests use
`GraphProcesses` directly (they also kill and restart nodes to inject faults).

A graph started here runs on its own ROS domain, discoverable on this host only, unless
ROS_DOMAIN_ID is set, which is then respected (`graph_domain()`): two graphs on one machine
never cross-talk, and a twin never shares a domain with a robot by accident.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import rclpy
import yaml
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor

from visuomotor.errors import VisuomotorError
from visuomotor.ros.graph import NodeSpec
from visuomotor.ros.graph_monitor import GraphMonitor


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


def private_domain_id() -> int:
    """A ROS domain for a throw-away graph: 10-99 (clear of 0 and of ephemeral ports)."""
    return os.getpid() % 90 + 10


@dataclass(frozen=True)
class GraphDomain:
    """The ROS domain a launch-free graph runs on.

    Attributes:
        domain_id: the ROS_DOMAIN_ID of every node.
        chosen: True when ROS_DOMAIN_ID was set by the user (respected as given).
        env: the environment variables that put a process on it.
    """

    domain_id: int
    chosen: bool
    env: dict[str, str]

    def describe(self) -> str:
        """One line for the console."""
        if self.chosen:
            return f'ROS domain {self.domain_id} (from ROS_DOMAIN_ID)'
        return (f'ROS domain {self.domain_id}, this host only (a private one; set ROS_DOMAIN_ID '
                f'to choose; to look at it: ROS_DOMAIN_ID={self.domain_id} '
                'ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ros2 topic list)')


def graph_domain(environ: Mapping[str, str] | None = None) -> GraphDomain:
    """ROS_DOMAIN_ID when set, else a private domain discovered on this host only.

    Raises:
        VisuomotorError: a ROS_DOMAIN_ID that is not an integer in 0..232.
    """
    environ = os.environ if environ is None else environ
    text = environ.get('ROS_DOMAIN_ID', '').strip()
    if text:
        if not text.isdigit() or int(text) > 232:
            raise VisuomotorError(f'ROS_DOMAIN_ID={text!r} is not a ROS domain: use an integer '
                                  'in 0..232 (0..101 on Linux avoids ephemeral ports), or unset '
                                  'it for a private domain')
        return GraphDomain(int(text), True, {'ROS_DOMAIN_ID': text})
    domain = private_domain_id()
    return GraphDomain(domain, False, {
        'ROS_DOMAIN_ID': str(domain), 'ROS_AUTOMATIC_DISCOVERY_RANGE':
            environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')})


class GraphProcesses:
    """A running graph: one child process per node.

    Args:
        nodes: the graph.
        log_dir: where params files and per-node logs go.
        env: extra environment variables for every node.
        domain_id: run the graph on this private ROS domain, discovering on this host only;
            None: `graph_domain()` (ROS_DOMAIN_ID when set, else a private domain). A demo
            must never share a domain with a real robot's graph.
    """

    def __init__(self, nodes: Sequence[NodeSpec], log_dir: str | Path,
                 env: dict[str, str] | None = None, domain_id: int | None = None) -> None:
        self.nodes = {n.name: n for n in nodes}
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.domain = graph_domain() if domain_id is None else GraphDomain(
            domain_id, False, {'ROS_DOMAIN_ID': str(domain_id),
                               'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'})
        self.env = {**os.environ, 'PYTHONUNBUFFERED': '1', **self.domain.env, **(env or {})}
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


#: Exit code of `visuomotor launch` when the safety bridge latched a fault.
EXIT_FAULT = 3


class MonitoredGraph:
    """A graph's processes with a monitor beside it, printing what the graph does.

    Args:
        nodes, log_dir: as GraphProcesses.
        say: where event lines go.
    """

    def __init__(self, nodes: Sequence[NodeSpec], log_dir: Path,
                 say: Callable[[str], None]) -> None:
        self.graph = GraphProcesses(nodes, log_dir)
        self.say = say
        self.context = Context()
        rclpy.init(args=[], context=self.context, domain_id=self.graph.domain.domain_id)
        self.monitor = GraphMonitor(self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.monitor.node)

    def start(self) -> None:
        """Start every node and say where."""
        self.graph.start()
        self.say(f'graph on {self.graph.domain.describe()}')
        for node in self.graph.nodes.values():
            self.say(f'started {node.name} ({node.executable}); log: '
                     f'{self.graph.log_dir / (node.name + ".log")}')

    def poll(self, timeout_s: float = 0.2) -> None:
        """Handle the monitor's messages for up to `timeout_s`; print what changed."""
        self.executor.spin_once(timeout_sec=timeout_s)
        for event in self.monitor.drain():
            self.say(f'[{event.level}] {event.text}')

    def close(self) -> None:
        """Stop the graph and the monitor."""
        try:
            self.graph.close()
        finally:
            self.monitor.close()
            self.executor.shutdown()
            rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> MonitoredGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_graph(nodes: Sequence[NodeSpec], log_dir: Path,
              say: Callable[[str], None] | None = None) -> int:
    """Run a graph until Ctrl-C, a node exits or the bridge latches a fault.

    Prints what the graph does (the bridge's state changes, errors on /diagnostics, node
    exits with their last log lines). Returns 0 after Ctrl-C or when a node finished its job
    (exit code 0, e.g. a scripted operator), the node's exit code when one failed, and
    EXIT_FAULT when the bridge latched a fault. SIGTERM and SIGHUP (a closed terminal, a CI
    timeout, `docker stop`) stop the graph like Ctrl-C.
    """
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    with MonitoredGraph(nodes, log_dir, say or _print) as running:
        try:
            running.start()
            return _follow(running)
        except KeyboardInterrupt:
            running.say('stopping the graph (interrupted)')
            return 0


def _follow(running: MonitoredGraph) -> int:
    """Print the graph's events until it ends; the exit code (see run_graph)."""
    graph, monitor, out = running.graph, running.monitor, running.say
    fault_since: float | None = None
    while True:
        running.poll()
        exited = graph.exited()
        if exited:
            failed = {n: c for n, c in exited.items() if c != 0}
            for name, code in exited.items():
                if code == 0:
                    out(f'{name} finished (exit 0); stopping the graph. Its last lines:\n'
                        f'{graph.log_tail(name, 5)}')
                else:
                    out(f'{name} exited with code {code}; stopping the graph. Its last '
                        f'lines:\n{graph.log_tail(name)}')
            return next(iter(failed.values())) if failed else 0
        if monitor.faulted:
            # Give the reason (on /diagnostics) a moment to arrive, then end loudly.
            fault_since = fault_since or time.monotonic()
            if monitor.fault_reason or time.monotonic() - fault_since > 2.0:
                running.poll(0.0)
                out(f'the safety bridge latched a fault: {monitor.fault_reason or "see its log"}'
                    f'; stopping the graph (exit {EXIT_FAULT}). Logs: {graph.log_dir}')
                return EXIT_FAULT
        else:
            fault_since = None


def _print(line: str) -> None:
    print(f'[visuomotor launch] {line}', flush=True)  # noqa: T201
