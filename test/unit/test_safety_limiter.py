"""The per-tick joint command limiter (pure numpy, no ROS).

What a user of the safety bridge checks: whatever finite target arrives, the next command is
finite, inside the joint envelope and the workspace box, under every speed cap, continuous
with the previous command and (unless flagged `cartesian_override`) under the acceleration
cap; a compliant trajectory passes bit-identically; the limiter never speeds a joint up
beyond the request or the previous command, keeps the direction of motion when it only
scales, and limiting its own output changes nothing.

The sequence properties run at the hypothesis profile's example count (`ci`: 200,
`HYPOTHESIS_PROFILE=soak`: 100k each).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from visuomotor.robots.kinematics import TcpKinematics, jacobian, tcp_pose
from visuomotor.safety.limiter import CommandState, Limiter, LimitResult
from visuomotor.safety.profile import SafetyLimits, SafetyProfile, load_safety_profile
from visuomotor.safety.workspace import WorkspaceBox, load_workspace

#: Relative slack of the limiter's own cap comparisons (rounding, not tolerance).
REL = 1e-9
#: Control periods the bridge runs at (500 Hz, 100 Hz, 50 Hz).
DTS = (0.002, 0.01, 0.02)
#: Ticks per generated sequence (CI budget; the soak profile runs more sequences, not longer).
MAX_TICKS = 150
REASONS = frozenset({'position_clamped', 'slowdown', 'velocity_scaled', 'cartesian_scaled',
                     'acceleration_limited', 'cartesian_cap_exceeded',
                     'cartesian_override'})
SCALING_ONLY = frozenset({'velocity_scaled', 'cartesian_scaled'})


class Case:
    """One robot and tier with its twin's workspace box and a pool of valid rest positions."""

    def __init__(self, profile: SafetyProfile, box: WorkspaceBox,
                 pool: tuple[np.ndarray, ...]) -> None:
        self.profile = profile
        self.limits: SafetyLimits = profile.limits
        self.box = box
        self.limiter = Limiter(profile.limits, box, TcpKinematics(profile.robot))
        self.home = np.array(profile.robot.home_rad)
        self.dof = profile.robot.dof
        self.pool = pool
        self.name = f'{profile.robot.name}/{profile.limits.tier}'

    def __repr__(self) -> str:
        return f'Case({self.name!r})'


def wall_distance(box: WorkspaceBox, point: np.ndarray) -> float:
    """Signed distance from `point` to the nearest wall (negative: outside)."""
    return float(min(np.min(point - box.min_xyz_m), np.min(box.max_xyz_m - point)))


def make_case(robot: str, tier: str) -> Case:
    """The limiter of `robot` at `tier` and rest positions near its walls and joint limits.

    The pool is drawn once (seeded) from the whole envelope and keeps positions whose TCP is
    inside the box and within two slowdown zones of a wall or one zone of a joint limit:
    sequences from home rarely get there within a CI-sized number of ticks.
    """
    profile = load_safety_profile(robot, tier)
    box = load_workspace(f'twin_{robot}')
    lo, hi = profile.limits.lower_rad, profile.limits.upper_rad
    rng = np.random.default_rng(20240611)
    pool: list[np.ndarray] = []
    while len(pool) < 48:
        q = rng.uniform(lo, hi)
        point = tcp_pose(profile.robot, q)[:3, 3]
        margin = wall_distance(box, point)
        joint_margin = float(np.min(np.minimum(q - lo, hi - q)))
        if margin >= 0.0 and (margin < 2 * box.slowdown_zone_m
                              or joint_margin < profile.limits.slowdown_zone_rad):
            pool.append(q)
    return Case(profile, box, tuple(pool))


CASES = tuple(make_case(robot, tier) for robot in ('fr3', 'ur5e')
              for tier in ('commissioning', 'nominal'))
CASE_BY_NAME = {(c.profile.robot.name, c.limits.tier): c for c in CASES}
CASE = st.sampled_from(CASES)


# -- independent measurements ------------------------------------------------------------------


def rotation_angle(r0: np.ndarray, r1: np.ndarray) -> float:
    """Angle of the rotation from r0 to r1 (accurate for small angles, unlike acos)."""
    relative = r0.T @ r1
    skew = relative - relative.T
    sine = math.sqrt(skew[2, 1] ** 2 + skew[0, 2] ** 2 + skew[1, 0] ** 2) / 2.0
    cosine = (float(np.trace(relative)) - 1.0) / 2.0
    return math.atan2(sine, cosine)


def clamped(case: Case, target: np.ndarray) -> np.ndarray:
    """The target inside the joint envelope (the request the limiter works from)."""
    return np.clip(target, case.limits.lower_rad, case.limits.upper_rad)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two velocity vectors."""
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def assert_within_limits(case: Case, prev: CommandState, target: np.ndarray,
                         result: LimitResult, dt: float) -> None:
    """Every guarantee one limited command must meet, measured with the reference FK."""
    lim, box = case.limits, case.box
    q, v, tcp = result.state.q, result.state.v, result.state.tcp
    reasons = set(result.reasons)
    assert reasons <= REASONS, f'unknown reasons {reasons - REASONS}'
    assert len(reasons) == len(result.reasons), f'repeated reasons {result.reasons}'
    assert np.all(np.isfinite(q)) and np.all(np.isfinite(v)) and np.all(np.isfinite(tcp)), \
        f'non-finite command q={q} v={v}'
    if not reasons:
        assert np.array_equal(q, target), 'no reasons given but the command differs'
    assert np.all(q >= lim.lower_rad) and np.all(q <= lim.upper_rad), \
        f'outside the envelope: {q} not in [{lim.lower_rad}, {lim.upper_rad}]'
    assert np.all(np.abs(v) <= lim.velocity_rad_s * (1 + REL)), \
        f'joint speed {np.abs(v)} above the caps {lim.velocity_rad_s}'
    # The slowdown zone: toward a limit at distance d (from the previous command), at most
    # v_cap sqrt(d / zone).
    room = np.where(v > 0, lim.upper_rad - prev.q, prev.q - lim.lower_rad)
    curve = lim.velocity_rad_s * np.sqrt(np.maximum(room, 0.0) / lim.slowdown_zone_rad)
    assert np.all(np.abs(v) <= curve * (1 + REL) + 1e-12), \
        f'joint speed {np.abs(v)} toward a limit {room} rad away is above the curve {curve}'
    np.testing.assert_allclose(v, (q - prev.q) / dt, rtol=0, atol=1e-9,
                               err_msg='velocity is not (q - q_prev) / dt')
    pose = tcp_pose(case.profile.robot, q)
    np.testing.assert_allclose(tcp, pose, rtol=0, atol=1e-9,
                               err_msg='the reported TCP is not the pose of the command')
    point, point_prev = pose[:3, 3], tcp_pose(case.profile.robot, prev.q)[:3, 3]
    assert box.contains(point, 1e-9), f'TCP {point} left the box {box.describe()}'
    if 'cartesian_cap_exceeded' in reasons:
        # Braking from a velocity the Cartesian caps no longer admit (the Jacobian changed
        # fast): the joint acceleration cap holds, the Cartesian caps are soft for the tick.
        change = np.abs(v - prev.v)
        assert np.all(change <= lim.acceleration_rad_s2 * dt * (1 + REL) + 1e-12)
        assert np.all(np.abs(v) <= np.abs(prev.v) + 1e-12), 'braking, never faster'
        return
    linear = float(np.linalg.norm(point - point_prev)) / dt
    assert linear <= lim.tcp_linear_m_s * (1 + 1e-6), \
        f'TCP linear speed {linear} m/s above {lim.tcp_linear_m_s} ({result.reasons})'
    for axis in range(3):
        # The box's slowdown zone: toward a wall at distance d, at most v_cap sqrt(d / zone).
        step = float(point[axis] - point_prev[axis])
        room = float(box.max_xyz_m[axis] - point_prev[axis] if step > 0
                     else point_prev[axis] - box.min_xyz_m[axis])
        allowed = min(lim.tcp_linear_m_s * math.sqrt(max(room, 0.0) / box.slowdown_zone_m) * dt,
                      max(room, 0.0))
        assert abs(step) <= allowed * (1 + 1e-6) + 1e-12, \
            f'TCP moved {step} m along {"xyz"[axis]} toward a wall {room} m away ' \
            f'(allowed {allowed}, {result.reasons})'
    angular = rotation_angle(prev.tcp[:3, :3], pose[:3, :3]) / dt
    assert angular <= lim.tcp_angular_rad_s * (1 + 1e-6), \
        f'TCP angular speed {angular} rad/s above {lim.tcp_angular_rad_s} ({result.reasons})'
    if 'cartesian_override' in reasons:
        # Observed: only at the box (braking toward a wall), never in free space.
        gap = wall_distance(box, point_prev)
        assert gap < box.slowdown_zone_m, \
            f'cartesian_override {gap} m from the nearest wall, outside its slowdown zone'
    else:
        change = np.abs(v - prev.v)
        assert np.all(change <= lim.acceleration_rad_s2 * dt * (1 + REL) + 1e-12), \
            (f'velocity changed by {change} in one tick, above a_cap * dt = '
             f'{lim.acceleration_rad_s2 * dt} ({result.reasons})')


# -- strategies --------------------------------------------------------------------------------

#: Per-joint values for absolute targets far outside any envelope.
HUGE = st.one_of(st.floats(-1e300, 1e300),
                 st.sampled_from([1e300, -1e300, 1.7976931348623157e308,
                                  -1.7976931348623157e308, 1e10, -1e10, 0.0]))


def _segment(kind: str, value: st.SearchStrategy[float]) -> st.SearchStrategy[tuple]:
    """(kind, 7 values, ticks): one target held for a number of ticks."""
    return st.tuples(st.just(kind), st.lists(value, min_size=7, max_size=7),
                     st.integers(1, 60))


SEGMENTS = st.lists(st.one_of(
    _segment('home', st.floats(-0.5, 0.5)),    # home plus an offset: ordinary moves
    _segment('nudge', st.floats(-1.0, 1.0)),   # the command plus at most 1 mrad: often compliant
    _segment('wide', st.floats(-10.0, 10.0)),  # absolute, mostly outside the envelope
    _segment('huge', HUGE),                    # absolute, up to the largest float
    _segment('cartesian', st.floats(-1.0, 1.0)),  # push the TCP 0.5 m along a direction
), min_size=1, max_size=6)


def make_target(case: Case, kind: str, values: Sequence[float], q: np.ndarray) -> np.ndarray:
    """The target of one tick of a segment (`nudge` and `cartesian` follow the command)."""
    raw = np.array(values[:case.dof], dtype=np.float64)
    if kind == 'home':
        return case.home + raw
    if kind == 'nudge':
        return q + raw * 1e-3
    if kind == 'cartesian':
        direction = raw[:3] if float(np.linalg.norm(raw[:3])) > 1e-3 else np.array([0, 0, -1.0])
        linear = jacobian(case.profile.robot, q)[:3]
        return q + np.linalg.pinv(linear) @ (0.5 * direction / np.linalg.norm(direction))
    return raw


@st.composite
def rest_positions(draw: st.DrawFn, case: Case) -> np.ndarray:
    """Valid positions at rest: home +- 0.3 rad (clipped to the envelope), or from the pool.

    Optionally one joint is moved to within 1e-4 rad of a limit (or onto it).
    """
    if draw(st.booleans()):
        q = case.pool[draw(st.integers(0, len(case.pool) - 1))].copy()
    else:
        offsets = np.array(draw(st.lists(st.floats(-0.3, 0.3), min_size=7, max_size=7)))
        q = clamped(case, case.home + offsets[:case.dof])
    if draw(st.booleans()):
        joint = draw(st.integers(0, case.dof - 1))
        gap = draw(st.one_of(st.just(0.0), st.floats(0.0, 1e-4)))
        q[joint] = case.limits.upper_rad[joint] - gap if draw(st.booleans()) \
            else case.limits.lower_rad[joint] + gap
    assume(case.box.contains(tcp_pose(case.profile.robot, q)[:3, 3]))
    return q


@dataclass(frozen=True)
class Scenario:
    """A start at rest and the targets to feed from it, at one control period."""

    case: Case
    dt: float
    start: np.ndarray
    segments: tuple[tuple, ...]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A robot, tier, control period, valid rest position and a sequence of held targets."""
    case = draw(CASE)
    dt = draw(st.sampled_from(DTS))
    return Scenario(case, dt, draw(rest_positions(case)), tuple(draw(SEGMENTS)))


def ticks(scenario: Scenario) -> Iterator[tuple[CommandState, np.ndarray, LimitResult]]:
    """Feed the scenario's targets tick by tick: (previous state, target, result)."""
    limiter = scenario.case.limiter
    state = limiter.seed(scenario.start)
    count = 0
    for kind, values, repeat in scenario.segments:
        for _ in range(repeat):
            if count == MAX_TICKS:
                return
            target = make_target(scenario.case, kind, values, state.q)
            result = limiter.step(state, target, scenario.dt)
            yield state, target, result
            state = result.state
            count += 1


# -- sequence properties -----------------------------------------------------------------------


@given(scenario=scenarios())
@example(scenario=Scenario(  # found by the soak profile: UR5e near a singularity
    case=next(c for c in CASES if c.name == 'ur5e/nominal'), dt=0.01,
    start=np.array([-2.26000359, -3.07917558, 2.59658273, 0.32307232, 0.15554258,
                    -2.79479264]),
    segments=(('huge', [-4.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 43),
              ('wide', [-3.0, 0.0, 0.0, 0.0, 0.0, -3.0, 0.0], 15))))
def test_any_target_sequence_keeps_every_command_within_the_limits(scenario: Scenario) -> None:
    """Arbitrary finite targets, step by step: every command stays inside every limit."""
    for prev, target, result in ticks(scenario):
        assert_within_limits(scenario.case, prev, clamped(scenario.case, target), result,
                             scenario.dt)


@given(scenario=scenarios())
def test_output_never_moves_a_joint_faster_than_the_request_and_the_previous_command(
        scenario: Scenario) -> None:
    """No joint is ever commanded faster than both its request and its previous command."""
    for prev, target, result in ticks(scenario):
        requested = (clamped(scenario.case, target) - prev.q) / scenario.dt
        bound = np.maximum(np.abs(requested), np.abs(prev.v))
        speed = np.abs(result.state.v)
        assert np.all(speed <= bound * (1 + REL) + 1e-12), \
            f'speed {speed} above max(|request|, |previous|) = {bound} ({result.reasons})'


@given(scenario=scenarios())
def test_limiting_a_limited_command_changes_nothing(scenario: Scenario) -> None:
    """Feeding the limiter its own output (same previous state) gives the same command."""
    limiter = scenario.case.limiter
    for prev, _, result in ticks(scenario):
        again = limiter.step(prev, result.state.q, scenario.dt)
        np.testing.assert_allclose(again.state.q, result.state.q, rtol=0, atol=1e-9,
                                   err_msg=f'not idempotent: first {result.reasons}, '
                                           f'second {again.reasons}')


@given(scenario=scenarios())
def test_command_never_jumps(scenario: Scenario) -> None:
    """Each command is within one tick of travel at the velocity cap of the previous one."""
    lim = scenario.case.limits
    for prev, _, result in ticks(scenario):
        step = np.abs(result.state.q - prev.q)
        assert np.all(step <= lim.velocity_rad_s * scenario.dt * (1 + REL)), \
            f'jump {step} above v_cap * dt = {lim.velocity_rad_s * scenario.dt}'


@given(case=CASE, dt=st.sampled_from(DTS),
       targets=st.lists(st.lists(HUGE, min_size=7, max_size=7), min_size=1, max_size=20))
def test_extreme_finite_targets_never_produce_nan(case: Case, dt: float,
                                                  targets: list[list[float]]) -> None:
    """Targets of +-1e300 (or the largest float) still give finite commands in the envelope."""
    limiter = case.limiter
    state = limiter.seed(case.home)
    for values in targets:
        result = limiter.step(state, np.array(values[:case.dof]), dt)
        q = result.state.q
        for name, array in (('q', q), ('v', result.state.v), ('tcp', result.state.tcp)):
            assert np.all(np.isfinite(array)), f'{name} = {array} from target {values}'
        assert np.all(q >= case.limits.lower_rad) and np.all(q <= case.limits.upper_rad)
        state = result.state


@given(case=CASE, dt=st.sampled_from(DTS), data=st.data(),
       offsets=st.lists(st.floats(-2.0, 2.0), min_size=7, max_size=7),
       length=st.integers(1, MAX_TICKS))
def test_scaling_keeps_the_direction_of_a_straight_line_approach(
        case: Case, dt: float, data: st.DataObject, offsets: list[float], length: int) -> None:
    """Toward one fixed target from rest, scaling never bends the direction of motion.

    From rest every stage scales along the request (the acceleration step starts at zero
    velocity), so the first command is a non-negative multiple of the request whatever the
    reasons; afterwards the previous velocity lies on the same line, and a command limited
    only by the velocity or Cartesian scaling must stay on it.
    """
    limiter = case.limiter
    start = data.draw(rest_positions(case), label='start')
    goal = clamped(case, start + np.array(offsets[:case.dof]))
    state = limiter.seed(start)
    for tick in range(length):
        requested = (goal - state.q) / dt
        result = limiter.step(state, goal, dt)
        v = result.state.v
        reasons = set(result.reasons)
        if tick == 0 or reasons <= SCALING_ONLY:
            if float(np.linalg.norm(requested)) > 1e-6 and float(np.linalg.norm(v)) > 1e-12:
                similarity = cosine(v, requested)
                assert similarity >= 1 - 1e-9, \
                    f'tick {tick}: direction changed (cosine {similarity}, {result.reasons})'
            if tick == 0:
                assert np.all(np.abs(v) <= np.abs(requested) * (1 + REL) + 1e-12)
        state = result.state


@given(case=CASE, dt=st.sampled_from(DTS), data=st.data(),
       offsets=st.lists(st.floats(-2.0, 2.0), min_size=7, max_size=7),
       on_line=st.booleans(), shift=st.floats(0.0, 0.45),
       perturbation=st.lists(st.floats(-0.45, 0.45), min_size=7, max_size=7))
def test_velocity_scaling_preserves_the_direction_of_the_request(
        case: Case, dt: float, data: st.DataObject, offsets: list[float], on_line: bool,
        shift: float, perturbation: list[float]) -> None:
    """A far target, the previous velocity near its scaled request: scaled, never bent.

    The previous velocity is put within half an acceleration step of the request scaled to
    the joint caps and the Cartesian caps (measured with the limiter's own `joint_caps` and
    `cartesian_ratio`), on that line or off it, so the acceleration cap does not bind and the
    step reports only `velocity_scaled` / `cartesian_scaled`.
    """
    lim, limiter = case.limits, case.limiter
    q0 = data.draw(rest_positions(case), label='start')
    goal = clamped(case, q0 + np.array(offsets[:case.dof]))
    requested = (goal - q0) / dt
    assume(float(np.max(np.abs(requested * dt))) > 1e-3)
    caps_hi, caps_lo = limiter.joint_caps(q0, dt)
    caps = np.where(requested > 0, caps_hi, caps_lo)
    moving = np.abs(requested) > 1e-9
    scale = min(1.0, float(np.min(caps[moving] / np.abs(requested[moving]))))
    tcp0 = tcp_pose(case.profile.robot, q0)
    ratio = limiter.cartesian_ratio(tcp0, tcp_pose(case.profile.robot, q0 + requested * scale
                                                   * dt), dt)
    assume(math.isfinite(ratio))
    scaled = requested * scale * (0.98 / ratio if ratio > 1.0 else 1.0)
    step = lim.acceleration_rad_s2 * dt
    if on_line:
        v_prev = scaled * (1.0 - shift * float(np.min(step / np.maximum(np.abs(scaled),
                                                                         1e-300))))
    else:
        v_prev = scaled + np.array(perturbation[:case.dof]) * step
    prev = CommandState(q0, v_prev, tcp0)
    result = limiter.step(prev, goal, dt)
    assume(result.reasons and set(result.reasons) <= SCALING_ONLY)
    similarity = cosine(result.state.v, requested)
    assert similarity >= 1 - 1e-9, \
        f'direction changed: cosine {similarity} ({result.reasons}, previous v {v_prev})'


# -- compliant input ---------------------------------------------------------------------------


@given(case=CASE, dt=st.sampled_from(DTS),
       amplitudes=st.lists(st.floats(-0.05, 0.05), min_size=7, max_size=7),
       omega=st.floats(0.2, 2.0), length=st.integers(1, MAX_TICKS))
def test_compliant_trajectory_passes_bit_identically(case: Case, dt: float,
                                                     amplitudes: list[float], omega: float,
                                                     length: int) -> None:
    """A slow smooth trajectory around home comes out unchanged, bit for bit, with no reasons.

    q(t) = home + A (1 - cos wt) starts at rest; its joint speeds stay under 0.05 rad/s in
    total (TCP under ~0.05 m/s), its accelerations under 0.1 rad/s^2 and its joints and TCP
    out of every slowdown zone that could bind.
    """
    amplitude = np.array(amplitudes[:case.dof])
    total = float(np.sum(np.abs(amplitude))) * omega
    if total > 0.05:
        amplitude *= 0.05 / total
    times = dt * np.arange(1, length + 1)
    trajectory = case.home + amplitude * (1.0 - np.cos(omega * times))[:, None]
    for q in trajectory:
        assume(wall_distance(case.box, tcp_pose(case.profile.robot, q)[:3, 3])
               > case.box.slowdown_zone_m)
    state = case.limiter.seed(case.home)
    for target in trajectory:
        result = case.limiter.step(state, target, dt)
        assert result.reasons == (), f'compliant target limited: {result.reasons}'
        assert np.array_equal(result.state.q, target)
        state = result.state


# -- behaviour at the limits -------------------------------------------------------------------


@pytest.mark.parametrize(('robot', 'tier'), [('fr3', 'commissioning'), ('fr3', 'nominal'),
                                             ('ur5e', 'commissioning'), ('ur5e', 'nominal')])
def test_slowdown_zone_slows_a_joint_approaching_its_limit(robot: str, tier: str) -> None:
    """The last joint driven at its upper limit brakes along v_cap sqrt(d / zone), stops on it."""
    case = CASE_BY_NAME[robot, tier]
    lim, limiter = case.limits, case.limiter
    dt = 0.01
    start = case.home.copy()
    start[-1] = lim.upper_rad[-1] - 1.0
    target = start.copy()
    target[-1] = lim.upper_rad[-1] + 5.0
    state = limiter.seed(start)
    cap, zone, upper = lim.velocity_rad_s[-1], lim.slowdown_zone_rad, lim.upper_rad[-1]
    slowed = 0
    for _ in range(2000):
        result = limiter.step(state, target, dt)
        distance = upper - state.q[-1]
        speed = result.state.v[-1]
        assert speed <= cap * math.sqrt(distance / zone) * (1 + REL) + 1e-12, \
            f'{speed} rad/s toward the limit at {distance} rad'
        assert result.state.q[-1] <= upper
        assert_within_limits(case, state, clamped(case, target), result, dt)
        slowed += 'slowdown' in result.reasons
        state = result.state
    assert slowed > 10
    assert upper - state.q[-1] < 1e-3, f'stopped {upper - state.q[-1]} rad short of the limit'


@pytest.mark.parametrize('gap', [0.0, 1e-12, 1e-9, 1e-6, 1e-4])
@pytest.mark.parametrize('dt', DTS)
def test_joint_a_hair_below_its_limit_does_not_cross_it(gap: float, dt: float) -> None:
    """At rest just below a limit and pushed through it: stays on it, velocity consistent."""
    case = CASE_BY_NAME['fr3', 'nominal']
    start = case.home.copy()
    start[-1] = case.limits.upper_rad[-1] - gap
    target = start.copy()
    target[-1] += 1.0
    state = case.limiter.seed(start)
    for _ in range(20):
        result = case.limiter.step(state, target, dt)
        assert_within_limits(case, state, clamped(case, target), result, dt)
        state = result.state
    assert case.limits.upper_rad[-1] - state.q[-1] <= gap


@pytest.mark.parametrize(('robot', 'tier', 'step'), [('fr3', 'commissioning', -2.5),
                                                     ('fr3', 'nominal', -2.5),
                                                     ('ur5e', 'nominal', 2.5)])
def test_large_target_step_is_spread_over_many_ticks(robot: str, tier: str,
                                                     step: float) -> None:
    """A 2.5 rad step on one joint takes many ticks of at most v_cap * dt each, then arrives."""
    case = CASE_BY_NAME[robot, tier]
    lim, limiter = case.limits, case.limiter
    dt = 0.01
    target = case.home.copy()
    target[-1] += step
    state = limiter.seed(case.home)
    moving = 0
    for _ in range(3000):
        result = limiter.step(state, target, dt)
        assert_within_limits(case, state, target, result, dt)
        assert np.all(np.abs(result.state.q - state.q) <= lim.velocity_rad_s * dt * (1 + REL))
        moving += not np.array_equal(result.state.q, target)
        state = result.state
    assert moving >= abs(step) / (lim.velocity_rad_s[-1] * dt)
    assert np.array_equal(state.q, target), 'never settled on the target'


@pytest.mark.parametrize(('robot', 'tier'), [('fr3', 'commissioning'), ('ur5e', 'nominal')])
def test_reversed_target_decelerates_within_the_acceleration_cap(robot: str, tier: str) -> None:
    """Cruising toward one target, then the opposite: the velocity turns at most a_cap * dt."""
    case = CASE_BY_NAME[robot, tier]
    lim, limiter = case.limits, case.limiter
    dt = 0.002
    forward, backward = case.home.copy(), case.home.copy()
    forward[-1] -= 1.2
    backward[-1] += 1.2
    state = limiter.seed(case.home)
    for _ in range(300):
        state = limiter.step(state, forward, dt).state
    cruise = state.v[-1]
    assert cruise < -0.1, f'not cruising: {cruise}'
    reversal_ticks = None
    for tick in range(1000):
        result = limiter.step(state, backward, dt)
        assert_within_limits(case, state, backward, result, dt)
        change = np.abs(result.state.v - state.v)
        assert np.all(change <= lim.acceleration_rad_s2 * dt * (1 + REL) + 1e-12)
        state = result.state
        if reversal_ticks is None and state.v[-1] >= 0.0:
            reversal_ticks = tick + 1
    assert reversal_ticks is not None and \
        reversal_ticks >= abs(cruise) / (lim.acceleration_rad_s2[-1] * dt) - 1
    assert state.v[-1] > 0.1, 'never moved toward the new target'


#: Joint offsets from home that put the TCP under the table (z < 0 in the base frame).
UNDER_THE_TABLE = {'fr3': (0.0, 1.6, 0.0, 0.2, 0.0, 0.75, 0.0),
                   'ur5e': (0.0, 0.8, 0.0, 0.0, 0.0, 0.0)}


def drive_into_the_floor(case: Case, dt: float, seconds: float = 15.0,
                         ) -> Iterator[tuple[CommandState, LimitResult]]:
    """From rest at home, hold a target under the table: (previous state, result) per tick."""
    target = case.home + np.array(UNDER_THE_TABLE[case.profile.robot.name])
    assert tcp_pose(case.profile.robot, target)[2, 3] < case.box.min_xyz_m[2]
    state = case.limiter.seed(case.home)
    for _ in range(round(seconds / dt)):
        result = case.limiter.step(state, target, dt)
        yield state, result
        state = result.state


@pytest.mark.parametrize('robot', ['fr3', 'ur5e'])
def test_tcp_stops_at_the_floor_of_the_workspace(robot: str) -> None:
    """A target under the table: the TCP comes down to the box floor and not through it."""
    for tier in ('commissioning', 'nominal'):
        case = CASE_BY_NAME[robot, tier]
        floor = case.box.min_xyz_m[2]
        target = case.home + np.array(UNDER_THE_TABLE[robot])
        lowest = math.inf
        for prev, result in drive_into_the_floor(case, 0.01):
            assert_within_limits(case, prev, target, result, 0.01)
            z = result.state.tcp[2, 3]
            assert z >= floor - 1e-9, f'TCP at z = {z} below the floor {floor}'
            lowest = min(lowest, z)
        assert lowest < floor + 2e-3, f'stopped at z = {lowest}, short of the floor {floor}'
        assert not np.allclose(result.state.q, target)



@pytest.mark.parametrize(('robot', 'tier'), [
    ('fr3', 'commissioning'), ('fr3', 'nominal'), ('ur5e', 'commissioning'),
    ('ur5e', 'nominal')])
def test_tcp_approaches_the_floor_along_the_box_slowdown_curve(robot: str, tier: str) -> None:
    """Driven into the table, the TCP's speed toward it stays under v_cap sqrt(d / zone)."""
    case = CASE_BY_NAME[robot, tier]
    floor, zone = case.box.min_xyz_m[2], case.box.slowdown_zone_m
    cap = case.limits.tcp_linear_m_s
    for dt in DTS:
        for prev, result in drive_into_the_floor(case, dt):
            room = max(prev.tcp[2, 3] - floor, 0.0)
            allowed = min(cap * math.sqrt(room / zone) * dt, room)
            drop = prev.tcp[2, 3] - result.state.tcp[2, 3]
            assert drop <= allowed * (1 + 1e-6) + 1e-12, \
                (f'dt {dt}: TCP {room} m above the floor dropped {drop} m in one tick '
                 f'(curve allows {allowed}; {result.reasons})')


@st.composite
def moving_states(draw: st.DrawFn) -> tuple[Case, float, CommandState]:
    """Any admissible moving state: a valid position and a velocity within every cap there.

    The velocity is within the joint caps and slowdown curves at the position, and its
    next-tick TCP motion within the Cartesian caps and wall curves: a state the limiter itself
    could have produced one tick earlier.
    """
    case, dt = draw(CASE), draw(st.sampled_from(DTS))
    q = draw(rest_positions(case))
    direction = np.array(draw(st.lists(st.floats(-1.0, 1.0), min_size=7, max_size=7)))
    v = direction[:case.dof] * draw(st.floats(0.0, 1.0))
    room = np.where(v > 0, case.limits.upper_rad - q, q - case.limits.lower_rad)
    curve = case.limits.velocity_rad_s * np.minimum(
        1.0, np.sqrt(np.maximum(room, 0.0) / case.limits.slowdown_zone_rad))
    cap = np.minimum(curve, np.maximum(room, 0.0) / dt)
    speed = np.abs(v)
    over = speed > cap
    if over.any():
        v = v * float(np.min(cap[over] / speed[over]))
    limiter, tcp = case.limiter, case.limiter.fk.pose(q)
    for _ in range(60):
        if limiter.cartesian_ratio(tcp, limiter.fk.pose(q + v * dt), dt) <= 1.0:
            break
        v = v * 0.7
    else:
        v = np.zeros_like(v)
    return case, dt, CommandState(q, v, tcp)


@given(state=moving_states(), segment=SEGMENTS)
def test_one_step_from_any_admissible_moving_state_stays_within_the_limits(
        state: tuple[Case, float, CommandState], segment: list[tuple]) -> None:
    """From any state the limiter could be in, any target: one command within every limit."""
    case, dt, prev = state
    kind, values, _ = segment[0]
    target = make_target(case, kind, values, prev.q)
    result = case.limiter.step(prev, target, dt)
    assert_within_limits(case, prev, clamped(case, target), result, dt)
