"""Validation of incoming joint commands (pure): the first thing the bridge does with one.

A command is a chunk of joint-position waypoints (a trajectory_msgs/JointTrajectory from the
policy or from teleop): header.stamp is the time the chunk was computed for, and each point's
absolute time is stamp + time_from_start. Non-finite and malformed commands are rejected
before anything else looks at them (np.clip and ros2_control's limiters pass NaN through);
every rejection names the field, the value and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from visuomotor.errors import FieldError
from visuomotor.trajectory import JointTrajectoryCommand

Vector = npt.NDArray[np.float64]

#: A target this far outside the vendor range is not a target but a unit or order mistake.
PLAUSIBLE_MARGIN_RAD = 0.5


class CommandRejectedError(FieldError):
    """A command failed validation.

    Attributes:
        reason: a short stable identifier (`non_finite`, `joint_names`, `shape`, `timing`,
            `unstamped`, `implausible`) used in counters and decision records.
    """

    def __init__(self, reason: str, field: str, message: str) -> None:
        super().__init__(field, message)
        self.reason = reason


Rejected = CommandRejectedError


@dataclass(frozen=True)
class JointChunk:
    """A validated chunk in the robot's joint order.

    Attributes:
        stamp_s: header.stamp (seconds on the bridge's clock).
        times_s: absolute time of every point, strictly increasing.
        positions: shape (points, dof), radians.
    """

    stamp_s: float
    times_s: Vector
    positions: npt.NDArray[np.float64]

    def target_at(self, t: float) -> Vector:
        """Linear interpolation between the points at time `t` (held after the last)."""
        times = self.times_s
        if t >= times[-1]:
            return np.asarray(self.positions[-1], dtype=np.float64)
        index = int(np.searchsorted(times, t, side='right'))
        if index == 0:
            return np.asarray(self.positions[0], dtype=np.float64)
        t0, t1 = times[index - 1], times[index]
        alpha = (t - t0) / (t1 - t0)
        return np.asarray(self.positions[index - 1] * (1.0 - alpha)
                          + self.positions[index] * alpha)


def _finite_values(values: Sequence[float], field: str) -> None:
    for j, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Rejected('shape', f'{field}[{j}]',
                           f'must be a number, got {value!r}')
        if not math.isfinite(value):
            raise Rejected('non_finite', f'{field}[{j}]', f'is {value!r}: every value '
                           f'must be finite; the command was dropped and the arm holds')


def validate_chunk(command: JointTrajectoryCommand, joint_names: Sequence[str],
                   plausible_lower: Vector, plausible_upper: Vector) -> JointChunk:
    """Check a command and reorder it to the robot's joint order.

    Args:
        command: the received trajectory as plain values.
        joint_names: the robot's arm joints in chain order.
        plausible_lower: the vendor's lower limits; a position more than
            PLAUSIBLE_MARGIN_RAD below is rejected as a unit or joint-order mistake (anything
            inside is clamped and limited, not rejected).
        plausible_upper: the vendor's upper limits, likewise.

    Raises:
        CommandRejectedError: with the reason, field and fix.
    """
    names = list(command.joint_names)
    expected = list(joint_names)
    if sorted(names) != sorted(expected) or len(set(names)) != len(names):
        raise Rejected('joint_names', 'joint_names',
                       f'must be the arm joints {expected} '
                       f'(any order, each once), got {names}')
    if not command.points:
        raise Rejected('shape', 'points', 'is empty: send at least one waypoint')
    if not math.isfinite(command.start_time_s) or command.start_time_s <= 0.0:
        raise Rejected('unstamped', 'header.stamp',
                       f'is {command.start_time_s}: stamp '
                       f'each command with the time it was computed for, so stale and '
                       f'reordered commands can be dropped')
    order = [names.index(name) for name in expected]
    times = np.empty(len(command.points))
    positions = np.empty((len(command.points), len(expected)))
    previous = -math.inf
    for i, (tfs, q, v, a) in enumerate(command.points):
        field = f'points[{i}]'
        _finite_values([tfs], f'{field}.time_from_start')
        if tfs < 0.0 or tfs <= previous:
            raise Rejected('timing', f'{field}.time_from_start', f'must be >= 0 and '
                           f'strictly increasing, got {tfs} after {previous}')
        previous = tfs
        if len(q) != len(expected):
            raise Rejected('shape', f'{field}.positions', f'must hold {len(expected)} '
                           f'values (one per joint name), got {len(q)}')
        for key, values in (('velocities', v), ('accelerations', a)):
            if len(values) not in (0, len(expected)):
                raise Rejected('shape', f'{field}.{key}', f'must be empty or hold '
                               f'{len(expected)} values, got {len(values)}')
            _finite_values(values, f'{field}.{key}')
        _finite_values(q, f'{field}.positions')
        row = np.array([float(q[k]) for k in order])
        outside = (row < plausible_lower - PLAUSIBLE_MARGIN_RAD) | \
            (row > plausible_upper + PLAUSIBLE_MARGIN_RAD)
        if np.any(outside):
            j = int(np.argmax(outside))
            raise Rejected('implausible', f'{field}.positions[{expected[j]}]',
                           f'{row[j]:.4g} is far outside the joint range '
                           f'[{plausible_lower[j]:.4g}, {plausible_upper[j]:.4g}] rad: '
                           f'radians expected (degrees?) in the order of joint_names')
        times[i] = command.start_time_s + tfs
        positions[i] = row
    return JointChunk(command.start_time_s, times, positions)
