"""The clutch mapping (visuomotor.teleop.mapping): controller motion -> end-effector targets.

What a teleoperator relies on: nothing moves unless the grip is freshly pressed; while it is
held the end-effector moves by the (scaled) hand motion rotated into the robot's frame;
re-clutching never makes the arm jump to where the hand went meanwhile; a lost stream or a
tracking glitch drops the clutch; the buttons fire once per press; and the yaw alignment
stroke corrects the headset rotation so a forward stroke drives the robot forward.

Exact numbers are checked with the filter made transparent (a huge cut-off); the lag-sensitive
behaviours (alignment, jitter) run with the shipped filter.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visuomotor.robots.transforms import (
    from_xyz_rpy,
    rot_x,
    rot_z,
    rotation_from_vector,
    rotation_vector,
)
from visuomotor.teleop.config import TeleopConfig, load_teleop_config
from visuomotor.teleop.inputs import ControllerInputs, ControllerPose
from visuomotor.teleop.mapping import (
    ALIGNED,
    DISCARD,
    HOME,
    MIN_STROKE_M,
    TOGGLE_EPISODE,
    ClutchMapping,
    yaw_from_stroke,
)

FRAME = 'quest_world'
DT = 0.02  # 50 Hz, as the Quest sources publish
HAND0 = np.array([0.25, 1.1, -0.35])
EE0 = from_xyz_rpy((0.45, 0.05, 0.4), (math.pi, 0.1, -0.3))

SHIPPED = load_teleop_config('sim_quest')


def transparent(config: TeleopConfig = SHIPPED, **changes: object) -> TeleopConfig:
    """`config` with the jitter filter made a pass-through (cut-off ~1e12 Hz)."""
    return dataclasses.replace(config, filter_min_cutoff_hz=1e12, **changes)  # type: ignore


class Operator:
    """Drives a ClutchMapping like the node: inputs then pose, both each 20 ms tick."""

    def __init__(self, config: TeleopConfig, ee: np.ndarray = EE0) -> None:
        self.mapping = ClutchMapping(config)
        self.config = config
        self.t = 0.0
        self.ee = np.array(ee)
        self.recording = False
        self.events: list[str] = []
        self.hand = HAND0.copy()
        self.hand_rotation = np.eye(3)

    def send_inputs(self, grip: float = 0.0, trigger: float = 0.0, lower: bool = False,
                    upper: bool = False) -> list[str]:
        events = self.mapping.on_inputs(self.t, ControllerInputs(grip, trigger, lower, upper),
                                        self.recording)
        self.events += events
        return events

    def send_pose(self, ee: np.ndarray | None = None) -> np.ndarray | None:
        pose = ControllerPose(self.t, FRAME, self.hand.copy(), self.hand_rotation.copy())
        return self.mapping.on_pose(self.t, pose, self.ee if ee is None else ee)

    def tick(self, grip: float = 0.0, move: Sequence[float] = (0.0, 0.0, 0.0),
             turn: Sequence[float] = (0.0, 0.0, 0.0), **buttons: bool) -> np.ndarray | None:
        """One tick: the hand moves by `move` / turns by `turn` (headset frame)."""
        self.t += DT
        self.hand = self.hand + np.asarray(move, dtype=np.float64)
        self.hand_rotation = rotation_from_vector(turn) @ self.hand_rotation
        self.send_inputs(grip, **buttons)
        return self.send_pose()

    def engage(self) -> np.ndarray:
        """Release then press the grip (a fresh press); returns the first target."""
        self.tick(grip=0.0)
        target = self.tick(grip=1.0)
        assert target is not None, 'the clutch did not engage on a fresh press'
        return target

    def stroke(self, total: Sequence[float], seconds: float, grip: float = 1.0,
               settle_s: float = 0.4) -> list[np.ndarray | None]:
        """Move the hand by `total` at constant speed, then hold still `settle_s`."""
        steps = max(1, round(seconds / DT))
        move = np.asarray(total, dtype=np.float64) / steps
        out = [self.tick(grip=grip, move=move) for _ in range(steps)]
        out += [self.tick(grip=grip) for _ in range(round(settle_s / DT))]
        return out


def rotation_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two rotations."""
    return float(np.linalg.norm(rotation_vector(a[:3, :3].T @ b[:3, :3])))


# -- engaging ----------------------------------------------------------------------------------


def test_nothing_is_produced_before_the_grip_is_pressed() -> None:
    op = Operator(transparent())
    for _ in range(30):
        assert op.tick(grip=0.0, move=(0.003, -0.002, 0.001), turn=(0.0, 0.02, 0.0)) is None
    assert not op.mapping.engaged
    assert op.tick(grip=1.0) is not None


def test_grip_held_when_the_stream_starts_needs_a_fresh_press() -> None:
    op = Operator(transparent())
    for _ in range(20):
        assert op.tick(grip=1.0, move=(0.002, 0.0, 0.0)) is None
    assert not op.mapping.engaged
    assert op.tick(grip=0.0) is None
    assert op.tick(grip=1.0) is not None


def test_grip_between_the_thresholds_keeps_the_clutch_as_it_was() -> None:
    cfg = transparent()
    between = (cfg.clutch_engage + cfg.clutch_release) / 2.0
    op = Operator(cfg)
    op.tick(grip=0.0)
    assert op.tick(grip=between) is None  # not pressed far enough to engage
    assert op.tick(grip=cfg.clutch_engage) is not None
    assert op.tick(grip=between) is not None  # not released far enough to release
    assert op.tick(grip=cfg.clutch_release) is None


def test_first_target_is_the_end_effector_pose() -> None:
    op = Operator(SHIPPED)
    op.tick(grip=0.0, move=(0.01, 0.0, 0.0))
    target = op.tick(grip=1.0, move=(0.01, 0.0, 0.0), turn=(0.1, 0.2, 0.0))
    assert target is not None
    np.testing.assert_allclose(target, EE0, atol=1e-9)


@pytest.mark.parametrize('scale', [0.5, 1.0, 2.0])
def test_translation_is_scaled_and_rotated_into_the_base(scale: float) -> None:
    cfg = transparent(translation_scale=scale)
    op = Operator(cfg)
    op.engage()
    c0 = op.hand.copy()
    rng = np.random.default_rng(int(scale * 10))
    for _ in range(40):
        target = op.tick(grip=1.0, move=rng.uniform(-0.01, 0.01, 3))
        assert target is not None
        expected = EE0[:3, 3] + scale * cfg.headset_to_base @ (op.hand - c0)
        np.testing.assert_allclose(target[:3, 3], expected, atol=1e-9)
        # pure translation of the hand: the orientation is held
        np.testing.assert_allclose(target[:3, :3], EE0[:3, :3], atol=1e-9)


def test_forward_and_up_strokes_move_the_robot_forward_and_up() -> None:
    """sim_quest: headset -z (forward) is base +x, +y (up) is base +z; scale 2 doubles it."""
    op = Operator(transparent(translation_scale=2.0))
    op.engage()
    for _ in range(10):
        target = op.tick(grip=1.0, move=(0.0, 0.0, -0.005))
    assert target is not None
    np.testing.assert_allclose(target[:3, 3] - EE0[:3, 3], [0.1, 0.0, 0.0], atol=1e-9)
    for _ in range(10):
        target = op.tick(grip=1.0, move=(0.0, 0.003, 0.0))
    assert target is not None
    np.testing.assert_allclose(target[:3, 3] - EE0[:3, 3], [0.1, 0.0, 0.06], atol=1e-9)


@pytest.mark.parametrize('scale', [0.0, 0.5, 1.0])
def test_rotation_is_scaled_about_the_base_axes(scale: float) -> None:
    """A twist about the headset's up (+y) turns the tool about base +z by scale * angle."""
    op = Operator(transparent(rotation_scale=scale))
    op.engage()
    angle = 0.6
    for _ in range(20):
        target = op.tick(grip=1.0, turn=(0.0, angle / 20, 0.0))
    assert target is not None
    expected = rot_z(scale * angle)[:3, :3] @ EE0[:3, :3]
    np.testing.assert_allclose(target[:3, :3], expected, atol=1e-9)
    np.testing.assert_allclose(target[:3, 3], EE0[:3, 3], atol=1e-9)


def test_rotation_about_the_headset_forward_axis_rolls_about_base_x() -> None:
    op = Operator(transparent())
    op.engage()
    for _ in range(10):
        target = op.tick(grip=1.0, turn=(0.0, 0.0, -0.03))  # about headset -z = base +x
    assert target is not None
    np.testing.assert_allclose(target[:3, :3], rot_x(0.3)[:3, :3] @ EE0[:3, :3], atol=1e-9)


def test_rotation_scale_zero_keeps_the_ee_orientation_whatever_the_hand_does() -> None:
    op = Operator(transparent(rotation_scale=0.0))
    op.engage()
    rng = np.random.default_rng(3)
    for _ in range(30):
        target = op.tick(grip=1.0, move=rng.uniform(-0.01, 0.01, 3),
                         turn=rng.uniform(-0.1, 0.1, 3))
        assert target is not None
        np.testing.assert_allclose(target[:3, :3], EE0[:3, :3], atol=1e-12)


# -- re-clutching (property) ---------------------------------------------------------------------

vec = st.tuples(*[st.floats(-0.015, 0.015)] * 3)
small_turn = st.tuples(*[st.floats(-0.03, 0.03)] * 3)
step = st.tuples(st.booleans(), vec, small_turn, st.one_of(st.none(), vec))


@settings(max_examples=80, deadline=None)
@given(steps=st.lists(step, min_size=2, max_size=40),
       scale=st.sampled_from([0.5, 1.0, 2.0]))
def test_reclutching_never_jumps_and_released_motion_is_ignored(
        steps: list[tuple[bool, tuple[float, ...], tuple[float, ...],
                          tuple[float, ...] | None]],
        scale: float) -> None:
    """For any hand motion with grip releases / presses, a perfect arm following the targets.

    - right after every (re-)engage the target equals the ee pose passed at that moment, even
      if the robot was moved (`drift`) while released;
    - while engaged, the target is the anchor ee moved by scale * R_hb * (hand motion since
      the engage) and turned by R_hb * (hand turn since the engage) * R_hb^T;
    - hand motion while released has no effect: the final ee position is the start plus the
      drift plus scale * R_hb * (sum of the hand moves made while engaged).
    """
    cfg = transparent(translation_scale=scale)
    r_hb = cfg.headset_to_base
    op = Operator(cfg)
    op.tick(grip=0.0)  # the stream starts with the grip released
    engaged = False
    anchor_hand, anchor_rot, anchor_ee = HAND0, np.eye(3), EE0
    engaged_motion, drift_total = np.zeros(3), np.zeros(3)
    for grip, move, turn, drift in steps:
        if not grip and drift is not None:  # the robot is moved while unclutched
            op.ee = op.ee.copy()
            op.ee[:3, 3] += drift
            drift_total += drift
        ee_before = op.ee.copy()
        target = op.tick(grip=1.0 if grip else 0.0, move=move, turn=turn)
        if not grip:
            assert target is None
            engaged = False
            continue
        assert target is not None
        if not engaged:
            np.testing.assert_allclose(target, ee_before, atol=1e-9)
            anchor_hand, anchor_rot, anchor_ee = op.hand.copy(), op.hand_rotation, ee_before
            engaged = True
        else:
            engaged_motion += move
            expected = anchor_ee[:3, 3] + scale * r_hb @ (op.hand - anchor_hand)
            np.testing.assert_allclose(target[:3, 3], expected, atol=1e-9)
            turn_base = r_hb @ op.hand_rotation @ anchor_rot.T @ r_hb.T
            np.testing.assert_allclose(target[:3, :3], turn_base @ anchor_ee[:3, :3],
                                       atol=1e-7)
        op.ee = target  # a perfect arm reaches every target
    expected_final = EE0[:3, 3] + drift_total + scale * r_hb @ engaged_motion
    np.testing.assert_allclose(op.ee[:3, 3], expected_final, atol=1e-8)


# -- releasing ------------------------------------------------------------------------------------


def test_grip_release_stops_the_targets() -> None:
    op = Operator(transparent())
    op.engage()
    assert op.tick(grip=1.0, move=(0.0, 0.0, -0.01)) is not None
    assert op.tick(grip=0.0, move=(0.0, 0.0, -0.01)) is None
    assert not op.mapping.engaged
    for _ in range(10):
        assert op.tick(grip=0.0, move=(0.0, 0.0, -0.01)) is None


def test_silent_pose_stream_releases_and_needs_a_fresh_press() -> None:
    cfg = transparent()
    op = Operator(cfg)
    op.engage()
    silent = cfg.input_timeout_s + 0.05
    ticks = math.ceil(silent / DT)
    for _ in range(ticks):  # inputs keep coming with the grip held, no pose
        op.t += DT
        op.send_inputs(grip=1.0)
    reason = op.mapping.check_streams(op.t)
    assert 'pose' in reason and 'silent' in reason
    assert not op.mapping.engaged
    assert op.mapping.last_release == reason
    # the pose comes back with the grip still held: nothing until released and pressed
    for _ in range(5):
        assert op.tick(grip=1.0, move=(0.0, 0.0, -0.005)) is None
    assert op.engage() is not None


def test_silent_input_stream_releases_on_the_next_pose() -> None:
    cfg = transparent()
    op = Operator(cfg)
    op.engage()
    results = []
    for _ in range(math.ceil((cfg.input_timeout_s + 0.05) / DT)):  # poses only, no inputs
        op.t += DT
        op.hand = op.hand + [0.0, 0.0, -0.002]
        results.append(op.send_pose())
    assert results[0] is not None  # within the timeout the clutch holds
    assert results[-1] is None
    assert not op.mapping.engaged
    assert 'input' in op.mapping.last_release and 'silent' in op.mapping.last_release
    assert op.tick(grip=1.0) is None  # still held when the inputs come back
    assert op.engage() is not None


def test_a_short_gap_keeps_the_clutch() -> None:
    cfg = transparent()
    op = Operator(cfg)
    op.engage()
    op.t += cfg.input_timeout_s * 0.8
    assert op.mapping.check_streams(op.t) == ''
    assert op.mapping.engaged
    assert op.tick(grip=1.0) is not None


def test_check_streams_is_quiet_while_unclutched() -> None:
    op = Operator(transparent())
    op.tick(grip=0.0)
    assert op.mapping.check_streams(op.t + 10.0) == ''


@pytest.mark.parametrize('stream', ['input', 'pose'])
def test_grip_held_when_a_stream_restarts_after_a_gap_needs_a_fresh_press(
        stream: str) -> None:
    cfg = transparent()
    op = Operator(cfg)
    op.engage()
    op.tick(grip=0.0)  # released normally: ready for the next press
    for _ in range(math.ceil(2 * cfg.input_timeout_s / DT)):
        op.t += DT
        if stream == 'input':  # inputs lost, the pose keeps coming
            assert op.send_pose() is None
        else:  # controller untracked; the operator squeezes the grip meanwhile
            op.send_inputs(grip=1.0)
        op.mapping.check_streams(op.t)
    assert op.tick(grip=1.0) is None


@pytest.mark.parametrize(('fraction', 'releases'), [(0.8, False), (1.2, True)])
def test_a_tracking_jump_releases(fraction: float, releases: bool) -> None:
    cfg = transparent()
    op = Operator(cfg)
    op.engage()
    jump = fraction * cfg.max_jump_m
    target = op.tick(grip=1.0, move=(jump, 0.0, 0.0))
    assert (target is None) == releases
    assert op.mapping.engaged != releases
    if releases:
        assert 'jump' in op.mapping.last_release
        assert op.tick(grip=1.0) is None  # a fresh press is needed
        assert op.engage() is not None


def test_a_glitch_twice_the_jump_limit_releases_with_the_shipped_filter() -> None:
    op = Operator(SHIPPED)
    op.engage()
    for _ in range(20):
        op.tick(grip=1.0)
    op.tick(grip=1.0, move=(2.0 * SHIPPED.max_jump_m, 0.0, 0.0))
    for _ in range(10):  # the hand seems to stay where the glitch put it
        op.tick(grip=1.0)
    assert not op.mapping.engaged
    assert 'jump' in op.mapping.last_release


# -- buttons ----------------------------------------------------------------------------------


def test_lower_button_toggles_once_per_press() -> None:
    op = Operator(transparent())
    events = [op.send_inputs(lower=True) for _ in range(10)]
    assert events[0] == [TOGGLE_EPISODE]
    assert all(e == [] for e in events[1:])
    assert op.send_inputs(lower=False) == []
    assert op.send_inputs(lower=True) == [TOGGLE_EPISODE]


def test_upper_button_while_recording_discards() -> None:
    op = Operator(transparent())
    op.recording = True
    assert op.send_inputs(upper=True) == [DISCARD]
    assert not op.mapping.homing
    assert op.send_inputs(upper=True) == []


def test_upper_button_while_recording_and_clutched_discards() -> None:
    op = Operator(transparent())
    op.engage()
    op.recording = True
    op.t += DT
    assert op.send_inputs(grip=1.0, upper=True) == [DISCARD]


def test_upper_button_held_while_idle_homes_until_released() -> None:
    op = Operator(transparent())
    assert op.tick(upper=True) is None
    assert op.events == [HOME]
    assert op.mapping.homing
    for _ in range(10):
        op.tick(upper=True)
        assert op.mapping.homing
    assert op.events == [HOME]
    op.tick(upper=False)
    assert not op.mapping.homing


def test_grip_does_not_engage_while_homing() -> None:
    op = Operator(transparent())
    op.tick(upper=True)
    assert op.mapping.homing
    assert op.tick(grip=1.0, upper=True) is None
    assert not op.mapping.engaged
    # home released with the grip still held: no engage until a fresh press, which then
    # anchors where the arm is now (no jump)
    op.ee = EE0 @ rot_z(0.2)
    assert op.tick(grip=1.0) is None
    target = op.engage()
    np.testing.assert_allclose(target, op.ee, atol=1e-9)


def test_upper_button_while_clutched_does_not_home() -> None:
    op = Operator(transparent())
    op.engage()
    assert op.tick(grip=1.0, upper=True) is not None
    assert not op.mapping.homing
    assert HOME not in op.events
    # released clutch, upper still held: no home either (it needs a new press)
    op.tick(grip=0.0, upper=True)
    assert not op.mapping.homing


def test_homing_stops_when_the_input_stream_goes_silent() -> None:
    cfg = transparent()
    op = Operator(cfg)
    op.tick(upper=True)
    assert op.mapping.homing
    reason = op.mapping.check_streams(op.t + cfg.input_timeout_s + 0.01)
    assert 'home' in reason
    assert not op.mapping.homing


def test_trigger_closes_and_opens_the_gripper_with_hysteresis() -> None:
    cfg = transparent()
    op = Operator(cfg)
    mid = (cfg.gripper_close + cfg.gripper_open) / 2.0
    sequence = [(mid, False), (cfg.gripper_close, True), (mid, True),
                (cfg.gripper_open + 1e-6, True), (cfg.gripper_open, False), (mid, False),
                (1.0, True), (0.0, False)]
    for trigger, closed in sequence:
        op.send_inputs(trigger=trigger)
        assert op.mapping.gripper_closed == closed, trigger


# -- alignment --------------------------------------------------------------------------------


def headset_direction(r_hb: np.ndarray, base_yaw_rad: float) -> np.ndarray:
    """The headset-frame direction that `r_hb` maps to a horizontal base direction."""
    return r_hb.T @ np.array([math.cos(base_yaw_rad), math.sin(base_yaw_rad), 0.0])


@pytest.mark.parametrize('error_deg', [10.0, -10.0])
def test_alignment_stroke_corrects_the_headset_yaw(error_deg: float) -> None:
    """A 20 cm stroke the operator means as 'forward' that maps 10 deg off +x."""
    op = Operator(SHIPPED)
    direction = headset_direction(SHIPPED.headset_to_base, math.radians(error_deg))
    op.tick(grip=0.0)
    op.mapping.start_alignment()
    assert op.mapping.aligning
    targets = op.stroke(0.2 * direction, seconds=2.0)
    assert all(t is None for t in targets)  # the arm does not move while aligning
    assert op.tick(grip=0.0) is None
    assert op.events == [ALIGNED]
    assert not op.mapping.aligning
    assert op.mapping.yaw_correction_rad == pytest.approx(math.radians(error_deg), abs=1e-3)
    corrected = op.mapping.headset_to_base
    np.testing.assert_allclose(corrected @ corrected.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(corrected @ direction, [1.0, 0.0, 0.0], atol=1e-9)
    # up stays up: only the yaw is corrected
    np.testing.assert_allclose(corrected[2], SHIPPED.headset_to_base[2], atol=1e-12)

    # after the alignment, the same stroke drives the robot along +x
    start = op.engage()
    targets = op.stroke(0.2 * direction, seconds=2.0)
    end = targets[-1]
    assert end is not None
    moved = end[:3, 3] - start[:3, 3]
    assert np.linalg.norm(moved) == pytest.approx(0.2, abs=0.005)
    assert math.degrees(math.atan2(moved[1], moved[0])) == pytest.approx(0.0, abs=0.5)
    assert abs(moved[2]) < 1e-3


def test_vertical_part_of_the_stroke_does_not_change_the_yaw() -> None:
    op = Operator(SHIPPED)
    error = math.radians(10.0)
    up = SHIPPED.headset_to_base.T @ np.array([0.0, 0.0, 1.0])
    op.tick(grip=0.0)
    op.mapping.start_alignment()
    op.stroke(0.2 * headset_direction(SHIPPED.headset_to_base, error) + 0.15 * up, 2.0)
    op.tick(grip=0.0)
    assert op.events == [ALIGNED]
    assert op.mapping.yaw_correction_rad == pytest.approx(error, abs=1e-3)


@pytest.mark.parametrize('horizontal_m', [0.05, 0.9 * MIN_STROKE_M])
def test_a_short_stroke_changes_nothing(horizontal_m: float) -> None:
    op = Operator(SHIPPED)
    up = SHIPPED.headset_to_base.T @ np.array([0.0, 0.0, 1.0])
    op.tick(grip=0.0)
    op.mapping.start_alignment()
    # long, but mostly vertical: the horizontal part decides
    total = horizontal_m * headset_direction(SHIPPED.headset_to_base, 0.5) + 0.3 * up
    assert all(t is None for t in op.stroke(total, 2.0))
    op.tick(grip=0.0)
    assert ALIGNED not in op.events
    assert op.mapping.yaw_correction_rad == 0.0
    np.testing.assert_array_equal(op.mapping.headset_to_base, SHIPPED.headset_to_base)


def test_alignment_waits_for_the_grip() -> None:
    op = Operator(SHIPPED)
    op.tick(grip=0.0)
    op.mapping.start_alignment()
    # hand moves without the grip: not the stroke
    op.stroke(0.3 * headset_direction(SHIPPED.headset_to_base, 0.7), 2.0, grip=0.0)
    assert op.mapping.aligning and op.events == []
    op.stroke(0.2 * headset_direction(SHIPPED.headset_to_base, -0.1), 2.0)
    op.tick(grip=0.0)
    assert op.events == [ALIGNED]
    assert op.mapping.yaw_correction_rad == pytest.approx(-0.1, abs=1e-3)


def test_start_alignment_releases_the_clutch() -> None:
    op = Operator(transparent())
    op.engage()
    op.mapping.start_alignment()
    assert not op.mapping.engaged
    assert op.tick(grip=1.0) is None


yaw = st.floats(-math.pi + 0.01, math.pi - 0.01)


@settings(max_examples=80, deadline=None)
@given(stroke_yaw=yaw, vertical=st.floats(-0.3, 0.3), length=st.floats(0.1, 1.0),
       roll=st.floats(-math.pi, math.pi), pitch=st.floats(-1.5, 1.5), mount_yaw=yaw)
def test_yaw_from_stroke_turns_the_stroke_onto_base_x(stroke_yaw: float, vertical: float,
                                                      length: float, roll: float,
                                                      pitch: float, mount_yaw: float) -> None:
    r_hb = from_xyz_rpy((0, 0, 0), (roll, pitch, mount_yaw))[:3, :3]
    in_base = np.array([length * math.cos(stroke_yaw), length * math.sin(stroke_yaw),
                        vertical])
    stroke = r_hb.T @ in_base
    error, corrected = yaw_from_stroke(stroke, r_hb)
    assert error == pytest.approx(stroke_yaw, abs=1e-9)
    np.testing.assert_allclose(corrected @ corrected.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(corrected) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(corrected @ stroke, [length, 0.0, vertical], atol=1e-9)
    # a pure yaw about the base z: headset up still maps to the same base direction
    np.testing.assert_allclose(corrected[2], r_hb[2], atol=1e-12)


def test_a_short_alignment_stroke_says_so() -> None:
    from visuomotor.teleop.mapping import ALIGN_FAILED

    op = Operator(SHIPPED)
    op.tick(grip=0.0)
    op.mapping.start_alignment()
    before = op.mapping.headset_to_base.copy()
    op.stroke((0.0, 0.0, -0.05), 0.5)  # 5 cm: too short to measure a direction
    assert op.tick(grip=0.0) is None
    assert ALIGN_FAILED in op.events and not op.mapping.aligning
    np.testing.assert_array_equal(op.mapping.headset_to_base, before)
