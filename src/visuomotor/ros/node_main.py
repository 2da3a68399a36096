"""Shared pieces of the nodes' executables: poses as messages and the process entry point.

`run_node` is the process life cycle of every node executable (lib/visuomotor/*, what
`ros2 run`, launch_ros and the Docker image start):

- SIGINT (Ctrl-C, ros2 launch) and SIGTERM (`docker stop`, systemd, launch's escalation)
  both stop the node the same way: the executor finishes the callback it is in, then
  `destroy_node` runs (worker threads stop, files close) while the ROS context is still
  valid, then the context shuts down; exit code 0.
- rclpy's own handlers are NOT installed (`SignalHandlerOptions.NO`): on SIGINT they shut the
  context down at once, under the node, so the executor raised ExternalShutdownException and
  worker threads and destroy_node published on a dead context ("publisher's context is
  invalid"). A context shut down by someone else still ends the node cleanly.
- A second signal while cleaning up cuts the cleanup short: no traceback, exit code 128 +
  the signal number (130 for SIGINT, 143 for SIGTERM). A second signal while a callback is
  stuck interrupts it (then cleanup runs). A signal while the node is still being built
  (loading a model, opening cameras) ends the process at once, exit code 0.
- A worker thread that publishes after its publisher or the context is gone (inference,
  commit, camera grab and overlay threads) is reported in one line, not a traceback.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from rclpy.exceptions import InvalidHandle
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.guard_condition import GuardCondition
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from visuomotor.errors import VisuomotorError
from visuomotor.robots.transforms import Matrix, quat_from_matrix

NodeT = TypeVar('NodeT', bound=Node)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def pose_to_msg(pose: Matrix, stamp: Time, frame_id: str) -> PoseStamped:
    """A 4x4 homogeneous pose as geometry_msgs/PoseStamped."""
    msg = PoseStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v)
                                                                     for v in pose[:3, 3])
    w, x, y, z = quat_from_matrix(pose)
    msg.pose.orientation.w, msg.pose.orientation.x = float(w), float(x)
    msg.pose.orientation.y, msg.pose.orientation.z = float(y), float(z)
    return msg


class _StopRequested(KeyboardInterrupt):
    """Raised between callbacks once SIGINT or SIGTERM asked the node to stop.

    A KeyboardInterrupt, so code that already cleans up on Ctrl-C does the same here.
    """


_CONTEXT_GONE = re.compile(r'context is (invalid|not valid)')


def is_shutdown_error(error: BaseException) -> bool:
    """Whether `error` only says that the node or its ROS context is already gone.

    Such errors come from threads that publish while the process shuts down (a destroyed
    publisher: InvalidHandle; a shut-down context: RCLError "publisher's context is
    invalid"), and from an executor whose context was shut down under it
    (ExternalShutdownException, or RCLError "the given context is not valid" when the
    shutdown came from inside a callback).
    """
    if isinstance(error, (InvalidHandle, ExternalShutdownException)):
        return True
    return (isinstance(error, _rclpy.RCLError)
            and _CONTEXT_GONE.search(str(error)) is not None)


def _destroyed(node: Node) -> bool:
    """Whether `node` was destroyed already (rclpy's context shutdown destroys its nodes)."""
    try:
        with node.handle:
            return False
    except InvalidHandle:
        return True


class _Lifecycle:
    """The SIGINT/SIGTERM handling of one node process.

    The handler raises (KeyboardInterrupt) only inside the regions run_node marks
    `interruptible`: building the node, spinning, and destroy_node. Anywhere else (the
    exception handlers, the context shutdown) a signal is only recorded, so a signal can never
    turn into a traceback there.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.phase = 'starting'  # -> 'running' -> 'stopping' -> 'done'
        self.interruptible = False
        self.requested = ''      # the first stop signal
        self.interrupted_by = ''  # the signal that interrupted building, a callback or cleanup
        self.guard: GuardCondition | None = None  # triggered to wake the executor

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The Python-level handler of SIGINT and SIGTERM (runs in the main thread).

        starting: stop at once (KeyboardInterrupt out of the node's constructor);
        running: the first signal asks the executor to stop after the current callback; a
            second one interrupts the callback (a node stuck in one still stops);
        stopping: a signal cuts the cleanup (destroy_node) short;
        done: only non-daemon threads keep the process alive: end it now.
        """
        name = signal.Signals(signum).name
        if self.phase == 'done':
            waiting = [t.name for t in threading.enumerate()
                       if not t.daemon and t is not threading.main_thread()]
            if waiting:  # else the process is ending by itself
                print(f'{self.name}: {name} while waiting for threads to finish '  # noqa: T201
                      f'({", ".join(waiting)}): exiting now', file=sys.stderr, flush=True)
                _exit_now(128 + signum)
            return
        first = not self.requested
        self.requested = self.requested or name
        if self.interruptible and (self.phase != 'running' or not first):
            self.interruptible = False
            self.interrupted_by = name
            raise KeyboardInterrupt
        # The main thread may be about to wait (this handler can run between check() and
        # rcl_wait): make the wait return at once.
        self.wake()

    def wake(self) -> None:
        """Trigger the node's guard condition, so the executor's wait returns."""
        guard = self.guard
        if guard is not None:
            with contextlib.suppress(Exception):  # the node is being destroyed
                guard.trigger()

    def check(self) -> None:
        """Raise _StopRequested once a signal asked the running node to stop."""
        if self.requested and self.phase == 'running' and self.interruptible:
            self.interruptible = False
            raise _StopRequested

    def thread_excepthook(self, previous: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """A threading.excepthook that, once stopping, reports shutdown errors in one line.

        A worker thread (inference, commit, camera grab, overlays) that publishes after its
        node or the context is gone would otherwise print a traceback at every Ctrl-C. Any
        other error, or any error while running, goes to `previous` unchanged.
        """
        def hook(args: Any) -> None:
            error = args.exc_value
            if self.phase in ('stopping', 'done') and error is not None \
                    and is_shutdown_error(error):
                thread = args.thread.name if args.thread is not None else 'a thread'
                print(f'{self.name}: thread {thread} stopped at shutdown: '  # noqa: T201
                      f'{type(error).__name__}: {error}', file=sys.stderr, flush=True)
                return
            previous(args)
        return hook


def _ignore_stop_signals() -> None:
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _exit_now(code: int) -> None:
    """End the process without waiting for threads."""
    os._exit(code)


class _StoppableExecutor(SingleThreadedExecutor):
    """A SingleThreadedExecutor that stops between callbacks when the process is asked to.

    Every spin loop (the default one and the nodes' own: sim_node, sim_quest_node,
    calibration_capture_node) calls spin_once, so a stop request surfaces there, never in
    the middle of a callback.
    """

    def __init__(self, lifecycle: _Lifecycle) -> None:
        super().__init__()
        self._lifecycle = lifecycle

    def spin_once(self, timeout_sec: float | None = None) -> None:
        """Run at most one callback; raise _StopRequested when a stop was asked for."""
        self._lifecycle.check()
        super().spin_once(timeout_sec)
        self._lifecycle.check()


class _SignalWake:
    """Wakes the node's executor as soon as a stop signal arrives.

    Python runs signal handlers in the main thread between bytecodes, but the executor waits
    in rcl_wait (C, GIL released) until an entity is ready, and only returns from spin_once
    after a callback ran: a node without timers (or on simulated time with no /clock) would
    not see Ctrl-C until its next message. Python's C-level handler writes every signal number
    to the wake-up fd (`signal.set_wakeup_fd`) at once, from whatever thread the signal hit;
    this thread reads it and triggers a guard condition of the node (rclpy's
    `Node.create_guard_condition`, public and thread-safe), whose empty callback makes
    spin_once return, so the stop request is seen between callbacks.
    """

    def __init__(self, lifecycle: _Lifecycle) -> None:
        self._lifecycle = lifecycle
        self._read, self._write = socket.socketpair()
        self._write.setblocking(False)
        self._previous = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        self._thread = threading.Thread(target=self._run, name='signal-wake', daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = self._read.recv(64)
            except OSError:
                return
            if not data:
                return
            self._lifecycle.wake()

    def close(self) -> None:
        """Stop waking the executor (the signal handlers stay installed)."""
        signal.set_wakeup_fd(self._previous)
        self._write.close()
        self._thread.join(timeout=1.0)
        self._read.close()


def run_node(name: str, make: Callable[[], NodeT], args: list[str] | None,
             spin: Callable[[NodeT, SingleThreadedExecutor], None] | None = None) -> int:
    """Run one node as a process: init, build, spin until SIGINT/SIGTERM, clean up.

    A VisuomotorError while building (a bad parameter, an unsafe profile) refuses to start:
    the message goes to stderr and the exit code is 2. SIGINT or SIGTERM stop the node
    between callbacks, run `destroy_node` on a live context and return 0; a second signal
    during cleanup returns 128 + its number; the module docstring has the whole life cycle.
    Called from the main thread, it owns the process's SIGINT and SIGTERM handlers until
    the process exits (a signal after it returned, while non-daemon threads finish, ends
    the process at once).

    Args:
        name: the executable's name (messages).
        make: builds the node (after rclpy.init).
        args: command line arguments for rclpy (None: sys.argv).
        spin: the node's own spin loop; default: spin until stopped. It must spin with
            `executor.spin_once`, which raises a KeyboardInterrupt when a stop was asked.
    """
    lifecycle = _Lifecycle(name)
    wake: _SignalWake | None = None
    if threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, lifecycle.on_signal)
        threading.excepthook = lifecycle.thread_excepthook(threading.excepthook)
        # Python's finalization resets Python-level handlers to SIG_DFL, so a late Ctrl-C
        # would kill the exiting process by SIGINT; atexit callbacks run after the threads
        # finished and before that: from there on the process ends by itself.
        atexit.register(_ignore_stop_signals)
        wake = _SignalWake(lifecycle)
    try:
        return _run(lifecycle, make, args, spin)
    finally:
        lifecycle.phase = 'done'
        if wake is not None:
            wake.close()


def _run(lifecycle: _Lifecycle, make: Callable[[], NodeT], args: list[str] | None,
         spin: Callable[[NodeT, SingleThreadedExecutor], None] | None) -> int:
    name = lifecycle.name
    try:
        try:
            lifecycle.interruptible = True
            # No rclpy signal handlers: they would shut the context down under the node.
            try:
                rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
            except _rclpy.RCLError as error:  # a malformed --ros-args command line
                raise VisuomotorError(
                    f'the command line arguments are not valid ROS arguments ({error}); give '
                    'parameters as --ros-args -p name:=value (e.g. -p seed:=3) or a '
                    '--params-file') from None
            node = make()
        finally:
            lifecycle.interruptible = False
    except KeyboardInterrupt:
        print(f'{name}: {lifecycle.interrupted_by} while starting: stopped before it '  # noqa: T201
              'was ready', file=sys.stderr)
        _shutdown()
        return 0
    except VisuomotorError as error:
        print(f'{name}: refusing to start: {error}', file=sys.stderr)  # noqa: T201
        _shutdown()
        return 2
    executor = _StoppableExecutor(lifecycle)
    executor.add_node(node)
    lifecycle.guard = node.create_guard_condition(lambda: None)
    lifecycle.phase = 'running'
    node.get_logger().info(f'{name} running (Ctrl-C or SIGTERM stops it)')
    failure: BaseException | None = None
    try:
        try:
            lifecycle.interruptible = True
            if spin is None:
                while True:
                    executor.spin_once()
            else:
                spin(node, executor)
        finally:
            lifecycle.interruptible = False
        reason = 'the spin loop ended'
    except KeyboardInterrupt:
        reason = f'{lifecycle.requested or lifecycle.interrupted_by}: stopping'
    except BaseException as error:
        if is_shutdown_error(error) and not node.context.ok():
            reason = 'the ROS context was shut down: stopping'
        else:  # a bug: clean up, then raise it with its traceback
            failure, reason = error, f'{type(error).__name__}: stopping'
    lifecycle.phase, lifecycle.guard = 'stopping', None
    try:
        try:
            lifecycle.interruptible = True
            node.get_logger().info(reason)
            if not _destroyed(node):
                executor.remove_node(node)
                node.destroy_node()
        finally:
            lifecycle.interruptible = False
    except KeyboardInterrupt:
        print(f'{name}: {lifecycle.interrupted_by} during cleanup: stopped without '  # noqa: T201
              'finishing it', file=sys.stderr)
        # Release the ROS entities without the node's own cleanup, which the context's
        # shutdown would otherwise run again (rclpy destroys the nodes it still tracks).
        with contextlib.suppress(Exception):
            Node.destroy_node(node)
        _shutdown()
        return 128 + signal.Signals[lifecycle.interrupted_by].value
    _shutdown()
    if failure is not None:
        raise failure
    return 0


def _shutdown() -> None:
    """Shut the default context down; rclpy's signal handlers were never installed."""
    rclpy.try_shutdown(uninstall_handlers=False)
