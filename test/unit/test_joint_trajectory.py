"""The twin's joint trajectory, forward position and gripper controllers (pure, no MuJoCo).

What a user of /joint_trajectory checks: the arm passes through the points at their times,
interpolates as joint_trajectory_controller does, never jumps when a command is replaced, and
a rejected command names its bad field and changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visuomotor.robots.description import load_robot
from visuomotor.sim.arm_controller import ArmController
from visuomotor.sim.joint_trajectory import (
    ActiveTrajectory,
    CommandError,
    SampledState,
    validate_trajectory,
)
from visuomotor.trajectory import JointTrajectoryCommand

FR3 = load_robot('fr3')
UR5E = load_robot('ur5e')
HOME = np.array(FR3.home_rad)
NAMES = FR3.joint_names


Point = tuple[Any, ...]  # (t, positions[, velocities[, accelerations]])


def command(points: Sequence[Point], names: Sequence[str] = NAMES,
            stamp: float = 0.0) -> JointTrajectoryCommand:
    """A JointTrajectoryCommand; each point is (t, positions[, velocities[, accelerations]])."""
    full = []
    for point in points:
        t, positions, *rest = point
        velocities = rest[0] if len(rest) > 0 else ()
        accelerations = rest[1] if len(rest) > 1 else ()
        full.append((float(t), tuple(positions), tuple(velocities), tuple(accelerations)))
    return JointTrajectoryCommand(tuple(names), tuple(full), stamp)


def controller(now: float = 0.0, positions: Sequence[float] = HOME) -> ArmController:
    return ArmController(FR3, positions, now)


def offsets(*values: float) -> np.ndarray:
    """Home plus per-joint offsets (broadcast a single value to all joints)."""
    return HOME + np.broadcast_to(np.asarray(values, dtype=np.float64), HOME.shape)


# -- passing through the points --------------------------------------------------------------


@pytest.mark.parametrize('kind', ['linear', 'cubic', 'quintic'])
def test_points_are_reached_at_their_absolute_times(kind: str) -> None:
    arm = controller(now=2.0)
    rng = np.random.default_rng(3)
    times = [0.4, 0.9, 1.2, 2.0]
    positions = [HOME + rng.uniform(-0.3, 0.3, 7) for _ in times]
    velocities = [rng.uniform(-0.5, 0.5, 7) for _ in times]
    accelerations = [rng.uniform(-1, 1, 7) for _ in times]
    points = []
    for t, p, v, a in zip(times, positions, velocities, accelerations, strict=True):
        points.append({'linear': (t, p), 'cubic': (t, p, v), 'quintic': (t, p, v, a)}[kind])
    arm.command_trajectory(command(points), now_s=2.0)
    assert arm.trajectory_active(2.0)
    for i, (t, p) in enumerate(zip(times, positions, strict=True)):
        state = arm.sample(2.0 + t)
        np.testing.assert_allclose(state.positions, p, atol=1e-12)
        if kind != 'linear' and i < len(times) - 1:
            np.testing.assert_allclose(state.velocities, velocities[i], atol=1e-12)
        if kind == 'quintic' and i < len(times) - 1:
            np.testing.assert_allclose(state.accelerations, accelerations[i], atol=1e-9)
        # Approached from the left, the previous segment ends on the same point.
        if i > 0:
            before = arm.sample(2.0 + t - 1e-9)
            np.testing.assert_allclose(before.positions, p, atol=1e-7)
            if kind != 'linear':
                np.testing.assert_allclose(before.velocities, velocities[i], atol=1e-6)
    assert not arm.trajectory_active(2.0 + times[-1])


def test_linear_between_position_only_points() -> None:
    arm = controller()
    p0, p1 = offsets(0.1), offsets(-0.2, 0.1, 0.3, -0.1, 0.2, 0.1, -0.3)
    arm.command_trajectory(command([(1.0, p0), (3.0, p1)]), now_s=0.0)
    for fraction in (0.0, 0.1, 0.25, 0.5, 0.9):
        state = arm.sample(1.0 + 2.0 * fraction)
        np.testing.assert_allclose(state.positions, p0 + fraction * (p1 - p0), atol=1e-12)
        np.testing.assert_allclose(state.velocities, (p1 - p0) / 2.0, atol=1e-12)
        np.testing.assert_allclose(state.accelerations, 0.0)


def hermite(t: float, duration: float, p0: np.ndarray, v0: np.ndarray, p1: np.ndarray,
            v1: np.ndarray) -> np.ndarray:
    s = t / duration
    h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
    h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
    return h00 * p0 + h10 * duration * v0 + h01 * p1 + h11 * duration * v1


def quintic(t: float, duration: float, start: tuple[np.ndarray, ...],
            end: tuple[np.ndarray, ...]) -> np.ndarray:
    """The quintic through both (position, velocity, acceleration) triples, by linear solve."""
    rows = []
    for tau in (0.0, duration):
        rows.append([tau**k for k in range(6)])
        rows.append([k * tau ** (k - 1) if k >= 1 else 0.0 for k in range(6)])
        rows.append([k * (k - 1) * tau ** (k - 2) if k >= 2 else 0.0 for k in range(6)])
    rhs = np.stack([start[0], start[1], start[2], end[0], end[1], end[2]])
    coefficients = np.linalg.solve(np.array(rows), rhs)
    return np.asarray(np.array([t**k for k in range(6)]) @ coefficients)


def test_cubic_when_velocities_are_given() -> None:
    arm = controller()
    p0, v0 = offsets(0.1), np.full(7, 0.3)
    p1, v1 = offsets(0.4, -0.2, 0.3, -0.1, 0.2, 0.1, -0.3), np.linspace(-0.5, 0.5, 7)
    arm.command_trajectory(command([(0.5, p0, v0), (1.5, p1, v1)]), now_s=0.0)
    for s in (0.1, 0.37, 0.5, 0.81):
        np.testing.assert_allclose(arm.sample(0.5 + s).positions,
                                   hermite(s, 1.0, p0, v0, p1, v1), atol=1e-12)


def test_quintic_when_accelerations_are_given() -> None:
    arm = controller()
    start = (offsets(0.1), np.full(7, 0.3), np.full(7, -1.0))
    end = (offsets(0.4, -0.2, 0.3, -0.1, 0.2, 0.1, -0.3), np.linspace(-0.5, 0.5, 7),
           np.linspace(1.0, -1.0, 7))
    arm.command_trajectory(command([(0.5, *start), (1.7, *end)]), now_s=0.0)
    for s in (0.1, 0.37, 0.6, 1.1):
        np.testing.assert_allclose(arm.sample(0.5 + s).positions,
                                   quintic(s, 1.2, start, end), atol=1e-10)
    # The commanded velocity is the derivative of the commanded position.
    h = 1e-6
    numeric = (arm.sample(1.0 + h).positions - arm.sample(1.0 - h).positions) / (2 * h)
    np.testing.assert_allclose(arm.sample(1.0).velocities, numeric, atol=1e-6)


def test_before_the_first_point_it_interpolates_from_the_commanded_state() -> None:
    arm = controller()
    first = offsets(0.2)
    arm.command_trajectory(command([(1.0, offsets(-0.2)), (2.0, offsets(0.0))]), now_s=0.0)
    # Mid-motion (at t = 0.5 the first trajectory commands home - 0.1), a new one arrives.
    state_at_arrival = arm.sample(0.5).positions
    np.testing.assert_allclose(state_at_arrival, offsets(-0.1), atol=1e-12)
    arm.command_trajectory(command([(1.0, first), (2.0, offsets(0.3))]), now_s=0.5)
    np.testing.assert_allclose(arm.sample(0.5).positions, state_at_arrival, atol=1e-12)
    for fraction in (0.25, 0.5, 0.75):
        np.testing.assert_allclose(arm.sample(0.5 + fraction).positions,
                                   state_at_arrival + fraction * (first - state_at_arrival),
                                   atol=1e-12)
    np.testing.assert_allclose(arm.sample(1.5).positions, first, atol=1e-12)


def test_the_last_point_is_held_after_the_end() -> None:
    arm = controller()
    last = offsets(0.25)
    arm.command_trajectory(command([(0.5, offsets(0.1), np.full(7, 0.2)),
                                    (1.0, last, np.full(7, 0.4))]), now_s=0.0)
    for t in (1.0, 1.5, 100.0):
        state = arm.sample(t)
        np.testing.assert_allclose(state.positions, last, atol=1e-12)
        np.testing.assert_array_equal(state.velocities, 0.0)
        np.testing.assert_array_equal(state.accelerations, 0.0)
    assert not arm.trajectory_active(1.0)
    assert arm.trajectory_active(0.999)


def test_stamp_zero_starts_on_arrival() -> None:
    arm = controller(now=7.0)
    target = offsets(0.2)
    arm.command_trajectory(command([(1.0, target)], stamp=0.0), now_s=7.0)
    np.testing.assert_allclose(arm.sample(7.5).positions, offsets(0.1), atol=1e-12)
    np.testing.assert_allclose(arm.sample(8.0).positions, target, atol=1e-12)


def test_future_stamp_moves_from_arrival_to_reach_the_first_point_on_time() -> None:
    # ROS 2 joint_trajectory_controller: the segment before the first point starts on
    # arrival (state_before at arrival), and the first point is reached at stamp + tfs.
    arm = controller(now=1.0)
    target = offsets(0.3)
    arm.command_trajectory(command([(1.0, target)], stamp=3.0), now_s=1.0)
    np.testing.assert_allclose(arm.sample(1.0).positions, HOME, atol=1e-12)
    np.testing.assert_allclose(arm.sample(2.5).positions, offsets(0.15), atol=1e-12)
    np.testing.assert_allclose(arm.sample(4.0).positions, target, atol=1e-12)
    np.testing.assert_allclose(arm.sample(9.0).positions, target, atol=1e-12)


def test_past_stamp_whose_end_is_past_is_rejected() -> None:
    arm = controller(now=5.0)
    with pytest.raises(CommandError) as error:
        arm.command_trajectory(command([(0.5, offsets(0.1)), (1.0, offsets(0.2))], stamp=3.0),
                               now_s=5.0)
    assert error.value.field == 'header.stamp'
    assert 'before now' in str(error.value)
    assert arm.mode == 'hold'
    np.testing.assert_array_equal(arm.sample(6.0).positions, HOME)


def test_past_stamp_that_ends_in_the_future_does_not_jump() -> None:
    """A trajectory stamped 50 ms ago (say, at the observation time) must start smoothly.

    joint_trajectory_controller interpolates from (arrival time, commanded state) to the first
    point; at the arrival instant the command equals the previous one.
    """
    arm = controller(now=1.0)
    arm.command_trajectory(command([(0.1, offsets(0.2))], stamp=0.95), now_s=1.0)
    at_arrival = arm.sample(1.0).positions
    jump = float(np.abs(at_arrival - HOME).max())
    assert jump < 1e-9, (
        f'a trajectory stamped 0.05 s in the past made the commanded position jump by '
        f'{jump:.3f} rad at the instant it was accepted (expected a continuous start from '
        f'the held position)')


# -- replacement never jumps (property) ------------------------------------------------------


@st.composite
def trajectories(draw: st.DrawFn, arm_lower: np.ndarray, arm_upper: np.ndarray,
                 ) -> JointTrajectoryCommand:
    """Random valid trajectories: 1-4 points, first point at least 50 ms away.

    A first point at time_from_start 0 means "be there now" and jumps by design (as in
    joint_trajectory_controller), so it is left out of the continuity property.
    """
    dof = len(arm_lower)
    kind = draw(st.sampled_from(['linear', 'cubic', 'quintic']))
    count = draw(st.integers(1, 4))
    t = 0.0
    points = []
    for _ in range(count):
        t += draw(st.floats(0.05, 1.0))
        positions = [draw(st.floats(lo, hi)) for lo, hi in zip(arm_lower, arm_upper,
                                                                 strict=True)]
        velocities = [draw(st.floats(-1.0, 1.0)) for _ in range(dof)] if kind != 'linear' \
            else []
        accelerations = [draw(st.floats(-2.0, 2.0)) for _ in range(dof)] \
            if kind == 'quintic' else []
        points.append((t, tuple(positions), tuple(velocities), tuple(accelerations)))
    return JointTrajectoryCommand(UR5E.joint_names, tuple(points))


# UR5e: joint ranges up to +-2 pi keep the positions within a few radians of each other.
UR_LOWER = np.array(UR5E.home_rad) - 1.5
UR_UPPER = np.array(UR5E.home_rad) + 1.5


@settings(max_examples=150)
@given(first=trajectories(UR_LOWER, UR_UPPER), second=trajectories(UR_LOWER, UR_UPPER),
       replace_fraction=st.floats(0.0, 1.2), delay=st.one_of(st.just(0.0),
                                                             st.floats(0.01, 0.5)))
def test_replacing_a_trajectory_mid_motion_never_jumps(first: JointTrajectoryCommand,
                                                        second: JointTrajectoryCommand,
                                                        replace_fraction: float,
                                                        delay: float) -> None:
    arm = ArmController(UR5E, UR5E.home_rad, 0.0)
    arm.command_trajectory(first, now_s=0.0)
    end = first.points[-1][0]
    replace_at = replace_fraction * end
    dt = 1e-5
    before = arm.sample(replace_at - dt)
    at = arm.sample(replace_at)
    stamp = 0.0 if delay == 0.0 else replace_at + delay
    arm.command_trajectory(JointTrajectoryCommand(second.joint_names, second.points, stamp),
                           now_s=replace_at)
    np.testing.assert_allclose(arm.sample(replace_at).positions, at.positions, atol=1e-12)
    after = arm.sample(replace_at + dt)
    speed = np.maximum(np.abs(before.velocities), np.abs(after.velocities)) + 1.0
    jump = np.abs(after.positions - before.positions)
    assert np.all(jump <= 2 * dt * speed), f'jump {jump} over 2 dt = {2 * dt}'


# -- rejected commands name the field and change nothing -----------------------------------


def running_controller() -> ArmController:
    arm = controller()
    arm.command_trajectory(command([(1.0, offsets(0.1), np.full(7, 0.1)),
                                    (2.0, offsets(0.2), np.zeros(7))]), now_s=0.0)
    return arm


def samples(arm: ArmController) -> list[np.ndarray]:
    return [arm.sample(t).positions.copy() for t in (0.3, 0.5, 1.0, 1.7, 2.5)]


GOOD = tuple(offsets(0.05))
BAD_TRAJECTORIES = [
    ('unknown joint', command([(1.0, GOOD)], names=(*NAMES[:6], 'fr3_joint8')),
     'joint_names', 'unknown joints'),
    ('missing joint', command([(1.0, GOOD[:6])], names=NAMES[:6]), 'joint_names',
     'missing joints'),
    ('repeated joint', command([(1.0, GOOD)], names=(*NAMES[:6], NAMES[0])), 'joint_names',
     'repeated'),
    ('short positions', command([(1.0, GOOD[:6])]), 'points[0].positions', 'has 6 values'),
    ('long velocities', command([(1.0, GOOD, (0.0,) * 8)]), 'points[0].velocities',
     'has 8 values'),
    ('nan position', command([(1.0, GOOD), (2.0, (*GOOD[:3], math.nan, *GOOD[4:]))]),
     'points[1].positions', 'finite'),
    ('inf velocity', command([(1.0, GOOD, (math.inf,) + (0.0,) * 6)]), 'points[0].velocities',
     'finite'),
    ('nan acceleration', command([(1.0, GOOD, (0.0,) * 7, (math.nan,) * 7)]),
     'points[0].accelerations', 'finite'),
    ('nan time', command([(math.nan, GOOD)]), 'points[0].time_from_start', 'finite'),
    ('negative time', command([(-0.5, GOOD)]), 'points[0].time_from_start', '>= 0'),
    ('equal times', command([(1.0, GOOD), (1.0, GOOD)]), 'points[1].time_from_start',
     'strictly increase'),
    ('decreasing times', command([(1.0, GOOD), (2.0, GOOD), (1.5, GOOD)]),
     'points[2].time_from_start', 'strictly increase'),
    ('above upper limit', command([(1.0, GOOD), (2.0, (*GOOD[:5], 4.6, GOOD[6]))]),
     'points[1].positions', 'fr3_joint6'),
    ('below lower limit', command([(1.0, (*GOOD[:3], -3.1, *GOOD[4:]))]),
     'points[0].positions', 'fr3_joint4'),
    ('accelerations without velocities', command([(1.0, GOOD, (), (0.0,) * 7)]),
     'points[0].accelerations', 'without velocities'),
    ('empty points', command([]), 'points', 'empty'),
    ('nan stamp', command([(1.0, GOOD)], stamp=math.nan), 'header.stamp', 'finite'),
]


@pytest.mark.parametrize(('bad', 'field', 'words'), [case[1:] for case in BAD_TRAJECTORIES],
                         ids=[case[0] for case in BAD_TRAJECTORIES])
def test_rejected_trajectory_names_the_field_and_changes_nothing(
        bad: JointTrajectoryCommand, field: str, words: str) -> None:
    arm = running_controller()
    expected = samples(arm)
    with pytest.raises(CommandError) as error:
        arm.command_trajectory(bad, now_s=0.5)
    assert error.value.field == field
    assert words in str(error.value)
    assert arm.mode == 'trajectory'
    for got, want in zip(samples(arm), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_joint_names_in_another_order_are_reordered() -> None:
    rng = np.random.default_rng(5)
    points = [(0.5, HOME + rng.uniform(-0.2, 0.2, 7), rng.uniform(-0.3, 0.3, 7)),
              (1.25, HOME + rng.uniform(-0.2, 0.2, 7), rng.uniform(-0.3, 0.3, 7))]
    order = [3, 0, 6, 2, 5, 1, 4]
    shuffled = [(t, p[order], v[order]) for t, p, v in points]
    in_order, reordered = controller(), controller()
    in_order.command_trajectory(command(points), now_s=0.0)
    reordered.command_trajectory(command(shuffled, names=[NAMES[i] for i in order]),
                                 now_s=0.0)
    for t in np.linspace(0.0, 1.5, 16):
        np.testing.assert_array_equal(reordered.sample(t).positions,
                                      in_order.sample(t).positions)
        np.testing.assert_array_equal(reordered.sample(t).velocities,
                                      in_order.sample(t).velocities)
    # validate_trajectory returns the points in the controller's order.
    start, validated = validate_trajectory(command(shuffled, names=[NAMES[i] for i in order]),
                                           NAMES, FR3.lower_rad, FR3.upper_rad, now_s=2.0)
    assert start == 2.0
    np.testing.assert_array_equal(validated[0].positions, points[0][1])
    np.testing.assert_array_equal(validated[1].velocities, points[1][2])
    assert validated[0].accelerations is None


def test_active_trajectory_alone() -> None:
    hold = SampledState(HOME, np.zeros(7), np.zeros(7))
    _, points = validate_trajectory(command([(1.0, offsets(0.2))]), NAMES, FR3.lower_rad,
                                    FR3.upper_rad, now_s=0.0)
    trajectory = ActiveTrajectory(10.0, points, hold)
    assert trajectory.end_s == 11.0
    np.testing.assert_allclose(trajectory.sample(9.0).positions, HOME)
    np.testing.assert_allclose(trajectory.sample(10.5).positions, offsets(0.1), atol=1e-12)
    np.testing.assert_allclose(trajectory.sample(12.0).positions, offsets(0.2), atol=1e-12)


# -- forward position command ----------------------------------------------------------------


def test_position_command_replaces_the_trajectory() -> None:
    arm = running_controller()
    target = offsets(-0.1)
    arm.command_positions(list(target), now_s=0.5)
    assert arm.mode == 'position'
    assert not arm.trajectory_active(0.5)
    for t in (0.5, 1.0, 5.0):
        np.testing.assert_array_equal(arm.sample(t).positions, target)
        np.testing.assert_array_equal(arm.sample(t).velocities, 0.0)
    np.testing.assert_array_equal(arm.hold_positions(), target)
    # A later trajectory starts from the position command.
    arm.command_trajectory(command([(1.0, offsets(0.1))]), now_s=1.0)
    np.testing.assert_allclose(arm.sample(1.5).positions, offsets(0.0), atol=1e-12)


@pytest.mark.parametrize(('values', 'words'), [
    (list(HOME[:6]), 'has 6 values'),
    ([*HOME, 0.0], 'has 8 values'),
    ([math.nan, *HOME[1:]], 'finite'),
    ([*HOME[:6], math.inf], 'finite'),
    ([*HOME[:3], 0.0, *HOME[4:]], 'fr3_joint4'),  # joint 4 must stay below -0.1518
    ([3.0, *HOME[1:]], 'fr3_joint1'),
])
def test_rejected_position_command_changes_nothing(values: list[float], words: str) -> None:
    arm = running_controller()
    expected = samples(arm)
    with pytest.raises(CommandError) as error:
        arm.command_positions(values, now_s=0.5)
    assert error.value.field == 'data'
    assert words in str(error.value)
    assert arm.mode == 'trajectory'
    for got, want in zip(samples(arm), expected, strict=True):
        np.testing.assert_array_equal(got, want)


# -- gripper ---------------------------------------------------------------------------------


def test_gripper_moves_at_its_speed_limit() -> None:
    arm = controller(now=1.0)
    speed, width = FR3.gripper.max_speed_m_s, FR3.gripper.max_width_m
    assert arm.gripper_width(1.0) == width
    arm.command_gripper(0.0, now_s=1.0)
    assert arm.gripper_target_m == 0.0
    for elapsed in (0.0, 0.1, 0.35, 0.7):
        assert arm.gripper_width(1.0 + elapsed) == pytest.approx(width - speed * elapsed)
    assert arm.gripper_width(1.0 + width / speed) == pytest.approx(0.0)
    assert arm.gripper_width(10.0) == 0.0
    # Re-opened half-way: continues from where it is, at the same speed.
    arm = controller(now=0.0)
    arm.command_gripper(0.0, now_s=0.0)
    halfway = arm.gripper_width(0.3)
    arm.command_gripper(width, now_s=0.3)
    assert arm.gripper_width(0.3) == pytest.approx(halfway)
    assert arm.gripper_width(0.4) == pytest.approx(halfway + speed * 0.1)
    assert arm.gripper_width(5.0) == pytest.approx(width)


@settings(max_examples=50)
@given(commands=st.lists(st.tuples(st.floats(0.0, 0.5), st.floats(0.0, 0.08)), min_size=1,
                         max_size=6))
def test_gripper_width_never_changes_faster_than_its_limit(
        commands: list[tuple[float, float]]) -> None:
    arm = controller()
    now = 0.0
    dt = 0.01
    previous = arm.gripper_width(0.0)
    for wait, width in commands:
        arm.command_gripper(width, now_s=now)
        for _ in range(int(wait / dt) + 1):
            now += dt
            current = arm.gripper_width(now)
            assert abs(current - previous) <= FR3.gripper.max_speed_m_s * dt + 1e-12
            assert 0.0 <= current <= FR3.gripper.max_width_m
            previous = current


@pytest.mark.parametrize('width', [math.nan, math.inf, -0.001, 0.081, 1.0])
def test_rejected_gripper_command_changes_nothing(width: float) -> None:
    arm = controller()
    arm.command_gripper(0.02, now_s=0.0)
    expected = [arm.gripper_width(t) for t in (0.1, 0.3, 1.0)]
    with pytest.raises(CommandError) as error:
        arm.command_gripper(width, now_s=0.1)
    assert error.value.field == 'gripper width'
    assert arm.gripper_target_m == 0.02
    assert [arm.gripper_width(t) for t in (0.1, 0.3, 1.0)] == expected


def test_reset_forgets_commands() -> None:
    arm = running_controller()
    arm.command_gripper(0.0, now_s=0.0)
    arm.reset(offsets(0.05), now_s=3.0, gripper_width_m=0.04)
    assert arm.mode == 'hold'
    assert not arm.trajectory_active(3.0)
    np.testing.assert_array_equal(arm.sample(4.0).positions, offsets(0.05))
    assert arm.gripper_width(4.0) == 0.04
