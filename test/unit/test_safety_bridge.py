"""The safety bridge's state machine in simulated time (pure: no ROS, no clock).

What a user of the bridge checks: malformed, stale and reordered commands never move the arm
(G1, G2); losing the policy, the joint states or tracking stops the arm with a bounded,
decelerating stop and holds the measured pose (G3, G4, G8); arming needs a workspace and a
sane pose (G5); faults latch until acknowledged and motion restarts without a jump (G10);
the gripper gate; and, for random interleavings of all of it, every setpoint sent is finite
and inside the envelope.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from visuomotor.safety.bridge import BridgeTiming, Decision, SafetyBridge, Setpoint, State
from visuomotor.safety.gripper import GripperGate
from visuomotor.safety.profile import SafetyProfile, load_safety_profile
from visuomotor.safety.workspace import WorkspaceBox, load_workspace
from visuomotor.trajectory import JointTrajectoryCommand

FR3 = load_safety_profile('fr3')
FR3_BOX = load_workspace('twin_fr3')
NAMES = FR3.robot.joint_names
HOME = np.array(FR3.robot.home_rad)
LIMITS = FR3.limits
TIMING = BridgeTiming()
DT = TIMING.control_period_s
T0 = 10.0
EPS = 1e-9

Tick = tuple[Setpoint | None, Decision | None]


def offsets(**joints: float) -> np.ndarray:
    """Home plus offsets given by joint number, e.g. offsets(j7=0.3)."""
    q = HOME.copy()
    for key, value in joints.items():
        q[int(key[1:]) - 1] += value
    return q


def command(stamp: float, *targets: Sequence[float], names: Sequence[str] = NAMES,
            spacing_s: float = 0.1) -> JointTrajectoryCommand:
    """A chunk with one point every `spacing_s` seconds after `stamp` (positions only)."""
    points = tuple((spacing_s * (i + 1), tuple(float(v) for v in q), (), ())
                   for i, q in enumerate(targets))
    return JointTrajectoryCommand(tuple(names), points, start_time_s=stamp)


class Rig:
    """A bridge driven in simulated time: each step is one control period.

    Each step sends a joint state (by default the last commanded positions: perfect
    tracking), optionally a command, then ticks the bridge.
    """

    def __init__(self, profile: SafetyProfile = FR3, workspace: WorkspaceBox | None = FR3_BOX,
                 q0: Sequence[float] | None = None) -> None:
        self.bridge = SafetyBridge(profile, workspace, BridgeTiming())
        self.names = profile.robot.joint_names
        self.q0 = np.array(profile.robot.home_rad if q0 is None else q0, dtype=float)
        self.k = 0
        self.feed()

    @property
    def t(self) -> float:
        return T0 + self.k * DT

    def tracking(self) -> np.ndarray:
        """Where a perfectly tracking arm is: the last commanded positions."""
        command_state = self.bridge.command
        return self.q0.copy() if command_state is None else command_state.q.copy()

    def feed(self, q: Sequence[float] | None = None, stamp: float | None = None) -> None:
        positions = self.tracking() if q is None else q
        self.bridge.on_joint_state(self.t, self.names, [float(v) for v in positions],
                                   self.t if stamp is None else stamp)

    def send(self, *targets: Sequence[float], stamp: float | None = None,
             spacing_s: float = 0.1) -> str:
        return self.bridge.on_command(self.t, command(self.t if stamp is None else stamp,
                                                      *targets, names=self.names,
                                                      spacing_s=spacing_s))

    def step(self, q: Sequence[float] | None = None, feed: bool = True,
             target: Sequence[float] | None = None) -> Tick:
        """One period: a joint state (unless `feed` is false), a fresh command to `target`."""
        self.k += 1
        if feed:
            self.feed(q)
        if target is not None:
            assert self.send(target) == ''
        return self.bridge.tick(self.t)

    def run(self, ticks: int, target: Sequence[float] | None = None) -> list[Tick]:
        return [self.step(target=target) for _ in range(ticks)]

    def arm(self) -> Rig:
        ok, message = self.bridge.arm(self.t)
        assert ok, message
        assert self.bridge.state is State.HOLDING
        return self


def armed(q0: Sequence[float] | None = None) -> Rig:
    return Rig(q0=q0).arm()


def moving(target: np.ndarray | None = None, ticks: int = 30) -> Rig:
    """An armed FR3 streaming a fresh command every tick toward `target` (joint 7 + 0.8)."""
    rig = armed()
    rig.run(ticks, target=offsets(j7=0.8) if target is None else target)
    assert rig.bridge.state is State.ARMED
    return rig


def speed(setpoint: Setpoint) -> float:
    return float(np.max(np.abs(setpoint.velocities)))


def assert_finite(setpoint: Setpoint | None) -> None:
    if setpoint is None:
        return
    assert np.all(np.isfinite(setpoint.positions))
    assert np.all(np.isfinite(setpoint.velocities))
    if setpoint.tail_positions is not None:
        assert np.all(np.isfinite(setpoint.tail_positions))


def assert_same(a: Tick, b: Tick) -> None:
    """Two ticks sent the same setpoint."""
    assert (a[0] is None) == (b[0] is None)
    if a[0] is not None and b[0] is not None:
        np.testing.assert_array_equal(a[0].positions, b[0].positions)
        np.testing.assert_array_equal(a[0].velocities, b[0].velocities)


# -- G1: non-finite and malformed commands ---------------------------------------------------


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf], ids=['nan', '+inf', '-inf'])
@pytest.mark.parametrize('point', [0, 1])
@pytest.mark.parametrize('joint', range(7))
def test_non_finite_position_is_rejected_and_the_motion_goes_on(value: float, point: int,
                                                               joint: int) -> None:
    """A NaN/inf in any position is rejected as non_finite and changes nothing sent."""
    rig, control = moving(ticks=10), moving(ticks=10)
    first, second = offsets(j7=0.2, j1=0.05), offsets(j7=0.4, j1=0.1)
    for r in (rig, control):
        r.k += 1
        r.feed()
        assert r.send(first, second) == ''
        r.bridge.tick(r.t)
        r.k += 1
        r.feed()
    bad = [list(first), list(second)]
    bad[point][joint] = value
    assert rig.send(*bad) == 'non_finite'
    assert rig.bridge.counters.values['rejected_non_finite'] == 1
    assert_same(rig.bridge.tick(rig.t), control.bridge.tick(control.t))
    for _ in range(12):  # inside the watchdog period of the last valid command
        a, b = rig.step(), control.step()
        assert_finite(a[0])
        assert_same(a, b)
    assert rig.bridge.state is State.ARMED


def _malformed(stamp: float) -> dict[str, tuple[JointTrajectoryCommand, str]]:
    target = tuple(float(v) for v in offsets(j7=0.3))
    names = tuple(NAMES)

    def one(q: Sequence[float], joint_names: Sequence[str] = names, stamp_s: float = stamp,
            v: Sequence[float] = (), tfs: float = 0.1) -> JointTrajectoryCommand:
        return JointTrajectoryCommand(tuple(joint_names), ((tfs, tuple(q), tuple(v), ()),),
                                      start_time_s=stamp_s)

    degrees = list(target)
    degrees[1] = 90.0
    return {
        'six_positions': (one(target[:6]), 'shape'),
        'eight_positions': (one((*target, 0.0)), 'shape'),
        'six_velocities': (one(target, v=(0.0,) * 6), 'shape'),
        'unknown_joint': (one(target, (*names[:6], 'fr3_joint8')), 'joint_names'),
        'missing_joint': (one(target[:6], names[:6]), 'joint_names'),
        'duplicate_joint': (one(target, (*names[:6], names[0])), 'joint_names'),
        'empty_points': (JointTrajectoryCommand(names, (), start_time_s=stamp), 'shape'),
        'zero_stamp': (one(target, stamp_s=0.0), 'unstamped'),
        'negative_stamp': (one(target, stamp_s=-1.0), 'unstamped'),
        'nan_stamp': (one(target, stamp_s=math.nan), 'unstamped'),
        'degrees': (one(degrees), 'implausible'),
        'negative_degrees': (one([-90.0, *target[1:]]), 'implausible'),
        'nan_time_from_start': (one(target, tfs=math.nan), 'non_finite'),
        'inf_velocity': (one(target, v=(math.inf,) * 7), 'non_finite'),
        'negative_time_from_start': (one(target, tfs=-0.1), 'timing'),
    }


@pytest.mark.parametrize('case', list(_malformed(1.0)))
def test_malformed_command_is_rejected_with_its_reason(case: str) -> None:
    """Each malformed command returns its reason, is counted and changes nothing sent."""
    rig, control = moving(ticks=10), moving(ticks=10)
    rig.k += 1
    control.k += 1
    for r in (rig, control):
        r.feed()
    bad, reason = _malformed(rig.t)[case]
    assert rig.bridge.on_command(rig.t, bad) == reason
    assert rig.bridge.counters.values[f'rejected_{reason}'] == 1
    assert rig.bridge.counters.values['commands_accepted'] == \
        control.bridge.counters.values['commands_accepted']
    assert_same(rig.bridge.tick(rig.t), control.bridge.tick(control.t))
    for _ in range(5):
        a, b = rig.step(), control.step()
        assert_finite(a[0])
        assert_same(a, b)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_joint_names_in_another_order_are_reordered(seed: int) -> None:
    """A command listing the joints in another order moves each joint to its own target."""
    order = np.random.default_rng(seed).permutation(7)
    while np.array_equal(order, np.arange(7)):
        order = np.random.default_rng(seed + 100).permutation(7)
    target = offsets(j1=0.05, j2=-0.04, j3=0.03, j4=-0.06, j5=0.07, j6=-0.02, j7=0.4)
    rig, control = armed(), armed()
    for _ in range(40):
        rig.k += 1
        control.k += 1
        rig.feed()
        control.feed()
        assert rig.bridge.on_command(rig.t, command(rig.t, target[order],
                                                    names=[NAMES[i] for i in order])) == ''
        assert control.send(target) == ''
        a, b = rig.bridge.tick(rig.t), control.bridge.tick(control.t)
        assert_same(a, b)
    assert rig.bridge.command is not None
    assert float(np.max(np.abs(rig.bridge.command.q - HOME))) > 0.05


def test_three_consecutive_rejects_latch_a_fault() -> None:
    """max_consecutive_rejects malformed commands in a row latch FAULT."""
    rig = moving()
    bad = offsets(j7=0.3)
    bad[3] = math.nan
    assert TIMING.max_consecutive_rejects == 3
    for i in range(3):
        rig.k += 1
        rig.feed()
        assert rig.send(bad) == 'non_finite'
        assert rig.bridge.state is (State.FAULT if i == 2 else State.ARMED)
        setpoint, _ = rig.bridge.tick(rig.t)
        assert_finite(setpoint)
    assert '3 consecutive invalid commands' in rig.bridge.fault_reason


def test_a_valid_command_between_rejects_resets_the_count() -> None:
    """Two rejects, a valid command, two rejects: no fault; one more reject faults."""
    rig = moving()
    bad = offsets(j7=0.3)
    bad[0] = math.inf
    for step in ['bad', 'bad', 'good', 'bad', 'bad']:
        rig.k += 1
        rig.feed()
        reply = rig.send(bad if step == 'bad' else offsets(j7=0.3))
        assert reply == ('non_finite' if step == 'bad' else '')
        rig.bridge.tick(rig.t)
        assert rig.bridge.state is State.ARMED
    rig.k += 1
    rig.feed()
    assert rig.send(bad) == 'non_finite'
    assert rig.bridge.state is State.FAULT


# -- G2: freshness and ordering --------------------------------------------------------------


def test_command_older_than_the_stale_limit_is_dropped() -> None:
    """A command stamped more than stale_s ago is dropped as stale; a younger one runs."""
    rig = armed()
    rig.run(20)
    target = offsets(j7=0.3)
    assert rig.send(target, stamp=rig.t - TIMING.stale_s - 0.01) == 'stale'
    assert rig.bridge.counters.values['dropped_stale'] == 1
    setpoint, _ = rig.step()
    assert rig.bridge.state is State.HOLDING
    assert setpoint is not None
    np.testing.assert_array_equal(setpoint.positions, HOME)
    assert rig.send(target, stamp=rig.t - TIMING.stale_s + 0.01, spacing_s=0.5) == ''
    assert rig.bridge.state is State.ARMED


def test_command_not_newer_than_the_last_accepted_is_dropped() -> None:
    """Older and exactly duplicated stamps are dropped as not_newer and change nothing."""
    rig, control = armed(), armed()
    for r in (rig, control):
        r.run(3)
        r.k += 1
        r.feed()
        assert r.send(offsets(j7=0.3), spacing_s=0.5) == ''
    stamp = rig.t
    assert_same(rig.bridge.tick(rig.t), control.bridge.tick(control.t))
    for r in (rig, control):
        r.k += 1
        r.feed()
    assert rig.send(offsets(j7=-0.3), stamp=stamp - 0.005) == 'not_newer'
    assert rig.send(offsets(j7=0.3), stamp=stamp, spacing_s=0.5) == 'not_newer'
    assert rig.send(offsets(j7=-0.3), stamp=stamp) == 'not_newer'
    assert rig.bridge.counters.values['dropped_not_newer'] == 3
    assert_same(rig.bridge.tick(rig.t), control.bridge.tick(control.t))
    for _ in range(10):
        assert_same(rig.step(), control.step())


def test_chunk_steps_already_past_are_skipped() -> None:
    """Points whose time has passed are counted as skipped; the arm aims one period ahead."""
    rig = armed()
    rig.run(20)
    rig.k += 1
    rig.feed()
    now, stamp = rig.t, rig.t - 0.05
    points = [offsets(j7=0.01), offsets(j7=0.02), offsets(j7=0.03), offsets(j7=0.2)]
    chunk = JointTrajectoryCommand(tuple(NAMES), tuple(
        (tfs, tuple(q), (), ()) for tfs, q in zip((0.01, 0.02, 0.03, 0.2), points, strict=True)),
        start_time_s=stamp)
    assert rig.bridge.on_command(now, chunk) == ''
    assert rig.bridge.counters.values['steps_skipped'] == 3
    _, decision = rig.bridge.tick(now)
    assert decision is not None and decision.raw is not None
    # On the segment from the last past point (stamp + 0.03) to the next (stamp + 0.2).
    alpha = (now + DT - (stamp + 0.03)) / (0.2 - 0.03)
    np.testing.assert_allclose(decision.raw, points[2] + alpha * (points[3] - points[2]),
                               atol=1e-12)


def test_chunk_whose_every_point_is_past_is_dropped() -> None:
    """A chunk whose last point lies in the past is dropped and the arm keeps holding."""
    rig = armed()
    rig.run(20)
    rig.k += 1
    rig.feed()
    chunk = command(rig.t - 0.05, offsets(j7=0.1), offsets(j7=0.2), spacing_s=0.02)
    assert rig.bridge.on_command(rig.t, chunk) == 'all_steps_past'
    assert rig.bridge.counters.values['dropped_all_steps_past'] == 1
    assert rig.bridge.state is State.HOLDING
    setpoint, _ = rig.bridge.tick(rig.t)
    assert setpoint is not None
    np.testing.assert_array_equal(setpoint.positions, HOME)


# -- G3: the watchdog --------------------------------------------------------------------------


def test_watchdog_starts_a_stop_within_its_period_of_the_last_command() -> None:
    """With no valid command, STOPPING starts after watchdog_s, at most one period late."""
    rig = moving()
    last_command_s = rig.t
    stopped_at = None
    for _ in range(40):
        rig.step()
        if rig.bridge.state is not State.ARMED:
            assert rig.bridge.state is State.STOPPING
            stopped_at = rig.t
            break
    assert stopped_at is not None
    assert TIMING.watchdog_s - EPS <= stopped_at - last_command_s
    assert stopped_at - last_command_s <= TIMING.watchdog_s + DT + EPS
    assert rig.bridge.counters.values['watchdog_stops'] == 1


def test_watchdog_stop_decelerates_then_holds_the_measured_pose_and_resumes() -> None:
    """The stop brakes monotonically within a_stop, holds the measured pose, then resumes."""
    rig = moving(ticks=40)
    a_stop = LIMITS.stop_acceleration_rad_s2
    previous, _ = rig.step()
    assert previous is not None and speed(previous) > 0.2
    start_speed = speed(previous)
    skew = np.zeros(7)
    skew[6] = 0.02  # the arm lags by 0.02 rad on joint 7 (under the tracking bound)
    stop_ticks = 0
    held = None
    for _ in range(100):
        measured = rig.tracking() + skew
        setpoint, decision = rig.step(q=measured)
        assert setpoint is not None and decision is not None
        if rig.bridge.state is State.ARMED:
            previous = setpoint
            continue
        assert speed(setpoint) <= speed(previous) + EPS
        change = np.abs(setpoint.velocities - previous.velocities) / DT
        assert float(np.max(change)) <= a_stop * (1 + 1e-9) + 1e-9
        if 'hold_measured' in decision.reasons:
            held = (setpoint, measured)
            break
        assert rig.bridge.state is State.STOPPING
        stop_ticks += 1
        # Along the current direction: one uniform factor in [0, 1].
        np.testing.assert_allclose(setpoint.velocities * speed(previous),
                                   previous.velocities * speed(setpoint), atol=1e-12)
        previous = setpoint
    assert held is not None, 'the stop never finished'
    # Braking at a_stop, neither slower nor (the deceleration bound above) faster.
    assert start_speed / a_stop - 2 * DT <= stop_ticks * DT <= start_speed / a_stop + 3 * DT
    assert rig.bridge.state is State.HOLDING
    np.testing.assert_array_equal(held[0].positions, held[1])
    np.testing.assert_array_equal(held[0].velocities, 0.0)
    setpoint, _ = rig.step(q=held[1])
    assert setpoint is not None
    np.testing.assert_array_equal(setpoint.positions, held[1])
    rig.k += 1
    rig.feed(held[1])
    assert rig.send(offsets(j7=0.8)) == ''
    assert rig.bridge.state is State.ARMED
    setpoint, _ = rig.bridge.tick(rig.t)
    assert setpoint is not None and speed(setpoint) > 0.0


# -- G4: joint states -------------------------------------------------------------------------


def test_joint_states_that_stop_latch_a_fault_within_the_timeout() -> None:
    """No joint states for joint_state_timeout_s: FAULT at most one period later."""
    rig = moving()
    last_state_s = rig.t
    faulted = None
    for _ in range(20):
        setpoint, _ = rig.step(feed=False, target=offsets(j7=0.8))
        assert_finite(setpoint)
        if rig.bridge.state is State.FAULT:
            faulted = rig.t
            break
    assert faulted is not None
    assert TIMING.joint_state_timeout_s - EPS <= faulted - last_state_s
    assert faulted - last_state_s <= TIMING.joint_state_timeout_s + DT + EPS
    assert 'joint states' in rig.bridge.fault_reason


def test_frozen_joint_state_stamps_latch_a_fault_within_the_timeout() -> None:
    """Joint states that keep repeating one stamp count as stale: FAULT within the timeout."""
    rig = moving()
    frozen_s = rig.t
    faulted = None
    for _ in range(20):
        rig.k += 1
        rig.feed(stamp=frozen_s)
        assert rig.send(offsets(j7=0.8)) in ('', 'fault')
        setpoint, _ = rig.bridge.tick(rig.t)
        assert_finite(setpoint)
        if rig.bridge.state is State.FAULT:
            faulted = rig.t
            break
    assert faulted is not None
    assert TIMING.joint_state_timeout_s - EPS <= faulted - frozen_s
    assert faulted - frozen_s <= TIMING.joint_state_timeout_s + DT + EPS
    assert rig.bridge.counters.values['joint_states_not_advancing'] >= 4


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf], ids=['nan', '+inf', '-inf'])
def test_non_finite_joint_state_latches_a_fault(value: float) -> None:
    """A non-finite measured position latches FAULT at once; setpoints stay finite."""
    rig = moving()
    rig.k += 1
    q = rig.tracking()
    q[2] = value
    rig.feed(q)
    assert rig.bridge.state is State.FAULT
    assert 'not finite' in rig.bridge.fault_reason
    for _ in range(40):
        setpoint, _ = rig.step()
        assert_finite(setpoint)
    assert rig.bridge.measured_q is not None
    assert np.all(np.isfinite(rig.bridge.measured_q))


def test_arming_without_joint_states_is_refused() -> None:
    """arm() before any joint state is refused with a message saying so."""
    bridge = SafetyBridge(FR3, FR3_BOX, TIMING)
    ok, message = bridge.arm(T0)
    assert not ok
    assert 'no joint states' in message
    assert bridge.state is State.DISARMED
    assert bridge.tick(T0) == (None, None)


def test_arming_with_stale_joint_states_is_refused() -> None:
    """arm() with the last joint state older than the timeout is refused, fresh is armed."""
    rig = Rig()
    rig.k += 10
    ok, message = rig.bridge.arm(rig.t)
    assert not ok
    assert 'joint states are 100 ms old' in message
    assert rig.bridge.state is State.DISARMED
    rig.feed()
    assert rig.bridge.arm(rig.t)[0]


# -- G5: workspace and envelope at arming ------------------------------------------------------


def test_arming_without_a_workspace_is_refused() -> None:
    """Without a workspace box the bridge refuses to arm, naming the workspace."""
    rig = Rig(workspace=None)
    ok, message = rig.bridge.arm(rig.t)
    assert not ok
    assert 'workspace' in message
    assert rig.bridge.state is State.DISARMED
    assert rig.step() == (None, None)


def test_arming_is_refused_with_the_tcp_outside_the_box() -> None:
    """A pose whose TCP lies outside the workspace box cannot be armed at."""
    rig = Rig(q0=offsets(j1=math.pi / 2))
    ok, message = rig.bridge.arm(rig.t)
    assert not ok
    assert 'outside the workspace box' in message
    assert rig.bridge.state is State.DISARMED


def test_arming_is_refused_with_a_joint_outside_the_envelope() -> None:
    """A joint beyond the envelope (into the hard margin) cannot be armed at; it is named."""
    q = HOME.copy()
    q[6] = float(LIMITS.fault_upper_rad[6]) + 0.01
    rig = Rig(q0=q)
    ok, message = rig.bridge.arm(rig.t)
    assert not ok
    assert 'fr3_joint7' in message and 'outside the envelope' in message
    assert rig.bridge.state is State.DISARMED


def test_arming_is_refused_outside_the_commissioning_window() -> None:
    """UR5e commissioning keeps joints within 1.5 rad of home: arming beyond it is refused."""
    profile = load_safety_profile('ur5e')
    q = np.array(profile.robot.home_rad)
    q[5] = 3.0  # wrist_3: moves no TCP position, far outside home +- 1.5 rad
    rig = Rig(profile, load_workspace('twin_ur5e'), q0=q)
    ok, message = rig.bridge.arm(rig.t)
    assert not ok, message
    assert 'wrist_3_joint' in message


def test_targets_beyond_the_envelope_are_clamped() -> None:
    """A target past the joint limit stops the joint at the envelope, without overshoot."""
    start = HOME.copy()
    start[6] = float(LIMITS.upper_rad[6]) - 0.3
    rig = armed(q0=start)
    beyond = start.copy()
    beyond[6] = float(FR3.vendor.upper_rad[6]) + 0.3
    for setpoint, decision in rig.run(250, target=beyond):
        assert setpoint is not None and decision is not None
        assert np.all(setpoint.positions <= LIMITS.upper_rad + EPS)
        if setpoint.tail_positions is not None:
            assert np.all(setpoint.tail_positions <= LIMITS.upper_rad + EPS)
    assert rig.bridge.command is not None
    assert abs(rig.bridge.command.q[6] - LIMITS.upper_rad[6]) < 1e-3


# -- G8: tracking error ------------------------------------------------------------------------


def test_sustained_tracking_error_latches_a_fault() -> None:
    """Measured off the command by more than the bound for its duration: FAULT."""
    rig = moving()
    lag = np.zeros(7)
    lag[0] = LIMITS.tracking_error_rad + 0.02
    started_s = rig.t + DT
    faulted = None
    for _ in range(20):
        rig.step(q=rig.tracking() + lag, target=offsets(j7=0.8))
        if rig.bridge.state is State.FAULT:
            faulted = rig.t
            break
    assert faulted is not None
    assert TIMING.tracking_error_duration_s - EPS <= faulted - started_s
    assert faulted - started_s <= TIMING.tracking_error_duration_s + DT + EPS
    assert 'tracking error' in rig.bridge.fault_reason and 'fr3_joint1' in rig.bridge.fault_reason


def test_brief_tracking_error_does_not_fault() -> None:
    """Deviations shorter than the duration, even repeated, do not fault."""
    rig = moving()
    lag = np.zeros(7)
    lag[0] = LIMITS.tracking_error_rad + 0.02
    brief = int(TIMING.tracking_error_duration_s / DT) - 1
    for _ in range(3):
        for _ in range(brief):
            rig.step(q=rig.tracking() + lag, target=offsets(j7=0.8))
        rig.step(target=offsets(j7=0.8))
        assert rig.bridge.state is State.ARMED
    rig.run(20, target=offsets(j7=0.8))
    assert rig.bridge.state is State.ARMED


# -- G10: latched faults and acknowledging -----------------------------------------------------


def _fault_while_moving() -> Rig:
    rig = moving(ticks=40)
    bad = offsets(j7=0.8)
    bad[6] = math.nan
    for _ in range(3):
        rig.bridge.on_command(rig.t, command(rig.t, bad))
    assert rig.bridge.state is State.FAULT
    return rig


def test_fault_latches_until_acknowledged_after_the_stop() -> None:
    """In FAULT commands and arm() are refused; acknowledge() only once the arm stopped."""
    rig = _fault_while_moving()
    holds = 0
    stopped = False
    for _ in range(100):
        rig.k += 1
        rig.feed()
        assert rig.send(offsets(j7=0.8)) == 'fault'
        ok, message = rig.bridge.arm(rig.t)
        assert not ok and 'acknowledge' in message
        if not stopped:
            ok, message = rig.bridge.acknowledge(rig.t)
            assert not ok and 'stopping' in message
        setpoint, decision = rig.bridge.tick(rig.t)
        assert rig.bridge.state is State.FAULT
        if stopped:
            assert (setpoint, decision) == (None, None)
        elif decision is not None and 'hold_measured' in decision.reasons:
            holds += 1
            stopped = True
        else:
            assert decision is not None and decision.reasons == ('stopping',)
    assert holds == 1
    assert rig.bridge.counters.values['dropped_fault'] == 100
    ok, message = rig.bridge.acknowledge(rig.t)
    assert ok, message
    assert rig.bridge.state is State.HOLDING
    assert rig.bridge.fault_reason == ''


def test_after_acknowledge_motion_restarts_from_the_measured_pose() -> None:
    """The first setpoint after acknowledge is the measured pose; motion resumes smoothly."""
    rig = _fault_while_moving()
    for _ in range(60):
        rig.step()
    assert rig.bridge.state is State.FAULT
    measured = rig.tracking()
    measured[6] -= 0.03  # the arm settled a little off the last command
    rig.k += 1
    rig.feed(measured)
    assert rig.bridge.acknowledge(rig.t)[0]
    setpoint, _ = rig.bridge.tick(rig.t)
    assert setpoint is not None
    np.testing.assert_array_equal(setpoint.positions, measured)
    np.testing.assert_array_equal(setpoint.velocities, 0.0)
    assert rig.bridge.state is State.HOLDING
    rig.k += 1
    rig.feed(measured)
    assert rig.send(offsets(j7=0.8)) == ''
    assert rig.bridge.state is State.ARMED
    setpoint, _ = rig.bridge.tick(rig.t)
    assert setpoint is not None and speed(setpoint) > 0.0
    step = np.abs(setpoint.positions - measured)
    assert np.all(step <= LIMITS.velocity_rad_s * DT + EPS)


# -- disarm and stop ---------------------------------------------------------------------------


def _until_settled(rig: Rig, ticks: int = 100) -> list[Tick]:
    out = []
    for _ in range(ticks):
        out.append(rig.step())
        if rig.bridge.state is not State.STOPPING:
            break
    return out


def test_disarm_while_moving_stops_then_sends_nothing() -> None:
    """disarm() while moving brakes to rest, holds once, then DISARMED sends nothing."""
    rig = moving(ticks=40)
    ok, message = rig.bridge.disarm(rig.t)
    assert ok and 'stopping' in message
    ticks = _until_settled(rig)
    assert rig.bridge.state is State.DISARMED
    speeds = [speed(s) for s, _ in ticks if s is not None]
    assert len(speeds) == len(ticks)
    assert all(b <= a + EPS for a, b in zip(speeds, speeds[1:], strict=False))
    assert speeds[-1] == 0.0
    for _ in range(10):
        assert rig.step() == (None, None)
    rig.k += 1
    rig.feed()
    assert rig.send(offsets(j7=0.8)) == 'disarmed'
    assert rig.bridge.tick(rig.t) == (None, None)


def test_stop_holds_and_ignores_commands_stamped_before_it() -> None:
    """stop() brakes to HOLDING; commands stamped before the stop ended are never executed."""
    rig = armed()
    rig.run(3, target=offsets(j7=0.8))  # slow: the stop takes a few periods
    stop_s = rig.t
    ok, _ = rig.bridge.stop(stop_s)
    assert ok and rig.bridge.state is State.STOPPING
    rig.k += 1
    rig.feed()
    assert rig.send(offsets(j7=0.8), stamp=stop_s + DT / 4) == 'stopping'
    rig.bridge.tick(rig.t)
    ticks = _until_settled(rig)
    assert rig.bridge.state is State.HOLDING
    held = ticks[-1][0]
    assert held is not None
    rig.run(2)
    rig.k += 1
    rig.feed()
    assert rig.t - stop_s < TIMING.stale_s
    assert rig.send(offsets(j7=0.8), stamp=stop_s + DT / 2) == 'before_resume'
    setpoint, _ = rig.bridge.tick(rig.t)
    assert rig.bridge.state is State.HOLDING
    assert setpoint is not None
    np.testing.assert_array_equal(setpoint.positions, held.positions)
    rig.k += 1
    rig.feed()
    assert rig.send(offsets(j7=0.8)) == ''
    assert rig.bridge.state is State.ARMED


def test_stop_during_a_disarm_still_ends_disarmed() -> None:
    """A stop request while a disarm is braking does not cancel the disarm."""
    rig = moving(ticks=40)
    assert rig.bridge.disarm(rig.t)[0]
    rig.step()
    assert rig.bridge.state is State.STOPPING
    assert rig.bridge.stop(rig.t)[0]
    _until_settled(rig)
    assert rig.bridge.state is State.DISARMED


# -- clock -------------------------------------------------------------------------------------


def test_clock_jumping_back_while_armed_latches_a_fault() -> None:
    """A tick earlier than the previous one while armed latches FAULT."""
    rig = moving()
    rig.k -= 50
    rig.feed()
    setpoint, _ = rig.bridge.tick(rig.t)
    assert rig.bridge.state is State.FAULT
    assert 'clock jumped back' in rig.bridge.fault_reason
    assert_finite(setpoint)
    assert rig.bridge.counters.values['clock_jumps'] == 1


def test_clock_jumping_back_while_disarmed_only_resets_the_bookkeeping() -> None:
    """A clock jump while disarmed does not fault; the bridge arms on the new clock."""
    rig = Rig()
    rig.run(5)
    rig.k -= 50
    assert rig.bridge.tick(rig.t) == (None, None)
    assert rig.bridge.state is State.DISARMED
    assert rig.bridge.counters.values['clock_jumps'] == 1
    rig.feed()  # stamped earlier than every state before the jump
    ok, message = rig.bridge.arm(rig.t)
    assert ok, message
    assert rig.send(offsets(j7=0.2)) == ''


def test_joint_states_from_a_new_timeline_before_the_clock_jumps_stop_a_stale_arming() -> None:
    """Seen in the demo under load: the twin reset (its clock back to 0), the new episode's
    joint states reached the bridge before its clock jumped, and an arm request in between
    armed on the old timeline's measurement, which the jump then faulted."""
    rig = Rig()
    rig.run(300)  # 3 s of one timeline, disarmed
    now = rig.t
    rig.bridge.on_joint_state(now, rig.names, list(rig.q0), 0.02)  # the new timeline's
    assert rig.bridge.counters.values['joint_state_time_jumps'] == 1
    ok, message = rig.bridge.arm(now)  # the clock has not jumped here yet
    assert not ok and 'no joint states' in message
    rig.k = 0  # the clock jumps too: the bridge arms on the new timeline
    rig.feed()
    rig.bridge.tick(rig.t)
    rig.k += 1
    rig.feed()
    assert rig.bridge.arm(rig.t)[0]
    assert rig.bridge.state is State.HOLDING


def test_joint_states_going_back_in_time_while_armed_latch_a_fault() -> None:
    rig = moving()
    rig.bridge.on_joint_state(rig.t, rig.names, list(rig.tracking()), rig.t - 5.0)
    assert rig.bridge.state is State.FAULT
    assert 'went back in time by 5.000 s while armed' in rig.bridge.fault_reason


# -- the braking tail --------------------------------------------------------------------------


def test_moving_setpoint_carries_a_braking_tail() -> None:
    """The tail continues along the velocity for v^2 / (2 a_stop), inside the envelope."""
    rig = armed()
    a_stop = LIMITS.stop_acceleration_rad_s2
    seen = 0
    for setpoint, _ in rig.run(40, target=offsets(j7=0.8)):
        assert setpoint is not None
        v = setpoint.velocities
        if not np.any(v):
            assert setpoint.tail_positions is None
            continue
        seen += 1
        tail = setpoint.tail_positions
        assert tail is not None
        assert np.all(tail >= LIMITS.lower_rad) and np.all(tail <= LIMITS.upper_rad)
        np.testing.assert_array_equal(v[:6], 0.0)
        brake = max(abs(v[6]) / a_stop, DT)  # at least a period: strictly after the setpoint
        np.testing.assert_allclose(tail[6] - setpoint.positions[6], v[6] * brake / 2,
                                   rtol=1e-9, atol=1e-15)
        np.testing.assert_array_equal(tail[:6], setpoint.positions[:6])
        assert setpoint.tail_time_s == pytest.approx(DT + brake)
    assert seen > 30


def test_braking_tail_of_a_nearly_stopped_arm_stays_a_period_after_the_setpoint() -> None:
    """A JTC refuses points whose times do not strictly increase (in nanoseconds).

    Seen in a calibration run: an arm creeping at 1e-9 rad/s got a tail 1e-9 s after its
    setpoint, which the message rounds onto the same nanosecond.
    """
    rig = armed()
    for setpoint, _ in rig.run(60, target=offsets(j7=1e-7)):
        assert setpoint is not None
        if setpoint.tail_positions is not None:
            first = round(setpoint.time_from_now_s * 1e9)
            assert round(setpoint.tail_time_s * 1e9) >= first + round(DT * 1e9)


# -- gripper -----------------------------------------------------------------------------------


def test_gripper_non_finite_is_not_sent() -> None:
    """A NaN or infinite gripper width is never sent."""
    rig = armed()
    for value in (math.nan, math.inf, -math.inf):
        decision = rig.bridge.on_gripper(rig.t, value)
        assert decision.width_m is None and decision.reason == 'non_finite'
    assert rig.bridge.counters.values['gripper_non_finite'] == 3


def test_gripper_width_above_the_maximum_is_clipped() -> None:
    """A width above the gripper's max_width_m is sent as max_width_m."""
    rig = armed()
    decision = rig.bridge.on_gripper(rig.t, 0.2)
    assert decision.width_m == FR3.robot.gripper.max_width_m == 0.08
    assert decision.reason == 'clipped'


def test_gripper_reversal_sooner_than_the_toggle_interval_is_dropped() -> None:
    """Close, then open again within gripper_min_toggle_s: dropped; later: sent."""
    rig = armed()
    t = rig.t
    assert rig.bridge.on_gripper(t, 0.08).width_m == 0.08
    assert rig.bridge.on_gripper(t + 0.1, 0.02).width_m == 0.02
    assert rig.bridge.on_gripper(t + 0.2, 0.01).width_m == 0.01
    early = rig.bridge.on_gripper(t + 0.1 + TIMING.gripper_min_toggle_s - 0.05, 0.05)
    assert early.width_m is None and early.reason == 'toggle_rate'
    late = rig.bridge.on_gripper(t + 0.1 + TIMING.gripper_min_toggle_s + 0.05, 0.05)
    assert late.width_m == 0.05 and late.reason == ''


def test_gripper_closes_in_the_next_episode_after_a_twin_reset() -> None:
    """A reset twin restarts its clock: the last episode's toggle times must not block the
    gripper in the next one (the make demo failure: the gripper never closed after a reset)."""
    rig = armed()
    rig.run(2000)  # 20 s into the first episode
    assert rig.bridge.on_gripper(rig.t, 0.08).width_m == 0.08
    assert rig.bridge.on_gripper(rig.t + 0.1, 0.01).width_m == 0.01  # grasp
    assert rig.bridge.on_gripper(rig.t + 2.0, 0.08).width_m == 0.08  # release (a toggle)
    assert rig.bridge.disarm(rig.t + 2.0)[0]
    _until_settled(rig)
    rig.k = 10  # the twin restarts at 0.1 s
    rig.bridge.tick(rig.t)
    assert rig.bridge.state is State.DISARMED and rig.bridge.counters.values['clock_jumps'] == 1
    rig.feed()
    rig.arm()
    assert rig.send(offsets(j7=0.2)) == ''
    rig.run(50)
    assert rig.bridge.on_gripper(rig.t, 0.08).width_m == 0.08
    closing = rig.bridge.on_gripper(rig.t + 0.1, 0.02)
    assert closing.width_m == 0.02 and closing.reason == ''


def test_gripper_toggle_history_starts_again_at_each_arming() -> None:
    """Disarm and arm again: the first reversal afterwards is sent even within the interval."""
    rig = armed()
    t = rig.t
    assert rig.bridge.on_gripper(t, 0.08).width_m == 0.08
    assert rig.bridge.on_gripper(t + 0.05, 0.02).width_m == 0.02
    assert rig.bridge.disarm(t + 0.1)[0]
    rig.run(5)
    rig.arm()
    assert rig.send(offsets(j7=0.1)) == ''
    assert rig.bridge.on_gripper(rig.t, 0.06).width_m == 0.06


def test_gripper_gate_does_not_block_a_reversal_after_the_clock_went_back() -> None:
    """The gate alone: a reversal stamped before the last toggle is not held back."""
    gate = GripperGate(0.08, 0.5)
    assert gate.check(30.0, 0.08).width_m == 0.08
    assert gate.check(30.1, 0.02).width_m == 0.02
    assert gate.check(30.2, 0.06).width_m is None  # a genuine chatter: dropped
    assert gate.check(1.0, 0.06).width_m == 0.06


def test_gripper_is_not_sent_when_disarmed() -> None:
    """Gripper commands while disarmed are not sent."""
    rig = Rig()
    decision = rig.bridge.on_gripper(rig.t, 0.04)
    assert decision.width_m is None and decision.reason == 'not_armed'
    assert rig.bridge.counters.values['gripper_dropped_not_armed'] == 1


def test_gripper_width_received_while_disarmed_is_sent_after_arming() -> None:
    """The first gripper command after arming is sent even if it repeats a disarmed one."""
    rig = Rig()
    assert rig.bridge.on_gripper(rig.t, 0.02).width_m is None
    rig.arm()
    assert rig.bridge.on_gripper(rig.t, 0.02).width_m == 0.02


# -- random interleavings ----------------------------------------------------------------------


PROFILES = {(robot, tier): load_safety_profile(robot, tier)
            for robot in ('fr3', 'ur5e') for tier in ('commissioning', 'nominal')}
BOXES = {robot: load_workspace(f'twin_{robot}') for robot in ('fr3', 'ur5e')}

unit_offsets = st.lists(st.floats(-1.0, 1.0), min_size=7, max_size=7)
# A policy streaming one chunk of `points` toward a goal for `ticks`, re-sent every `every`.
streams = st.tuples(st.just('command'), unit_offsets, st.integers(1, 3), st.integers(1, 30),
                    st.integers(1, 4))
operations = st.one_of(
    streams,
    streams,
    st.tuples(st.just('non_finite'), st.integers(0, 6),
              st.sampled_from([math.nan, math.inf, -math.inf])),
    st.tuples(st.just('stale'), unit_offsets),
    st.tuples(st.just('no_joint_states'), st.integers(1, 10)),
    st.tuples(st.just('wait'), st.integers(1, 30)),
    # From now on the arm lags or leads the command by up to `size` rad (under the bound).
    st.tuples(st.just('skew'), unit_offsets, st.sampled_from([0.0, 0.01, 0.05])),
    st.sampled_from([('arm',), ('disarm',), ('stop',)]),
    # The operator acknowledges after watching `ticks` periods go by.
    st.tuples(st.just('acknowledge'), st.integers(0, 40)),
)


class Fuzz:
    """A rig plus the invariants every tick must satisfy."""

    def __init__(self, robot: str, tier: str, last_joint: float) -> None:
        profile = PROFILES[robot, tier]
        self.lim = profile.limits
        self.dof = profile.robot.dof
        q0 = np.array(profile.robot.home_rad)
        # The last joint turns the TCP about its own axis: start it anywhere in the envelope.
        q0[-1] = self.lim.lower_rad[-1] + last_joint * (self.lim.upper_rad[-1]
                                                         - self.lim.lower_rad[-1])
        self.rig = Rig(profile, BOXES[robot], q0=q0)
        self.bridge = self.rig.bridge
        self.span = profile.vendor.upper_rad - profile.vendor.lower_rad
        self.middle = (profile.vendor.upper_rad + profile.vendor.lower_rad) / 2.0
        self.quiet = False  # in FAULT and the stop has finished: nothing more may be sent
        self.skew = np.zeros(self.dof)
        self.skewed = False
        self.last_positions: np.ndarray | None = None
        self.last_velocities: np.ndarray | None = None
        self.expect_hold: np.ndarray | None = None

    def target(self, unit: Sequence[float], fraction: float = 1.0) -> np.ndarray:
        """Anywhere in the vendor range plus 0.4 rad, so the envelope clamps some targets."""
        return np.asarray(self.middle + np.array(unit[:self.dof]) * fraction
                          * (self.span / 2.0 + 0.4))

    def measured(self) -> np.ndarray:
        return np.clip(self.rig.tracking() + self.skew, self.lim.lower_rad, self.lim.upper_rad)

    def latch(self, before: State, acknowledged: bool = False) -> None:
        if before is State.FAULT and not acknowledged:
            assert self.bridge.state is State.FAULT
        if before is not State.FAULT and self.bridge.state is State.FAULT:
            self.quiet = before is State.DISARMED

    def tick(self, feed: bool = True, send: Sequence[np.ndarray] = ()) -> None:
        rig, bridge, lim = self.rig, self.bridge, self.lim
        rig.k += 1
        if feed:
            rig.feed(self.measured())
        before = bridge.state
        if send:
            reply = rig.send(*send)
            assert reply in ('', 'disarmed', 'fault', 'stopping')
            assert (reply == '') == (before in (State.HOLDING, State.ARMED))
            self.latch(before)
            before = bridge.state
        setpoint, decision = bridge.tick(rig.t)
        self.latch(before)
        if before is State.DISARMED or (before is State.FAULT and self.quiet):
            assert (setpoint, decision) == (None, None)
        if setpoint is None:
            return
        assert decision is not None
        assert np.all(np.isfinite(setpoint.positions))
        assert np.all(np.isfinite(setpoint.velocities))
        assert np.all(setpoint.positions >= lim.lower_rad - EPS)
        assert np.all(setpoint.positions <= lim.upper_rad + EPS)
        assert np.all(np.abs(setpoint.velocities) <= lim.velocity_rad_s * (1 + 1e-9) + EPS)
        if setpoint.tail_positions is not None:
            assert np.all(np.isfinite(setpoint.tail_positions))
            assert np.all(setpoint.tail_positions >= lim.lower_rad - EPS)
            assert np.all(setpoint.tail_positions <= lim.upper_rad + EPS)
        if self.last_positions is not None and not self.skewed:
            # No jumps, across stops, holds and re-arming (holds are at the measured pose).
            jump = np.abs(setpoint.positions - self.last_positions)
            assert np.all(jump <= lim.velocity_rad_s * DT * (1 + 1e-9) + EPS)
        if self.last_velocities is not None and 'cartesian_override' not in decision.reasons:
            # G7 and the stop: velocity changes by at most a_cap (a_stop in a stop) per period.
            a_max = np.maximum(lim.acceleration_rad_s2, lim.stop_acceleration_rad_s2)
            change = np.abs(setpoint.velocities - self.last_velocities)
            assert np.all(change <= a_max * DT * (1 + 1e-9) + EPS), decision.reasons
        self.last_velocities = setpoint.velocities.copy()
        if self.expect_hold is not None:
            np.testing.assert_array_equal(setpoint.positions, self.expect_hold)
            self.expect_hold = None
        self.last_positions = setpoint.positions.copy()
        if bridge.state is State.FAULT and 'hold_measured' in decision.reasons:
            assert not self.quiet
            self.quiet = True

    def apply(self, op: tuple[Any, ...]) -> None:
        rig, bridge = self.rig, self.bridge
        kind, before = op[0], bridge.state
        if kind == 'command':
            _, unit, points, ticks, every = op
            chunk = [self.target(unit, (i + 1) / points) for i in range(points)]
            for i in range(ticks):
                self.tick(send=chunk if i % every == 0 else ())
            return
        if kind == 'skew':
            self.skew = np.array(op[1][:self.dof]) * op[2]
            self.skewed = self.skewed or op[2] > 0.0
            return
        if kind in ('no_joint_states', 'wait'):
            for _ in range(op[1]):
                self.tick(feed=kind == 'wait')
            return
        if kind == 'non_finite':
            bad = self.target([0.0] * 7)
            bad[min(op[1], self.dof - 1)] = op[2]
            rig.k += 1
            rig.feed(self.measured())
            assert rig.send(bad) == 'non_finite'
            self.latch(before)
        elif kind == 'stale':
            rig.k += 1
            rig.feed(self.measured())
            stamp = rig.t - TIMING.stale_s - 0.05
            assert rig.send(self.target(op[1]), stamp=stamp) in ('stale', 'not_newer')
        elif kind == 'arm':
            ok, _ = bridge.arm(rig.t)
            if before is State.FAULT:
                assert not ok
            elif before is not State.DISARMED:
                assert ok and bridge.state is before
        elif kind == 'disarm':
            bridge.disarm(rig.t)
        elif kind == 'stop':
            bridge.stop(rig.t)
        elif kind == 'acknowledge':
            for _ in range(op[1]):
                self.tick()
            before = bridge.state
            ok, _ = bridge.acknowledge(rig.t)
            acknowledged = ok and before is State.FAULT
            if acknowledged:
                # Back to where the fault found it: holding the measured pose if it was armed,
                # disarmed (nothing sent) if it was disarmed; never further.
                assert bridge.state in (State.HOLDING, State.DISARMED)
                if bridge.state is State.HOLDING:
                    assert bridge.measured_q is not None
                    self.expect_hold = bridge.measured_q.copy()
                self.quiet = False
            self.latch(before, acknowledged)
        if before is State.DISARMED and kind not in ('arm', 'non_finite'):
            assert bridge.state is State.DISARMED
        self.tick()


@given(robot=st.sampled_from(['fr3', 'ur5e']), tier=st.sampled_from(['commissioning', 'nominal']),
       last_joint=st.floats(0.0, 1.0), start_armed=st.booleans(),
       script=st.lists(operations, min_size=4, max_size=40))
def test_random_interleavings_keep_every_setpoint_safe(
        robot: str, tier: str, last_joint: float, start_armed: bool,
        script: list[tuple[Any, ...]]) -> None:
    """Whatever arrives in any order, setpoints are finite, in the envelope, latched on FAULT."""
    fuzz = Fuzz(robot, tier, last_joint)
    if start_armed:
        fuzz.rig.arm()
    for op in script:
        fuzz.apply(op)


def test_a_command_stamped_in_the_future_is_dropped_and_does_not_block_later_ones() -> None:
    """A sender whose clock runs ahead is refused; correctly stamped commands still work."""
    rig = armed()
    assert rig.send(offsets(j7=0.2), stamp=rig.t + 1000.0) == 'future_stamp'
    assert rig.bridge.counters.values['dropped_future_stamp'] == 1
    rig.step()
    assert rig.send(offsets(j7=0.2)) == ''
    rig.run(5)
    assert rig.bridge.state is State.ARMED


def test_acknowledging_a_fault_latched_while_disarmed_leaves_the_bridge_disarmed() -> None:
    """Acknowledge clears the fault but never arms by itself."""
    rig = Rig()
    bad = HOME.copy()
    bad[0] = math.nan
    for _ in range(TIMING.max_consecutive_rejects):
        rig.send(bad)
        rig.step()
    assert rig.bridge.state is State.FAULT
    ok, message = rig.bridge.acknowledge(rig.t)
    assert ok, message
    assert rig.bridge.state is State.DISARMED
    assert rig.step() == (None, None)


def test_joint_states_stamped_long_ago_do_not_count_as_fresh() -> None:
    """A state that arrives now but was measured long ago does not keep the bridge alive."""
    rig = armed()
    for _ in range(int(TIMING.joint_state_timeout_s / DT) + 2):
        rig.k += 1
        rig.feed(stamp=rig.t - 1.0 + rig.k * 1e-6)
        rig.bridge.tick(rig.t)
    assert rig.bridge.state is State.FAULT
    assert 'joint states' in rig.bridge.fault_reason


def test_arming_is_refused_with_joint_states_stamped_long_ago() -> None:
    """The first states a bridge sees must be recent by their stamp, not only by arrival."""
    rig = Rig()
    rig.bridge = SafetyBridge(FR3, FR3_BOX, BridgeTiming())
    rig.feed(stamp=rig.t - 1.0)
    ok, message = rig.bridge.arm(rig.t)
    assert not ok and 'joint states' in message
    assert rig.bridge.counters.values['joint_states_old_stamp'] == 1


def test_arming_is_refused_between_the_envelope_and_the_fault_bound() -> None:
    """Arming needs every joint inside the envelope commands are clamped to."""
    q = HOME.copy()
    q[6] = LIMITS.upper_rad[6] + 0.04  # inside the fault bound, outside the envelope
    rig = Rig(q0=q)
    ok, message = rig.bridge.arm(rig.t)
    assert not ok and 'fr3_joint7' in message and 'envelope' in message


def test_a_hold_just_outside_the_envelope_moves_back_in_without_a_jump() -> None:
    """After a stop ends marginally outside the envelope, motion back in is gradual."""
    q = HOME.copy()
    q[6] = LIMITS.upper_rad[6] + 0.02
    limiter = SafetyBridge(FR3, FR3_BOX).limiter
    assert limiter is not None
    state = limiter.seed(q)
    positions = [state.q[6]]
    for _ in range(40):
        state = limiter.step(state, HOME, DT).state
        positions.append(state.q[6])
    steps = np.abs(np.diff(positions))
    assert steps.max() <= LIMITS.velocity_rad_s[6] * DT + EPS
    assert positions[-1] < positions[0]


# -- command sources: a restarted policy needs an acknowledge ---------------------------------


def _send_from(rig: Rig, source: str, target: np.ndarray) -> str:
    rig.k += 1
    rig.feed()
    return rig.bridge.on_command(rig.t, command(rig.t, target, names=rig.names), source)


def test_a_restarted_policy_moves_nothing_until_acknowledged() -> None:
    rig = armed()
    for _ in range(20):  # the policy streams; its first accepted command fixes the source
        assert _send_from(rig, 'policy-1', offsets(j7=0.3)) == ''
        rig.bridge.on_gripper(rig.t, 0.08, 'gripper-1')  # its gripper publisher likewise
        rig.bridge.tick(rig.t)
    assert rig.bridge.state is State.ARMED
    for _ in range(120):  # it dies: the watchdog stops the arm, the bridge holds
        rig.step()
    assert rig.bridge.state is State.HOLDING
    # Restarted: a new publisher. Its gripper width and its chunk both fault, neither moves.
    assert rig.bridge.on_gripper(rig.t, 0.0, 'gripper-2').width_m is None
    assert rig.bridge.state is State.FAULT and 'publisher' in rig.bridge.fault_reason
    assert _send_from(rig, 'policy-2', offsets(j7=0.5)) == 'fault'
    for _ in range(20):
        rig.step()
    ok, message = rig.bridge.acknowledge(rig.t)
    assert ok, message
    assert rig.bridge.on_gripper(rig.t, 0.02, 'gripper-2').reason == 'before_command'
    assert _send_from(rig, 'policy-2', offsets(j7=0.5)) == ''  # accepted from now on
    assert rig.bridge.state is State.ARMED
    assert rig.bridge.on_gripper(rig.t, 0.02, 'gripper-2').width_m == pytest.approx(0.02)
    assert rig.bridge.on_gripper(rig.t + 0.5, 0.03, 'gripper-3').reason == 'fault'


def test_a_second_command_source_faults_by_message_or_by_the_graph() -> None:
    rig = armed()
    rig.bridge.on_command_sources(rig.t, frozenset({'a', 'b'}))  # not fixed yet: no fault
    assert _send_from(rig, 'a', offsets(j7=0.1)) == ''
    rig.bridge.on_command_sources(rig.t, frozenset({'a'}))
    assert rig.bridge.state is State.ARMED
    assert _send_from(rig, 'b', offsets(j7=0.1)) == 'fault'
    assert rig.bridge.state is State.FAULT
    other = armed()
    assert _send_from(other, 'a', offsets(j7=0.1)) == ''
    other.bridge.on_command_sources(other.t, frozenset({'a', 'c'}))  # c appeared
    assert other.bridge.state is State.FAULT


def test_sources_are_free_to_change_while_disarmed_and_unchecked_without_ids() -> None:
    rig = Rig()
    for sources in ({'a'}, {'b'}, {'a', 'b'}):
        rig.bridge.on_command_sources(rig.t, frozenset(sources))
        assert rig.bridge.state is State.DISARMED
    rig.arm()
    rig.run(5, target=offsets(j7=0.1))  # commands without a publisher id (no RMW support)
    rig.bridge.on_command_sources(rig.t, frozenset({'x', 'y'}))
    assert rig.bridge.state is State.ARMED


def test_a_publisher_still_listed_when_the_sources_are_fixed_is_not_a_new_one() -> None:
    """A killed policy's publisher stays in the graph until its DDS lease expires: after the
    acknowledge, the respawned policy's first command fixes the sources while the dead one is
    still listed. That is no second source; a message from it, or a publisher appearing
    later, still faults."""
    rig = armed()
    rig.bridge.on_command_sources(rig.t, frozenset({'dead', 'new'}))
    assert _send_from(rig, 'new', offsets(j7=0.1)) == ''
    rig.bridge.on_command_sources(rig.t, frozenset({'dead', 'new'}))
    assert rig.bridge.state is State.ARMED
    rig.bridge.on_command_sources(rig.t, frozenset({'new'}))  # the lease expired
    assert rig.bridge.state is State.ARMED
    rig.bridge.on_command_sources(rig.t, frozenset({'new', 'third'}))
    assert rig.bridge.state is State.FAULT
    ghost = armed()
    ghost.bridge.on_command_sources(ghost.t, frozenset({'dead', 'new'}))
    assert _send_from(ghost, 'new', offsets(j7=0.1)) == ''
    assert _send_from(ghost, 'dead', offsets(j7=0.1)) == 'fault'
