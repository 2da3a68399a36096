"""The teleop pipeline (visuomotor.teleop.core) on the FR3, and the IK it runs.

A scripted operator session (visuomotor.teleop.scripted) is played at 50 Hz into TeleopCore
with a perfect arm (the measured joints become each commanded target): the TCP must follow
the hand's motion since each clutch engage, rotated into the base frame, to well under a
millimetre; every joint target stays inside the limits shrunk by the IK margin; the move home
is timed at the configured joint speed; and nothing is commanded without joint states.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visuomotor.robots.description import RobotDescription, load_robot
from visuomotor.robots.ik import solve_ik
from visuomotor.robots.kinematics import tcp_pose
from visuomotor.robots.transforms import rotation_vector
from visuomotor.safety.profile import load_safety_profile
from visuomotor.teleop.config import TeleopConfig, load_teleop_config
from visuomotor.teleop.core import HOME_REACHED_RAD, OUT_OF_REACH_M, JointTarget, TeleopCore
from visuomotor.teleop.inputs import ControllerInputs, ControllerPose
from visuomotor.teleop.mapping import DISCARD, HOME, TOGGLE_EPISODE
from visuomotor.teleop.scripted import HEADSET_FRAME, ScriptedQuest, teleop_session

RATE_HZ = 50.0
DT = 1.0 / RATE_HZ

FR3 = load_robot('fr3')
SHIPPED = load_teleop_config('sim_quest')
TRANSPARENT = dataclasses.replace(SHIPPED, filter_min_cutoff_hz=1e12)


def rotation_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two rotations."""
    return float(np.linalg.norm(rotation_vector(a[:3, :3].T @ b[:3, :3])))


def joint_margin(robot: RobotDescription, q: np.ndarray) -> np.ndarray:
    """Per joint, the distance to the nearer limit."""
    return np.minimum(q - robot.lower_rad, robot.upper_rad - q)


@dataclass
class Tick:
    """What one 20 ms tick of a session gave."""

    t: float
    hand: np.ndarray
    hand_rotation: np.ndarray
    engaged_before: bool
    target: JointTarget | None
    home: JointTarget | None
    events: list[str]
    label: str


@dataclass
class Session:
    """A played session: per-tick results and the core at the end."""

    core: TeleopCore
    ticks: list[Tick] = field(default_factory=list)

    @property
    def events(self) -> list[str]:
        return [e for tick in self.ticks for e in tick.events]


def play(config: TeleopConfig, quest: ScriptedQuest, robot: RobotDescription = FR3
         ) -> Session:
    """Play `quest` at 50 Hz into a TeleopCore driving a perfect arm.

    The arm reaches each teleop target at once; a home step is followed in a straight line
    that arrives `time_from_stamp_s` later, as the safety bridge does.
    """
    core = TeleopCore(config, robot)
    core.on_joint_state(np.array(robot.home_rad))
    session = Session(core)
    recording = False
    for k in range(int(round(quest.duration_s * RATE_HZ)) + 1):
        t = k * DT
        sample = quest.sample(t)
        if not sample.tracked:
            continue
        events = core.on_inputs(t, sample.inputs, recording)
        for event in events:
            if event == TOGGLE_EPISODE:
                recording = not recording
            elif event == DISCARD:
                recording = False
        home = core.home_step()
        if home is not None:
            assert core.measured is not None
            fraction = min(1.0, DT / home.time_from_stamp_s)
            core.on_joint_state(core.measured + fraction * (home.q - core.measured))
        engaged = core.mapping.engaged
        pose = ControllerPose(t, HEADSET_FRAME, sample.position, sample.rotation)
        target = core.on_pose(t, pose)
        if target is not None:
            core.on_joint_state(target.q)
        session.ticks.append(Tick(t, sample.position, sample.rotation, engaged, target, home,
                                  events, quest.segments[sample.segment].label))
    return session


@pytest.fixture(scope='module')
def exact_session() -> Session:
    """One kept episode plus a discarded one, filter transparent."""
    return play(TRANSPARENT, ScriptedQuest(teleop_session(1)))


@pytest.fixture(scope='module')
def shipped_session() -> Session:
    """The same with the shipped filter and 0.5 mm tracking jitter."""
    return play(SHIPPED, ScriptedQuest(teleop_session(1), jitter_m=0.0005, seed=4))


def test_session_events_follow_the_script(exact_session: Session) -> None:
    assert exact_session.events == [TOGGLE_EPISODE, TOGGLE_EPISODE, HOME, TOGGLE_EPISODE,
                                    DISCARD, HOME]
    # the episode is clutched once, re-clutched once, and the discarded one clutched once
    assert exact_session.core.counters.get('clutch_engaged') == 3
    assert 'target_out_of_reach' not in exact_session.core.counters


def test_ik_reaches_every_session_target(exact_session: Session) -> None:
    targets = [tick.target for tick in exact_session.ticks if tick.target is not None]
    assert len(targets) > 5 * RATE_HZ  # several seconds of clutched motion
    assert max(target.position_error_m for target in targets) < 0.001
    assert all(target.time_from_stamp_s == TRANSPARENT.lead_s for target in targets)


def check_tracking(session: Session, config: TeleopConfig, position_tol_m: float,
                   rotation_tol_rad: float) -> float:
    """TCP against p0 + R_hb (c - c0), R_hb dC R_hb^T R0 while clutched; the largest error."""
    r_hb = config.headset_to_base
    worst = 0.0
    anchor: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    for tick in session.ticks:
        if tick.target is None:
            anchor = None
            continue
        tcp = tcp_pose(FR3, tick.target.q)
        if anchor is None:
            assert not tick.engaged_before
            anchor = (tcp, tick.hand, tick.hand_rotation)
        p0, c0, rot0 = anchor
        expected_p = p0[:3, 3] + config.translation_scale * r_hb @ (tick.hand - c0)
        error = float(np.linalg.norm(tcp[:3, 3] - expected_p))
        worst = max(worst, error)
        assert error < position_tol_m, tick.t
        expected_r = r_hb @ tick.hand_rotation @ rot0.T @ r_hb.T @ p0[:3, :3]
        assert rotation_angle(tcp, expected_r) < rotation_tol_rad, tick.t
    return worst


def test_tcp_follows_the_hand_while_clutched(exact_session: Session) -> None:
    check_tracking(exact_session, TRANSPARENT, 0.001, 0.002)


def test_tcp_follows_the_hand_with_the_shipped_filter(shipped_session: Session) -> None:
    """Filter lag and jitter included, the TCP is within a centimetre of the hand's path."""
    assert shipped_session.core.counters.get('clutch_engaged') == 3
    worst = check_tracking(shipped_session, SHIPPED, 0.01, 0.02)
    assert worst > 1e-5  # the filter does lag (the exact check would not hold here)


def test_hand_moved_back_unclutched_does_not_move_the_arm(exact_session: Session) -> None:
    """The script's 8 cm 'hand back' while unclutched: no command, and no jump at re-clutch."""
    ticks = exact_session.ticks
    back = [i for i, tick in enumerate(ticks) if tick.label == 'hand back, unclutched']
    assert back
    assert all(ticks[i].target is None and ticks[i].home is None for i in back)
    moved = np.linalg.norm(ticks[back[-1]].hand - ticks[back[0]].hand)
    assert moved > 0.07
    before = next(t for t in reversed(ticks[:back[0]]) if t.target is not None)
    after = next(t for t in ticks[back[-1]:] if t.target is not None)
    assert after.label == 're-clutch'
    assert before.target is not None and after.target is not None
    tcp_before, tcp_after = tcp_pose(FR3, before.target.q), tcp_pose(FR3, after.target.q)
    assert np.linalg.norm(tcp_after[:3, 3] - tcp_before[:3, 3]) < 1e-4
    assert rotation_angle(tcp_after, tcp_before) < 1e-3


def test_commanded_tcp_speed_stays_under_the_commissioning_cap(exact_session: Session) -> None:
    """The scripted session is slow enough that the bridge need not scale teleop motion."""
    cap = load_safety_profile('fr3', 'commissioning').limits.tcp_linear_m_s
    speeds = []
    for previous, tick in zip(exact_session.ticks, exact_session.ticks[1:], strict=False):
        if previous.target is not None and tick.target is not None:
            step = tcp_pose(FR3, tick.target.q)[:3, 3] - tcp_pose(FR3, previous.target.q)[:3, 3]
            speeds.append(float(np.linalg.norm(step)) / DT)
    assert 0.01 < max(speeds) < cap


def test_joint_targets_stay_inside_the_limits_minus_the_margin(
        exact_session: Session, shipped_session: Session) -> None:
    margin = TRANSPARENT.ik_limit_margin_rad
    for session in (exact_session, shipped_session):
        for tick in session.ticks:
            if tick.target is not None:
                assert np.all(tick.target.q >= FR3.lower_rad + margin - 1e-12)
                assert np.all(tick.target.q <= FR3.upper_rad - margin + 1e-12)


def test_session_ends_at_home_with_the_home_speed_respected(exact_session: Session) -> None:
    core = exact_session.core
    assert core.measured is not None
    assert float(np.max(np.abs(core.measured - FR3.home_rad))) < HOME_REACHED_RAD
    homes = [tick.home for tick in exact_session.ticks if tick.home is not None]
    assert homes
    for home in homes:
        np.testing.assert_array_equal(home.q, FR3.home_rad)
        assert home.time_from_stamp_s >= TRANSPARENT.lead_s


def test_gripper_follows_the_trigger() -> None:
    core = TeleopCore(TRANSPARENT, FR3)
    assert core.gripper_width_m == FR3.gripper.max_width_m
    core.on_inputs(0.0, ControllerInputs(trigger=1.0), False)
    assert core.gripper_width_m == 0.0
    core.on_inputs(0.02, ControllerInputs(trigger=0.0), False)
    assert core.gripper_width_m == FR3.gripper.max_width_m


# -- single steps ------------------------------------------------------------------------------


def pose_at(t: float, position: np.ndarray) -> ControllerPose:
    return ControllerPose(t, HEADSET_FRAME, position, np.eye(3))


def test_no_target_before_joint_states() -> None:
    core = TeleopCore(TRANSPARENT, FR3)
    hand = np.array([0.2, 1.0, -0.3])
    core.on_inputs(0.0, ControllerInputs(grip=0.0), False)
    for k in range(1, 6):
        core.on_inputs(k * DT, ControllerInputs(grip=1.0), False)
        assert core.on_pose(k * DT, pose_at(k * DT, hand)) is None
    assert core.counters['poses_before_joint_states'] == 5
    assert not core.mapping.engaged
    core.on_joint_state(np.array(FR3.home_rad))
    core.on_inputs(6 * DT, ControllerInputs(grip=1.0), False)
    # The grip was held while the arm was unknown: it does not engage once joint states
    # arrive; a release (with the streams live) and a fresh press do.
    assert core.on_pose(6 * DT, pose_at(6 * DT, hand)) is None
    core.on_inputs(7 * DT, ControllerInputs(grip=0.0), False)
    assert core.on_pose(7 * DT, pose_at(7 * DT, hand)) is None
    core.on_inputs(8 * DT, ControllerInputs(grip=1.0), False)
    target = core.on_pose(8 * DT, pose_at(8 * DT, hand))
    assert target is not None
    # engaged where the arm is: the first target is the measured posture's TCP
    np.testing.assert_allclose(tcp_pose(FR3, target.q), tcp_pose(FR3, FR3.home_rad),
                               atol=1e-4)


def test_unreachable_target_is_counted_and_reported() -> None:
    config = dataclasses.replace(TRANSPARENT, translation_scale=10.0, max_jump_m=1.0)
    core = TeleopCore(config, FR3)
    core.on_joint_state(np.array(FR3.home_rad))
    hand = np.array([0.2, 1.0, -0.3])
    core.on_inputs(0.0, ControllerInputs(grip=0.0), False)
    assert core.on_pose(0.0, pose_at(0.0, hand)) is None  # the stream starts, released
    core.on_inputs(DT, ControllerInputs(grip=1.0), False)
    assert core.on_pose(DT, pose_at(DT, hand)) is not None
    core.on_inputs(2 * DT, ControllerInputs(grip=1.0), False)
    target = core.on_pose(2 * DT, pose_at(2 * DT, hand + [0.0, 0.0, -0.2]))  # 2 m forward
    assert target is not None
    assert target.position_error_m > OUT_OF_REACH_M
    assert core.counters['target_out_of_reach'] == 1
    margin = config.ik_limit_margin_rad
    assert np.all(target.q >= FR3.lower_rad + margin - 1e-12)
    assert np.all(target.q <= FR3.upper_rad - margin + 1e-12)


def homing_core(q: np.ndarray) -> TeleopCore:
    core = TeleopCore(TRANSPARENT, FR3)
    core.on_joint_state(q)
    core.on_inputs(0.0, ControllerInputs(upper=True), False)
    assert core.mapping.homing
    return core


def test_home_step_is_timed_at_the_home_speed() -> None:
    q = np.array(FR3.home_rad) + [0.3, -0.2, 0.1, 0.15, -0.4, 0.05, 0.6]
    core = homing_core(q)
    step = core.home_step()
    assert step is not None
    np.testing.assert_array_equal(step.q, FR3.home_rad)
    assert step.time_from_stamp_s == pytest.approx(0.6 / TRANSPARENT.home_speed_rad_s)
    # followed in a straight line, no joint is faster than the home speed, and it ends
    speeds = []
    for _ in range(1000):
        step = core.home_step()
        if step is None:
            break
        assert core.measured is not None
        fraction = min(1.0, DT / step.time_from_stamp_s)
        moved = fraction * (step.q - core.measured)
        speeds.append(float(np.max(np.abs(moved))) / DT)
        core.on_joint_state(core.measured + moved)
    assert step is None
    assert core.measured is not None
    assert float(np.max(np.abs(core.measured - FR3.home_rad))) < HOME_REACHED_RAD
    assert max(speeds) <= TRANSPARENT.home_speed_rad_s + 1e-9


def test_home_step_near_home_uses_the_lead_time() -> None:
    core = homing_core(np.array(FR3.home_rad) + 0.005)
    step = core.home_step()
    assert step is not None
    assert step.time_from_stamp_s == TRANSPARENT.lead_s


def test_home_step_is_none_at_home_without_homing_or_joint_states() -> None:
    assert homing_core(np.array(FR3.home_rad) + HOME_REACHED_RAD / 2).home_step() is None
    away = np.array(FR3.home_rad) + 0.2
    core = homing_core(away)
    assert core.home_step() is not None
    core.on_inputs(DT, ControllerInputs(upper=False), False)  # hold-to-run: released
    assert core.home_step() is None
    idle = TeleopCore(TRANSPARENT, FR3)
    idle.on_joint_state(away)
    assert idle.home_step() is None  # never asked to home
    blind = TeleopCore(TRANSPARENT, FR3)
    blind.on_inputs(0.0, ControllerInputs(upper=True), False)
    assert blind.mapping.homing and blind.home_step() is None


# -- IK with joint-limit avoidance -------------------------------------------------------------


def ik(target: np.ndarray, seed: np.ndarray, limit_gain: float, **kwargs: float
       ) -> tuple[np.ndarray, float, float]:
    """The teleop IK settings (rest: the seed, as TeleopCore does at the engage)."""
    cfg = SHIPPED
    result = solve_ik(FR3, target, seed, rest_rad=seed, max_iterations=kwargs.get('it', 200),
                      tolerance_m=1e-6, tolerance_rad=1e-5, damping=cfg.ik_damping,
                      limit_margin_rad=cfg.ik_limit_margin_rad, rest_gain=cfg.ik_rest_gain,
                      limit_gain=limit_gain)
    return result.q, result.position_error_m, result.rotation_error_rad


@pytest.mark.parametrize(('joint', 'value'), [(0, 2.6), (2, -2.75), (4, 2.7), (6, 2.95)])
def test_limit_gain_keeps_a_joint_out_of_the_limit_zone(joint: int, value: float) -> None:
    """A posture with one joint inside the zone; a 5 cm move. The TCP result is the same."""
    seed = np.array(FR3.home_rad)
    seed[joint] = value
    zone = 0.3  # solve_ik's default limit_zone_rad
    assert joint_margin(FR3, seed)[joint] < zone
    target = tcp_pose(FR3, seed)
    target[:3, 3] += [0.05, 0.0, -0.02]
    q_plain, err_plain, rot_plain = ik(target, seed, 0.0)
    q_avoid, err_avoid, rot_avoid = ik(target, seed, SHIPPED.ik_limit_gain)
    for err, rot in ((err_plain, rot_plain), (err_avoid, rot_avoid)):
        assert err < 1e-5 and rot < 1e-4
    plain, avoid = joint_margin(FR3, q_plain)[joint], joint_margin(FR3, q_avoid)[joint]
    assert avoid > plain + 0.05
    assert joint_margin(FR3, q_avoid).min() >= joint_margin(FR3, q_plain).min()


def test_limit_gain_pushes_out_over_a_teleop_stroke() -> None:
    """50 warm-started 1 mm steps (how TeleopCore calls it): the joint ends farther out."""
    seed = np.array(FR3.home_rad)
    seed[6] = 2.95
    start = tcp_pose(FR3, seed)
    ends = {}
    for gain in (0.0, SHIPPED.ik_limit_gain):
        q = seed.copy()
        for k in range(1, 51):
            target = start.copy()
            target[0, 3] += 0.001 * k
            q, err, _ = ik(target, q, gain, it=SHIPPED.ik_iterations)
            assert err < 1e-4
        ends[gain] = joint_margin(FR3, q)[6]
    assert ends[SHIPPED.ik_limit_gain] > ends[0.0] + 0.05


@settings(max_examples=50, deadline=None)
@given(offset=st.tuples(*[st.floats(-0.15, 0.15)] * 3))
def test_limit_gain_changes_nothing_away_from_the_limits(
        offset: tuple[float, float, float]) -> None:
    home = np.array(FR3.home_rad)
    target = tcp_pose(FR3, home)
    target[:3, 3] += offset
    q_plain, err_plain, _ = ik(target, home, 0.0, it=SHIPPED.ik_iterations)
    q_avoid, err_avoid, _ = ik(target, home, SHIPPED.ik_limit_gain, it=SHIPPED.ik_iterations)
    if np.all(joint_margin(FR3, q_plain) > 0.3):  # never entered a zone
        np.testing.assert_allclose(q_avoid, q_plain, atol=1e-6)
    assert abs(err_avoid - err_plain) < 1e-3


@settings(max_examples=50, deadline=None)
@given(seed_fraction=st.lists(st.floats(0.0, 1.0), min_size=7, max_size=7),
       offset=st.tuples(*[st.floats(-0.5, 0.5)] * 3))
def test_ik_result_is_always_inside_the_margin(seed_fraction: list[float],
                                              offset: tuple[float, float, float]) -> None:
    seed = FR3.lower_rad + np.array(seed_fraction) * (FR3.upper_rad - FR3.lower_rad)
    target = tcp_pose(FR3, seed)
    target[:3, 3] += offset
    margin = SHIPPED.ik_limit_margin_rad
    q, _, _ = ik(target, seed, SHIPPED.ik_limit_gain, it=SHIPPED.ik_iterations)
    assert np.all(q >= FR3.lower_rad + margin - 1e-12)
    assert np.all(q <= FR3.upper_rad - margin + 1e-12)
