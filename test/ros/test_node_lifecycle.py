"""Node processes stop cleanly on SIGINT and SIGTERM, and never end in a traceback.

Real processes and real signals: the node executables' modules (run_node, node_main.py) and
a probe node that misbehaves on purpose (slow cleanup, a stuck callback, a thread that
publishes forever, a context shut down under it).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from support import REPO, FollowedProcess

TWIN = ['use_sim_time:=true']
OVERRIDE = 'calibration_override:=lifecycle_test'

# Real nodes, one of each way of running: the default spin (bridge), a custom spin loop
# (sim), worker threads that publish (policy's inference thread, the capture node's grab
# threads), a commit thread (recorder).
NODES: dict[str, tuple[list[str], str]] = {
    'bridge_node': (['robot:=fr3', 'workspace:=twin_fr3', *TWIN], 'safety_bridge'),
    'sim_node': (['scene:=fr3'], 'sim_node'),
    'policy_node': (['model:=pick_place_fr3', 'robot:=fr3', 'backend:=onnxruntime', OVERRIDE,
                     *TWIN], 'policy_node'),
    'capture_node': (['rig:=fake_two'], 'capture_node'),
    'recorder_node': (['dataset:={tmp}/dataset', 'rig:=twin_fr3', 'robot:=fr3', OVERRIDE,
                       *TWIN], 'recorder_node'),
}


def running(module: str) -> str:
    """The line run_node logs once the node is built and spinning."""
    return rf'\]: {NODES[module][1]} running \(Ctrl-C'


PROBE = textwrap.dedent('''
    """run_node with one misbehaviour, chosen by argv[1]."""
    import sys
    import threading
    import time

    import rclpy
    from rclpy.node import Node
    from std_msgs.msg import String

    from visuomotor.ros.node_main import run_node

    MODE = sys.argv[1]


    def say(text):
        print(text, file=sys.stderr, flush=True)


    class Probe(Node):
        def __init__(self):
            if MODE == 'slow_start':
                say('building')
                time.sleep(60)
            super().__init__('lifecycle_probe')
            self.pub = self.create_publisher(String, '~/out', 10)
            if MODE == 'stuck_callback':
                self.create_timer(0.1, self.stuck)
            if MODE == 'context_shutdown':
                self.create_timer(0.5, rclpy.try_shutdown)
            if MODE == 'publishing_thread':  # never stopped by destroy_node
                threading.Thread(target=self.publish_forever, name='publisher').start()
            if MODE == 'lingering_thread':  # a non-daemon thread that outlives run_node
                threading.Thread(target=time.sleep, args=(60,), name='lingering').start()
            say('ready')

        def stuck(self):
            say('callback stuck')
            time.sleep(60)

        def publish_forever(self):
            say('publishing')
            while True:
                self.pub.publish(String(data='x'))
                time.sleep(0.001)

        def destroy_node(self):
            say('cleanup started')
            if MODE == 'slow_cleanup':
                time.sleep(60)
            super().destroy_node()
            say('cleanup done')


    code = run_node('probe', Probe, sys.argv)
    say(f'run_node returned {code}')
    sys.exit(code)
''')


class _Process(FollowedProcess):
    """A node process (from the source tree) whose waits and exits fail the test."""

    def __init__(self, command: list[str], cwd: Path) -> None:
        super().__init__(command, {**os.environ, 'PYTHONPATH': os.pathsep.join(
            [str(REPO / 'src'), os.environ.get('PYTHONPATH', '')])}, cwd)

    def wait_for(self, pattern: str, timeout_s: float = 60.0) -> bool:
        if not super().wait_for(pattern, timeout_s):
            self.kill()
            pytest.fail(f'no {pattern!r} in the output:\n{self.output}')
        return True

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def finish(self, timeout_s: float = 30.0) -> int:  # type: ignore[override]
        code = super().finish(timeout_s)
        if code is None:
            pytest.fail(f'still running {timeout_s} s after the signal:\n{self.output}')
        return code


def _node(module: str, tmp_path: Path) -> _Process:
    parameters, _ = NODES[module]
    command = [sys.executable, '-m', f'visuomotor.ros.{module}', '--ros-args']
    command += [a for p in parameters for a in ('-p', p.format(tmp=tmp_path))]
    return _Process(command, tmp_path)


def _probe(mode: str, tmp_path: Path) -> _Process:
    script = tmp_path / 'probe.py'
    script.write_text(PROBE)
    process = _Process([sys.executable, str(script), mode], tmp_path)
    process.wait_for('ready' if mode != 'slow_start' else 'building')
    return process


def _clean(process: _Process) -> str:
    assert 'Traceback' not in process.output, process.output
    return process.output


@pytest.mark.slow
@pytest.mark.parametrize('module', sorted(NODES))
def test_sigterm_stops_a_node_like_ctrl_c(tmp_path: Path, module: str) -> None:
    """docker stop / systemd: destroy_node runs (threads joined, files closed), exit 0."""
    node = _node(module, tmp_path)
    node.wait_for(running(module), 90)
    time.sleep(1.0)  # let timers, worker threads and grab threads publish
    node.signal(signal.SIGTERM)
    assert node.finish() == 0, node.output
    assert 'SIGTERM: stopping' in _clean(node)


@pytest.mark.slow
@pytest.mark.parametrize('module', ['capture_node', 'bridge_node'])
def test_ctrl_c_twice_ends_a_node_without_a_traceback(tmp_path: Path, module: str) -> None:
    node = _node(module, tmp_path)
    node.wait_for(running(module), 90)
    time.sleep(0.5)
    node.signal(signal.SIGINT)
    time.sleep(0.05)
    node.signal(signal.SIGINT)
    # 0: the second signal came before cleanup began; 130: it cut the cleanup short
    assert node.finish() in (0, 130), node.output
    _clean(node)


@pytest.mark.parametrize(('signum', 'code'), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_second_signal_during_cleanup_cuts_it_short(tmp_path: Path, signum: int,
                                                      code: int) -> None:
    """The KeyboardInterrupt lands inside destroy_node: one line, exit 128 + signal."""
    probe = _probe('slow_cleanup', tmp_path)
    probe.signal(signal.SIGINT)
    probe.wait_for('cleanup started')
    probe.signal(signum)
    assert probe.finish() == code
    output = _clean(probe)
    assert f'probe: {signal.Signals(signum).name} during cleanup: stopped without finishing' \
        in output
    assert 'cleanup done' not in output


def test_a_context_shut_down_elsewhere_ends_the_node_cleanly(tmp_path: Path) -> None:
    """ExternalShutdownException out of the executor is a stop, not a crash."""
    probe = _probe('context_shutdown', tmp_path)
    assert probe.finish() == 0
    output = _clean(probe)
    assert 'the ROS context was shut down: stopping' in output
    assert 'cleanup done' in output


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_a_thread_publishing_through_the_shutdown_ends_without_a_traceback(
        tmp_path: Path, signum: int) -> None:
    """A worker that keeps publishing after its publisher and context are gone."""
    probe = _probe('publishing_thread', tmp_path)
    probe.wait_for('publishing')
    probe.signal(signum)
    assert probe.finish() == 0
    output = _clean(probe)
    assert 'cleanup done' in output
    assert re.search(r'probe: thread publisher stopped at shutdown: \w+', output), output


def test_a_signal_while_the_node_is_built_stops_at_once(tmp_path: Path) -> None:
    """A model loading or an engine building for minutes must not need SIGKILL."""
    probe = _probe('slow_start', tmp_path)
    probe.signal(signal.SIGTERM)
    assert probe.finish(10) == 0
    assert 'probe: SIGTERM while starting: stopped before it was ready' in _clean(probe)


def test_a_second_signal_interrupts_a_stuck_callback_and_still_cleans_up(
        tmp_path: Path) -> None:
    """The first signal waits for the callback to return; the second does not."""
    probe = _probe('stuck_callback', tmp_path)
    probe.wait_for('callback stuck')
    probe.signal(signal.SIGINT)
    time.sleep(0.5)
    assert probe.process.poll() is None  # the first waits for the callback
    probe.signal(signal.SIGINT)
    assert probe.finish(10) == 0
    assert 'cleanup done' in _clean(probe)


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_a_node_with_nothing_to_do_sees_the_signal_at_once(tmp_path: Path,
                                                          signum: int) -> None:
    """No timer, no message: the executor still wakes up for the signal."""
    probe = _probe('idle', tmp_path)
    start = time.monotonic()
    probe.signal(signum)
    assert probe.finish(10) == 0
    assert time.monotonic() - start < 5.0
    output = _clean(probe)
    assert f'{signal.Signals(signum).name}: stopping' in output
    assert 'cleanup done' in output and 'run_node returned 0' in output


def test_a_signal_while_a_non_daemon_thread_finishes_ends_the_process(
        tmp_path: Path) -> None:
    probe = _probe('lingering_thread', tmp_path)
    probe.signal(signal.SIGINT)
    probe.wait_for('run_node returned 0')
    probe.signal(signal.SIGINT)
    assert probe.finish(10) == 130
    assert 'probe: SIGINT while waiting for threads to finish (lingering' in _clean(probe)
