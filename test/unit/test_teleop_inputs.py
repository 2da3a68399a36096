"""Controller readings (visuomotor.teleop.inputs): what is refused never reaches the arm.

A pose from an untracked controller (NaN), a malformed quaternion, a pose in another frame
or a stale / repeated stamp must be refused with the field named, because any of them
would move the arm along a wrong path; a slightly denormalised quaternion (what float32
publishers produce) is accepted as a proper rotation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visuomotor.robots.transforms import quat_from_matrix, rotation_from_vector
from visuomotor.teleop.inputs import (
    QUATERNION_TOLERANCE,
    TeleopInputError,
    inputs_from_fields,
    pose_from_fields,
)

FRAME = 'quest_world'
UNIT_XYZW = (0.0, 0.0, 0.0, 1.0)
NAN, INF = float('nan'), float('inf')


def xyzw_of(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """ROS order (x, y, z, w) of a rotation matrix."""
    w, x, y, z = quat_from_matrix(rotation)
    return float(x), float(y), float(z), float(w)


def refused(**overrides: object) -> TeleopInputError:
    """The error of pose_from_fields with `overrides` on a valid pose."""
    fields: dict[str, object] = {
        'stamp_s': 10.0, 'frame_id': FRAME, 'position': (0.1, 1.0, -0.3),
        'quaternion_xyzw': UNIT_XYZW, 'expected_frame': FRAME, 'previous_stamp_s': 9.98}
    fields.update(overrides)
    with pytest.raises(TeleopInputError) as caught:
        pose_from_fields(**fields)  # type: ignore[arg-type]
    return caught.value


def test_a_valid_pose_is_kept_as_given() -> None:
    rotation = rotation_from_vector([0.2, -0.4, 0.9])
    pose = pose_from_fields(3.5, FRAME, (0.1, 1.2, -0.4), xyzw_of(rotation), FRAME, 3.48)
    assert pose.stamp_s == 3.5 and pose.frame_id == FRAME
    np.testing.assert_allclose(pose.position, [0.1, 1.2, -0.4])
    np.testing.assert_allclose(pose.rotation, rotation, atol=1e-12)


@pytest.mark.parametrize('position', [(NAN, 1.0, 0.0), (0.0, INF, 0.0), (0.0, 0.0, -INF)])
def test_non_finite_position_is_refused(position: tuple[float, float, float]) -> None:
    error = refused(position=position)
    assert error.field == 'pose.position'
    assert 'not finite' in str(error)


@pytest.mark.parametrize('quaternion', [(NAN, 0.0, 0.0, 1.0), (0.0, 0.0, 0.0, INF)])
def test_non_finite_orientation_is_refused(quaternion: tuple[float, ...]) -> None:
    assert refused(quaternion_xyzw=quaternion).field == 'pose.orientation'


def test_position_is_blamed_when_both_are_non_finite() -> None:
    assert refused(position=(NAN, 0, 0), quaternion_xyzw=(NAN, 0, 0, 1)).field == \
        'pose.position'


@pytest.mark.parametrize('norm', [1.2, 0.8, 0.0, 1.0 + 2 * QUATERNION_TOLERANCE])
def test_quaternion_far_from_unit_is_refused(norm: float) -> None:
    error = refused(quaternion_xyzw=(0.0, 0.0, 0.6 * norm, 0.8 * norm))
    assert error.field == 'pose.orientation'
    assert 'unit quaternion' in str(error)
    assert f'{norm:.3f}' in str(error)


@settings(max_examples=60, deadline=None)
@given(axis_angle=st.tuples(*[st.floats(-3.0, 3.0)] * 3),
       norm=st.floats(1.0 - 0.9 * QUATERNION_TOLERANCE, 1.0 + 0.9 * QUATERNION_TOLERANCE))
def test_nearly_unit_quaternion_is_normalised(axis_angle: tuple[float, float, float],
                                              norm: float) -> None:
    """E.g. |q| = 1.02 from a float32 publisher: accepted, and the rotation is proper."""
    rotation = rotation_from_vector(axis_angle)
    quaternion = tuple(norm * v for v in xyzw_of(rotation))
    pose = pose_from_fields(1.0, FRAME, (0.0, 0.0, 0.0), quaternion, FRAME, None)
    np.testing.assert_allclose(pose.rotation @ pose.rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(pose.rotation) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(pose.rotation, rotation, atol=1e-9)


def test_norm_1_02_is_accepted() -> None:
    pose = pose_from_fields(1.0, FRAME, (0, 0, 0), (0.0, 0.0, 0.6 * 1.02, 0.8 * 1.02),
                            FRAME, None)
    np.testing.assert_allclose(pose.rotation @ pose.rotation.T, np.eye(3), atol=1e-12)
    # a rotation of 2 atan2(0.6, 0.8) about z, whatever the scale of the quaternion
    angle = 2.0 * math.atan2(0.6, 0.8)
    np.testing.assert_allclose(pose.rotation[:2, 0], [math.cos(angle), math.sin(angle)],
                               atol=1e-12)


def test_pose_in_another_frame_is_refused_naming_the_expected_one() -> None:
    error = refused(frame_id='world')
    assert error.field == 'header.frame_id'
    assert "'world'" in str(error) and f"'{FRAME}'" in str(error)


def test_empty_expected_frame_accepts_only_empty_frame() -> None:
    pose_from_fields(1.0, '', (0, 0, 0), UNIT_XYZW, '', None)
    assert refused(frame_id='', expected_frame=FRAME).field == 'header.frame_id'
    assert refused(frame_id=FRAME, expected_frame='').field == 'header.frame_id'


@pytest.mark.parametrize('previous', [10.0, 10.000001, 25.0])
def test_stamp_not_newer_than_the_previous_is_refused(previous: float) -> None:
    error = refused(stamp_s=10.0, previous_stamp_s=previous)
    assert error.field == 'header.stamp'
    assert 'not newer' in str(error)


def test_non_finite_stamp_is_refused() -> None:
    assert refused(stamp_s=NAN, previous_stamp_s=None).field == 'header.stamp'


def test_first_pose_and_newer_stamps_pass() -> None:
    pose_from_fields(0.0, FRAME, (0, 0, 0), UNIT_XYZW, FRAME, None)
    pose_from_fields(10.000001, FRAME, (0, 0, 0), UNIT_XYZW, FRAME, 10.0)


# -- inputs ------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(grip=st.floats(-10.0, 10.0), trigger=st.floats(-10.0, 10.0),
       lower=st.booleans(), upper=st.booleans())
def test_inputs_are_clipped_to_the_unit_range(grip: float, trigger: float, lower: bool,
                                              upper: bool) -> None:
    inputs = inputs_from_fields(grip, trigger, lower, upper)
    assert 0.0 <= inputs.grip <= 1.0 and 0.0 <= inputs.trigger <= 1.0
    if 0.0 <= grip <= 1.0:
        assert inputs.grip == grip
    else:
        assert inputs.grip == (0.0 if grip < 0 else 1.0)
    if 0.0 <= trigger <= 1.0:
        assert inputs.trigger == trigger
    assert (inputs.lower, inputs.upper) == (lower, upper)


def test_inputs_buttons_become_booleans() -> None:
    inputs = inputs_from_fields(0.5, 0.5, 1, 0)  # type: ignore[arg-type]
    assert inputs.lower is True and inputs.upper is False


@pytest.mark.parametrize(('grip', 'trigger', 'field'), [
    (NAN, 0.0, 'inputs.grip'), (0.0, NAN, 'inputs.trigger'), (INF, 0.0, 'inputs.grip'),
    (0.0, -INF, 'inputs.trigger'),
])
def test_non_finite_inputs_are_refused(grip: float, trigger: float, field: str) -> None:
    with pytest.raises(TeleopInputError) as caught:
        inputs_from_fields(grip, trigger, False, False)
    assert caught.value.field == field
