"""Controller readings and their checks (pure).

A reading that fails a check is refused with an error that names the field and the fix; the
teleop node logs it and sends nothing for it (no motion), and a stream that stays bad for
longer than the config's `input_timeout_s` releases the clutch like a lost stream.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from visuomotor.errors import FieldError
from visuomotor.robots.transforms import Matrix, matrix_from_quat

QUATERNION_TOLERANCE = 0.05  # |q| may differ from 1 by this much (it is then normalised)


class TeleopInputError(FieldError):
    """A controller message cannot be used (named field, what was wrong, what to do)."""


@dataclass(frozen=True)
class ControllerPose:
    """One tracked controller pose.

    Attributes:
        stamp_s: the message's header stamp (seconds).
        frame_id: the frame it is expressed in.
        position: metres, in that frame.
        rotation: 3x3 orientation in that frame.
    """

    stamp_s: float
    frame_id: str
    position: Matrix
    rotation: Matrix


@dataclass(frozen=True)
class ControllerInputs:
    """The controller's inputs, whatever the source (see visuomotor.teleop.config).

    Attributes:
        grip: grip (middle finger) 0..1: the clutch.
        trigger: index trigger 0..1: the gripper.
        lower: A / X button.
        upper: B / Y button.
    """

    grip: float = 0.0
    trigger: float = 0.0
    lower: bool = False
    upper: bool = False


def pose_from_fields(stamp_s: float, frame_id: str, position: Sequence[float],
                     quaternion_xyzw: Sequence[float], expected_frame: str,
                     previous_stamp_s: float | None) -> ControllerPose:
    """A checked ControllerPose from a PoseStamped's fields.

    Raises:
        TeleopInputError: non-finite values, a quaternion far from unit length, a frame other
            than `expected_frame`, or a stamp not newer than `previous_stamp_s`.
    """
    values = [*position, *quaternion_xyzw]
    if not all(math.isfinite(v) for v in values):
        field = 'pose.position' if not all(math.isfinite(v) for v in position) \
            else 'pose.orientation'
        raise TeleopInputError(field, f'is not finite ({[round(v, 4) for v in values]}); '
                               'the controller is probably not tracked: bring it into view '
                               'of the headset')
    x, y, z, w = quaternion_xyzw
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if abs(norm - 1.0) > QUATERNION_TOLERANCE:
        raise TeleopInputError('pose.orientation', f'is not a unit quaternion (norm '
                               f'{norm:.3f}); check the publisher fills x, y, z, w')
    if frame_id != expected_frame:
        raise TeleopInputError('header.frame_id', f'is {frame_id!r}, expected '
                               f'{expected_frame!r}: poses in another frame would move the '
                               'arm along the wrong axes. Set frame_id in the teleop config '
                               'to the frame the controller publishes in (and calibrate '
                               'headset_to_base for it)')
    if not math.isfinite(stamp_s):
        raise TeleopInputError('header.stamp', f'is not finite ({stamp_s})')
    if previous_stamp_s is not None and stamp_s <= previous_stamp_s:
        raise TeleopInputError('header.stamp', f'{stamp_s:.6f} s is not newer than the '
                               f'previous pose ({previous_stamp_s:.6f} s): out of order or '
                               'repeated; the sample is dropped')
    return ControllerPose(stamp_s, frame_id, np.array(position, dtype=np.float64),
                          matrix_from_quat([w, x, y, z]))


def inputs_from_fields(grip: float, trigger: float, lower: bool, upper: bool
                       ) -> ControllerInputs:
    """Checked ControllerInputs (analog values clipped to 0..1).

    Raises:
        TeleopInputError: a non-finite analog value.
    """
    for name, value in (('grip', grip), ('trigger', trigger)):
        if not math.isfinite(value):
            raise TeleopInputError(f'inputs.{name}', f'is not finite ({value})')
    return ControllerInputs(min(max(float(grip), 0.0), 1.0),
                            min(max(float(trigger), 0.0), 1.0), bool(lower), bool(upper))
