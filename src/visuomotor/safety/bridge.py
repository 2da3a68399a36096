"""The safety bridge's state machine (pure: every method takes the time as an argument).

States:
    DISARMED  nothing is sent; commands are validated and counted, never executed.
    HOLDING   armed, holding the last command (after arming, acknowledging or a stop: the
              measured pose); the next fresh valid command starts motion.
    ARMED     executing the latest valid command through the limiter, one setpoint per tick.
    STOPPING  a controlled stop: every joint decelerates along its current direction at
              a_stop (one uniform factor), then the measured pose is held (-> HOLDING, or
              DISARMED after a disarm request).
    FAULT     latched. A stop runs first if the arm was moving, then the measured pose is held
              once and nothing more is sent. Only `acknowledge` leaves it; never automatically.

Guarantees (../shared/research/safety_anchors.md, G1-G15): non-finite or malformed commands
are rejected before anything else and K consecutive rejects latch a fault (G1); commands
older than the stale limit or not newer than the last are dropped, and chunk steps already
in the past are skipped (G2); no valid command for the watchdog period starts a controlled
stop (G3); missing, stale, frozen or non-finite joint states stop the arm and latch a fault
(G4); the limiter keeps every command within the envelopes (G5-G7); a tracking error above
the bound for longer than its duration stops and faults (G8); faults latch (G10); the first
command after arming or acknowledging equals the measured state (G4, G10).

Command sources are fixed by the first command accepted after arming or acknowledging (its
publisher, from the message's publisher id): a command or gripper width from another
publisher, or another publisher appearing on the command topic, latches a fault, so a
respawned policy never moves the arm or the gripper before the operator acknowledges it.
"Appearing" is against the graph as listed when the sources were fixed: a killed node's
publisher can stay listed for seconds after an acknowledge (DDS drops it when its lease
expires) and is no new source; any message it were to send is still refused. A source that
goes away stops the arm through the watchdog like any stalled stream.

This is not a certified safety function: a hardware E-stop and the robot's own safety
configuration are required.
"""

from __future__ import annotations

import enum
import math
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from visuomotor.robots.kinematics import TcpKinematics
from visuomotor.safety.commands import CommandRejectedError, JointChunk, validate_chunk
from visuomotor.safety.gripper import GripperDecision, GripperGate
from visuomotor.safety.limiter import CommandState, Limiter
from visuomotor.safety.profile import SafetyProfile
from visuomotor.safety.workspace import WorkspaceBox
from visuomotor.trajectory import JointTrajectoryCommand

Vector = npt.NDArray[np.float64]

#: Joint-state stamps that go back by more than this start a new timeline (seconds).
TIME_JUMP_S = 1.0

DISCLAIMER = ('visuomotor safety bridge: NOT a certified safety function. It limits and '
              "watches commands in software; a hardware E-stop within reach and the robot's "
              'own safety configuration (Franka Desk / UR safety settings) are required.')


class State(enum.Enum):
    """Bridge states (see the module docstring)."""

    DISARMED = 'disarmed'
    HOLDING = 'holding'
    ARMED = 'armed'
    STOPPING = 'stopping'
    FAULT = 'fault'


@dataclass(frozen=True)
class BridgeTiming:
    """Timing parameters, seconds (defaults from safety_anchors.md 7.2).

    Attributes:
        control_period_s: time between ticks (one setpoint each).
        stale_s: a command whose stamp is older than this on arrival is dropped.
        watchdog_s: no valid command for this long while moving starts a controlled stop.
        joint_state_timeout_s: joint states older (or frozen) for this long: stop and fault.
        max_consecutive_rejects: this many malformed commands in a row latch a fault.
        tracking_error_duration_s: a tracking error above the bound for this long faults.
        gripper_min_toggle_s: shortest time between gripper direction reversals.
        hold_settle_s: time given to the controller to settle onto the measured pose.
    """

    control_period_s: float = 0.01
    stale_s: float = 0.15
    watchdog_s: float = 0.15
    joint_state_timeout_s: float = 0.05
    max_consecutive_rejects: int = 3
    tracking_error_duration_s: float = 0.05
    gripper_min_toggle_s: float = 0.5
    hold_settle_s: float = 0.1


@dataclass(frozen=True)
class Setpoint:
    """What the controller gets this tick.

    Attributes:
        positions, velocities: the command to reach `time_from_now_s` from now.
        time_from_now_s: when to reach it (one control period; the settle time for a hold).
        tail_positions, tail_time_s: a braking tail (velocity to zero at a_stop, clamped to
            the envelope) appended after the command, so a controller that stops hearing
            from the bridge decelerates instead of holding a moving target; None at rest.
    """

    positions: Vector
    velocities: Vector
    time_from_now_s: float
    tail_positions: Vector | None = None
    tail_time_s: float = 0.0

    def trajectory(self, joint_names: Sequence[str]) -> JointTrajectoryCommand:
        """The setpoint as a joint_trajectory_controller gets it.

        Starting on arrival (stamp 0): the setpoint (positions + velocities, so the
        controller interpolates cubically), then the braking tail.
        """
        names = tuple(joint_names)
        points: list[tuple[float, Sequence[float], Sequence[float], Sequence[float]]] = [
            (self.time_from_now_s, self.positions.tolist(), self.velocities.tolist(), ())]
        if self.tail_positions is not None:
            points.append((self.tail_time_s, self.tail_positions.tolist(), [0.0] * len(names),
                           ()))
        return JointTrajectoryCommand(names, tuple(points))


@dataclass(frozen=True)
class Decision:
    """The decision record of one tick (G14): raw target, limited command and why."""

    time_s: float
    state: str
    raw: Vector | None
    limited: Vector | None
    reasons: tuple[str, ...]
    since_command_s: float = math.inf

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (`since_command`: seconds since the last valid command)."""
        since = round(self.since_command_s, 6) if math.isfinite(self.since_command_s) else None
        return {'t': round(self.time_s, 6), 'state': self.state, 'since_command': since,
                'raw': None if self.raw is None else [round(float(v), 6) for v in self.raw],
                'limited': None if self.limited is None else
                [round(float(v), 6) for v in self.limited],
                'reasons': list(self.reasons)}


@dataclass(frozen=True)
class Event:
    """A state change or a notable drop, for the log (level: info, warn, error)."""

    time_s: float
    level: str
    message: str


@dataclass
class _Measured:
    q: Vector | None = None
    received_s: float = -math.inf
    stamp_s: float = -math.inf


@dataclass
class Counters:
    """Everything counted since start (published on /diagnostics)."""

    values: Counter[str] = field(default_factory=Counter)

    def add(self, key: str, amount: int = 1) -> None:
        """Increment `key`."""
        self.values[key] += amount


class SafetyBridge:
    """The limiter, the watchdogs and the state machine for one robot (see module doc)."""

    def __init__(self, profile: SafetyProfile, workspace: WorkspaceBox | None,
                 timing: BridgeTiming | None = None) -> None:
        self.profile = profile
        self.robot = profile.robot
        self.limits = profile.limits
        self.workspace = workspace
        self.timing = timing or BridgeTiming()
        self.kinematics = TcpKinematics(self.robot)
        self.limiter = Limiter(self.limits, workspace, self.kinematics) \
            if workspace is not None else None
        self.gripper = GripperGate(self.robot.gripper.max_width_m,
                                   self.timing.gripper_min_toggle_s)
        self.state = State.DISARMED
        self.fault_reason = ''
        self.counters = Counters()
        self.events: deque[Event] = deque(maxlen=1000)
        self._measured = _Measured()
        self._command: CommandState | None = None
        self._chunk: JointChunk | None = None
        self._last_stamp_s = -math.inf
        self._last_valid_s = -math.inf
        self._resume_after_s = -math.inf
        self._consecutive_rejects = 0
        self._tracking_since_s: float | None = None
        self._stopping_to = State.HOLDING
        self._held_after_fault = False
        self._fault_while_disarmed = False
        self._last_now_s: float | None = None
        self._sources: frozenset[str] | None = None
        self._accepted_sources: frozenset[str] | None = None
        self._listed_when_fixed: frozenset[str] = frozenset()
        self._accepted_gripper: frozenset[str] | None = None

    # -- inputs -----------------------------------------------------------------------------

    def observe_clock(self, now_s: float) -> None:
        """Note the time; a clock that went back is handled at once.

        Joint states and the tick call this, so a reset twin's (or a replayed bag's) new
        timeline starts fresh before the states that arrive on it are judged. (A command
        applied late, at the time it arrived, must not look like a jump.)
        """
        if self._last_now_s is not None and now_s < self._last_now_s:
            self._clock_jumped(now_s, self._last_now_s - now_s)
        self._last_now_s = now_s

    def on_joint_state(self, now_s: float, names: Sequence[str], positions: Sequence[float],
                       stamp_s: float) -> None:
        """A /joint_states message.

        Messages without the arm joints (a gripper's) are ignored; non-finite arm positions
        latch a fault; a stamp that does not advance does not count as fresh. Stamps that go
        back by more than TIME_JUMP_S come from a new timeline (a restarted driver, a reset
        twin whose clock this bridge may not have seen jump yet): the old measurement is
        dropped, so nothing arms on it, and a bridge that is holding or moving faults.
        """
        self.observe_clock(now_s)
        index = {name: i for i, name in enumerate(names)}
        if not all(name in index for name in self.robot.joint_names):
            return
        if len(positions) != len(names):
            self._fault(now_s, f'joint state has {len(positions)} positions for '
                        f'{len(names)} names')
            return
        q = np.array([positions[index[name]] for name in self.robot.joint_names], dtype=float)
        if not np.all(np.isfinite(q)):
            self._fault(now_s, f'joint state is not finite: {q.tolist()}')
            return
        if stamp_s < self._measured.stamp_s - TIME_JUMP_S:
            self._joint_state_time_jumped(now_s, self._measured.stamp_s - stamp_s)
            return
        if stamp_s <= self._measured.stamp_s:
            self.counters.add('joint_states_not_advancing')
            return
        if now_s - stamp_s > self.timing.joint_state_timeout_s:
            self.counters.add('joint_states_old_stamp')
            return
        self._measured = _Measured(q, now_s, stamp_s)

    def on_command_sources(self, now_s: float, sources: frozenset[str]) -> None:
        """The publishers on the command topic now (ids; the node polls the ROS graph).

        Once the sources are fixed (the first accepted command after arming or acknowledging),
        any other publisher appearing latches a fault: a second command source must never
        mix its commands into the stream unnoticed.
        """
        self._sources = sources
        if self.state in (State.DISARMED, State.FAULT) or self._accepted_sources is None:
            return  # nothing accepted since arming: the sources are not fixed yet
        new = sources - self._accepted_sources - self._listed_when_fixed
        if new:
            self._source_fault(now_s, f'{len(new)} new publisher(s) appeared on the command '
                               'topic after the first accepted command')

    def _source_fault(self, now_s: float, what: str) -> None:
        self._fault(now_s, f'{what} (a restarted policy node or a second command source): '
                    'check which, then acknowledge to accept it')

    def _source_rejected(self, now_s: float, source: str | None,
                         accepted: frozenset[str] | None, what: str) -> bool:
        """Whether a message from `source` breaks the fixed sources (then it faults)."""
        if source is None or accepted is None or source in accepted:
            return False
        self.counters.add('rejected_unknown_source')
        self._source_fault(now_s, f'{what} from another publisher than the first accepted one')
        return True

    def on_command(self, now_s: float, command: JointTrajectoryCommand,
                   source: str | None = None) -> str:
        """A joint command (policy chunk or teleop target) from publisher `source`.

        The first command accepted after arming or acknowledging fixes the command sources
        (its publisher); one from another publisher then latches a fault.

        Returns:
            '' if accepted, else the reason it was dropped or rejected.
        """
        self.counters.add('commands_received')
        try:
            chunk = validate_chunk(command, self.robot.joint_names, self.profile.vendor.lower_rad,
                                   self.profile.vendor.upper_rad)
        except CommandRejectedError as error:
            self._consecutive_rejects += 1
            self.counters.add(f'rejected_{error.reason}')
            self._event(now_s, 'warn', f'command rejected: {error}')
            if self._consecutive_rejects >= self.timing.max_consecutive_rejects:
                self._fault(now_s, f'{self._consecutive_rejects} consecutive invalid commands '
                            f'(last: {error})')
            return str(error.reason)
        self._consecutive_rejects = 0
        if chunk.stamp_s <= self._last_stamp_s:
            self.counters.add('dropped_not_newer')
            return 'not_newer'
        age = now_s - chunk.stamp_s
        if age > self.timing.stale_s:
            self.counters.add('dropped_stale')
            return 'stale'
        if -age > self.timing.stale_s:
            # A clock ahead of ours (another host without time sync): accepting it would make
            # every correctly stamped command after it look reordered.
            self.counters.add('dropped_future_stamp')
            self._event(now_s, 'warn', f'command stamped {-age:.3f} s in the future: is the '
                        f"sender's clock synchronised with this one?")
            return 'future_stamp'
        if chunk.times_s[-1] < now_s:
            self.counters.add('dropped_all_steps_past')
            return 'all_steps_past'
        self._last_stamp_s = chunk.stamp_s
        skipped = int(np.sum(chunk.times_s < now_s))
        if skipped:
            self.counters.add('steps_skipped', skipped)
        if self.state in (State.DISARMED, State.FAULT, State.STOPPING):
            self.counters.add(f'dropped_{self.state.value}')
            return str(self.state.value)
        if self.state is State.HOLDING and chunk.stamp_s < self._resume_after_s:
            self.counters.add('dropped_before_resume')
            return 'before_resume'
        if self._source_rejected(now_s, source, self._accepted_sources, 'a command'):
            return 'fault'
        self._chunk = chunk
        self._last_valid_s = now_s
        self.counters.add('commands_accepted')
        if self._accepted_sources is None and source is not None:
            self._accepted_sources = frozenset({source})
            self._listed_when_fixed = self._sources or frozenset()
        if self.state is State.HOLDING:
            self._set_state(now_s, State.ARMED, 'executing commands')
        return ''

    def on_gripper(self, now_s: float, width_m: float,
                   source: str | None = None) -> GripperDecision:
        """A gripper opening-width command; sent only while armed or holding.

        With a publisher id (`source`), only the publisher whose arm commands were accepted
        moves the gripper: before that first command widths are dropped, and a width from
        another publisher latches a fault like such an arm command.
        """
        if self.state not in (State.ARMED, State.HOLDING):
            # Dropped before the gate sees it: its history only holds widths actually sent.
            self.counters.add('gripper_dropped_not_armed')
            return GripperDecision(None, 'not_armed')
        if source is not None and self._accepted_sources is None:
            self.counters.add('gripper_dropped_before_command')
            return GripperDecision(None, 'before_command')
        if self._source_rejected(now_s, source, self._accepted_gripper, 'a gripper width'):
            return GripperDecision(None, 'fault')
        if source is not None and self._accepted_gripper is None:
            self._accepted_gripper = frozenset({source})  # its first width after the arm's
        decision = self.gripper.check(now_s, width_m)
        if decision.reason:
            self.counters.add(f'gripper_{decision.reason}')
        return decision

    # -- operator requests ------------------------------------------------------------------

    def arm(self, now_s: float) -> tuple[bool, str]:
        """DISARMED -> HOLDING at the measured pose, if every precondition holds."""
        if self.state is State.FAULT:
            return False, f'latched fault ({self.fault_reason}): acknowledge it first'
        if self.state is not State.DISARMED:
            return True, f'already {self.state.value}'
        problem = self._cannot_hold(now_s)
        if problem:
            return False, problem
        self._hold_measured(now_s, State.HOLDING, 'armed at the measured pose')
        self._accepted_sources = self._accepted_gripper = None  # fixed by the first ones
        self.gripper.reset()  # its toggle history covers one armed session (nothing is sent
        # while disarmed; a reset twin restarts its clock below the old toggle times)
        return True, self._status_line()

    def disarm(self, now_s: float) -> tuple[bool, str]:
        """Stop if moving, then DISARMED."""
        if self.state is State.FAULT:
            return False, f'latched fault ({self.fault_reason}): acknowledge it first'
        if self.state is State.DISARMED:
            return True, 'already disarmed'
        if self.state is State.HOLDING:
            self._set_state(now_s, State.DISARMED, 'disarmed')
            return True, 'disarmed'
        self._start_stop(now_s, 'disarm requested', then=State.DISARMED)
        return True, 'stopping, then disarmed'

    def stop(self, now_s: float) -> tuple[bool, str]:
        """A controlled stop, then HOLDING until a command newer than the stop arrives."""
        if self.state in (State.DISARMED, State.FAULT):
            return True, f'nothing to stop ({self.state.value})'
        if self.state is State.HOLDING:
            self._resume_after_s = now_s
            return True, 'holding'
        if self.state is State.STOPPING:
            return True, f'already stopping (then {self._stopping_to.value})'
        self._start_stop(now_s, 'stop requested', then=State.HOLDING)
        return True, 'stopping'

    def acknowledge(self, now_s: float) -> tuple[bool, str]:
        """Clear a latched fault after the stop finished: HOLDING at the measured pose."""
        if self.state is not State.FAULT:
            return True, f'no fault to acknowledge ({self.state.value})'
        if not self._held_after_fault:
            return False, 'the arm is still stopping: acknowledge once it has stopped'
        problem = self._cannot_hold(now_s)
        if problem:
            return False, f'cannot clear the fault ({self.fault_reason}): {problem}'
        self._event(now_s, 'warn', f'fault acknowledged by the operator: {self.fault_reason}')
        self.fault_reason = ''
        self._consecutive_rejects = 0
        self.gripper.reset()
        if self._fault_while_disarmed:
            self._set_state(now_s, State.DISARMED, 'fault acknowledged; still disarmed')
            return True, 'disarmed'
        self._hold_measured(now_s, State.HOLDING, 'fault acknowledged; holding the measured pose')
        self._accepted_sources = self._accepted_gripper = None
        return True, self._status_line()

    # -- the tick ---------------------------------------------------------------------------

    def tick(self, now_s: float) -> tuple[Setpoint | None, Decision | None]:
        """One control period: the setpoint to send (None: send nothing) and its record."""
        dt = self.timing.control_period_s
        self.observe_clock(now_s)
        if self.state is State.DISARMED or \
                (self.state is State.FAULT and self._held_after_fault):
            return None, None
        self._check_state(now_s)
        if self.state is State.ARMED and now_s - self._last_valid_s > self.timing.watchdog_s:
            self.counters.add('watchdog_stops')
            self._start_stop(now_s, f'watchdog: no valid command for '
                             f'{now_s - self._last_valid_s:.3f} s (limit '
                             f'{self.timing.watchdog_s} s)', then=State.HOLDING)
        if self.state in (State.STOPPING, State.FAULT):
            return self._stop_tick(now_s, dt)
        command, limiter, chunk = self._command, self.limiter, self._chunk
        if command is None or limiter is None:  # unreachable: arming seeds both
            self._fault(now_s, 'internal error: armed without a command state')
            return None, None
        if self.state is State.HOLDING or chunk is None:
            return (Setpoint(command.q, command.v, dt),
                    Decision(now_s, self.state.value, None, command.q, (),
                             now_s - self._last_valid_s))
        raw = self._raw_target(chunk, command, now_s, dt)
        result = limiter.step(command, raw, dt)
        for reason in result.reasons:
            self.counters.add(f'limited_{reason}')
        self._command = result.state
        return (self._moving_setpoint(result.state, dt),
                Decision(now_s, self.state.value, raw, result.state.q, result.reasons,
                         now_s - self._last_valid_s))

    # -- internals --------------------------------------------------------------------------

    @staticmethod
    def _raw_target(chunk: JointChunk, command: CommandState, now_s: float, dt: float
                    ) -> Vector:
        """The chunk's target one period ahead.

        Before the chunk's first point: the straight line that reaches it at its time.
        """
        t_next = now_s + dt
        if t_next < chunk.times_s[0]:
            remaining = chunk.times_s[0] - now_s
            return np.asarray(command.q + (chunk.positions[0] - command.q) * (dt / remaining))
        return chunk.target_at(t_next)

    def _moving_setpoint(self, command: CommandState, dt: float) -> Setpoint:
        speed = float(np.max(np.abs(command.v)))
        if speed == 0.0:
            return Setpoint(command.q, command.v, dt)
        # At least one period: a joint_trajectory_controller rejects a trajectory whose
        # times do not strictly increase, and a tail a few nanoseconds after the setpoint
        # (a nearly stopped arm) rounds onto it in the message.
        brake_s = max(speed / self.limits.stop_acceleration_rad_s2, dt)
        tail = np.clip(command.q + command.v * (brake_s / 2.0), self.limits.lower_rad,
                       self.limits.upper_rad)
        return Setpoint(command.q, command.v, dt, tail, dt + brake_s)

    def _stop_tick(self, now_s: float, dt: float) -> tuple[Setpoint | None, Decision | None]:
        command = self._command
        if command is None or self.limiter is None:  # fault before ever arming
            self._held_after_fault = self.state is State.FAULT
            return None, None
        speed = float(np.max(np.abs(command.v)))
        if speed > 0.0:
            factor = max(0.0, 1.0 - self.limits.stop_acceleration_rad_s2 * dt / speed)
            v = command.v * factor
            q = np.clip(command.q + (command.v + v) * (dt / 2.0), self.limits.lower_rad,
                        self.limits.upper_rad)
            self._command = CommandState(q, v, command.tcp)
            return (self._moving_setpoint(self._command, dt),
                    Decision(now_s, self.state.value, None, q, ('stopping',),
                             now_s - self._last_valid_s))
        # At rest: hold the measured pose (never a stored one); with no fresh measurement
        # (the fault may be about exactly that), hold where the command stopped.
        fresh = self._measured.q is not None and \
            now_s - self._measured.received_s <= self.timing.joint_state_timeout_s
        held = self.limiter.seed(self._measured.q if fresh and self._measured.q is not None
                                 else command.q)
        self._command = held
        setpoint = Setpoint(held.q, held.v, self.timing.hold_settle_s)
        decision = Decision(now_s, self.state.value, None, held.q, ('hold_measured',),
                            now_s - self._last_valid_s)
        if self.state is State.FAULT:
            self._held_after_fault = True
            self._event(now_s, 'error', f'stopped; holding the measured pose. Fault latched: '
                        f'{self.fault_reason}. Fix the cause, then call acknowledge')
        else:
            self._resume_after_s = now_s
            self._set_state(now_s, self._stopping_to, 'stopped; holding the measured pose')
            self._tracking_since_s = None
        return setpoint, decision

    def _check_state(self, now_s: float) -> None:
        """Joint-state freshness, envelope and tracking checks while armed (G4, G5, G8)."""
        if self.state is State.FAULT:
            return
        measured = self._measured
        age = now_s - measured.received_s
        if measured.q is None or age > self.timing.joint_state_timeout_s:
            what = 'no joint states' if measured.q is None else \
                f'joint states are {age * 1000:.0f} ms old (frozen or stopped)'
            self._fault(now_s, f'{what}; limit {self.timing.joint_state_timeout_s * 1000:.0f} ms')
            return
        q = measured.q
        outside = (q < self.limits.fault_lower_rad) | (q > self.limits.fault_upper_rad)
        if np.any(outside):
            j = int(np.argmax(outside))
            self._fault(now_s, f'{self.robot.joint_names[j]} measured at {q[j]:.3f} rad, '
                        f'inside the hard margin of the envelope')
            return
        if self._command is None:
            return
        error = np.abs(q - self._command.q)
        if float(np.max(error)) > self.limits.tracking_error_rad:
            if self._tracking_since_s is None:
                self._tracking_since_s = now_s
            elif now_s - self._tracking_since_s >= self.timing.tracking_error_duration_s:
                j = int(np.argmax(error))
                self._fault(now_s, f'tracking error {error[j]:.3f} rad on '
                            f'{self.robot.joint_names[j]} for '
                            f'{now_s - self._tracking_since_s:.3f} s (bound '
                            f'{self.limits.tracking_error_rad} rad): the arm is not following '
                            f'(protective stop, collision, controller inactive?)')
        else:
            self._tracking_since_s = None

    def _cannot_hold(self, now_s: float) -> str:
        """Why the bridge cannot take over the arm now ('' if it can)."""
        if self.workspace is None:
            return ('no workspace box is configured, and there is no default: set the '
                    'workspace parameter to a box measured for this cell')
        measured = self._measured
        if measured.q is None:
            return 'no joint states received yet (is the driver running?)'
        age = now_s - measured.received_s
        if age > self.timing.joint_state_timeout_s:
            return f'joint states are {age * 1000:.0f} ms old'
        q = measured.q
        outside = (q < self.limits.lower_rad) | (q > self.limits.upper_rad)
        if np.any(outside):
            j = int(np.argmax(outside))
            return (f'{self.robot.joint_names[j]} is at {q[j]:.3f} rad, outside the envelope '
                    f'[{self.limits.lower_rad[j]:.3f}, {self.limits.upper_rad[j]:.3f}]: move '
                    f'it inside (hand guiding / teach pendant) first')
        tcp = self.kinematics.pose(q)[:3, 3]
        if not self.workspace.contains(tcp):
            return (f'the TCP is at ({tcp[0]:.3f}, {tcp[1]:.3f}, {tcp[2]:.3f}) m, outside the '
                    f'workspace box {self.workspace.describe()}: move it inside first')
        return ''

    def _hold_measured(self, now_s: float, state: State, message: str) -> None:
        """Seed the command from the measured pose (callers checked `_cannot_hold`)."""
        if self.limiter is None or self._measured.q is None:
            raise RuntimeError('internal error: holding without a workspace or a measurement')
        self._command = self.limiter.seed(self._measured.q)
        self._chunk = None
        self._tracking_since_s = None
        self._resume_after_s = now_s
        self._set_state(now_s, state, message)

    def _start_stop(self, now_s: float, why: str, then: State) -> None:
        self._chunk = None
        self._stopping_to = then
        self._set_state(now_s, State.STOPPING, why)

    def _fault(self, now_s: float, why: str) -> None:
        if self.state is State.FAULT:
            return
        self.counters.add('faults')
        self.fault_reason = why
        self._chunk = None
        self._fault_while_disarmed = self.state is State.DISARMED
        self._held_after_fault = self._fault_while_disarmed
        self._tracking_since_s = None
        self._set_state(now_s, State.FAULT, why, level='error')

    def _joint_state_time_jumped(self, now_s: float, jump: float) -> None:
        self.counters.add('joint_state_time_jumps')
        self._measured = _Measured()
        if self.state in (State.DISARMED, State.FAULT):
            self._event(now_s, 'warn', f'joint states went back in time by {jump:.3f} s (a '
                        'restarted driver or a reset twin): waiting for fresh ones')
        else:
            self._fault(now_s, f'joint states went back in time by {jump:.3f} s while '
                        f'{self.state.value} (a restarted driver or a reset twin)')

    def _clock_jumped(self, now_s: float, jump: float) -> None:
        self.counters.add('clock_jumps')
        self._measured = _Measured()
        self._last_stamp_s = -math.inf
        self._last_valid_s = -math.inf
        self._resume_after_s = now_s
        if self.state is State.DISARMED:
            self._event(now_s, 'warn', f'clock jumped back by {jump:.3f} s (disarmed: time '
                        f'bookkeeping reset)')
        else:
            self._fault(now_s, f'clock jumped back by {jump:.3f} s while armed')

    def _set_state(self, now_s: float, state: State, why: str, level: str = 'info') -> None:
        previous = self.state
        self.state = state
        self._event(now_s, level, f'{previous.value} -> {state.value}: {why}')

    def _event(self, now_s: float, level: str, message: str) -> None:
        self.events.append(Event(now_s, level, message))

    def _status_line(self) -> str:
        lim = self.limits
        return (f'{self.state.value}; tier {lim.tier}: joints <= '
                f'{float(np.max(lim.velocity_rad_s)):g} rad/s, TCP <= {lim.tcp_linear_m_s:g} '
                f'm/s; workspace {self.workspace.describe() if self.workspace else "none"}')

    def drain_events(self) -> list[Event]:
        """Events since the last call (the node logs them)."""
        events = list(self.events)
        self.events.clear()
        return events

    @property
    def measured_q(self) -> Vector | None:
        """The latest valid measured arm positions."""
        return self._measured.q

    @property
    def command(self) -> CommandState | None:
        """The last command sent (None before arming)."""
        return self._command
