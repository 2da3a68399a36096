"""joint_trajectory_controller semantics for the twin (pure: no MuJoCo, no rclpy).

Follows ros2_controllers' JointTrajectoryController topic interface
(joint_trajectory_controller/src/trajectory.cpp and doc/userdoc.rst):

* a new trajectory replaces the active one; the old one is forgotten (ROS 2 does not splice);
* header.stamp zero means "start now"; a non-zero stamp whose last point lies in the past is
  rejected;
* before the first point, the controller interpolates from the state it was commanding when
  the trajectory arrived, anchored at the arrival time (`open_loop_control` behaviour), to
  the first point at start + time_from_start: a replacement never jumps, whether its stamp is
  0, in the future (motion starts on arrival, as in ROS 2) or slightly in the past. Only when
  the first point itself already lies in the past does the sample land on a later segment
  (the same jump ROS 2 makes);
* between points: positions only -> linear, positions + velocities -> cubic Hermite,
  positions + velocities + accelerations -> quintic; after the last point it holds it;
* a message is validated before anything changes: joint names (all arm joints, any order,
  no unknown or repeated names), point sizes, finite values, strictly increasing
  time_from_start, positions inside the joint limits. A rejected message leaves the active
  trajectory running.
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


class CommandError(FieldError):
    """A robot command was rejected; the arm keeps doing what it was doing."""


@dataclass(frozen=True)
class TrajectoryPoint:
    """One waypoint (arrays in the controller's joint order)."""

    time_from_start_s: float
    positions: Vector
    velocities: Vector | None = None
    accelerations: Vector | None = None


@dataclass(frozen=True)
class SampledState:
    """Commanded positions, velocities and accelerations at one instant."""

    positions: Vector
    velocities: Vector
    accelerations: Vector


def validate_trajectory(command: JointTrajectoryCommand, joint_names: Sequence[str],
                        lower: Vector, upper: Vector, now_s: float,
                        ) -> tuple[float, list[TrajectoryPoint]]:
    """Check a trajectory and reorder it to `joint_names`.

    Returns:
        (absolute start time, points in the controller's joint order).

    Raises:
        CommandError: naming the offending field and what to send instead.
    """
    expected = list(joint_names)
    names = list(command.joint_names)
    unknown = [n for n in names if n not in expected]
    if unknown:
        raise CommandError('joint_names', f'unknown joints {unknown}; this controller drives '
                           f'{expected}')
    if len(set(names)) != len(names):
        raise CommandError('joint_names', f'repeated joint names in {names}')
    missing = [n for n in expected if n not in names]
    if missing:
        raise CommandError('joint_names', f'missing joints {missing}: send all of {expected}')
    if not command.points:
        raise CommandError('points', 'is empty: send at least one point')
    if not math.isfinite(command.start_time_s):
        raise CommandError('header.stamp', f'must be finite, got {command.start_time_s}')
    order = [names.index(n) for n in expected]
    points: list[TrajectoryPoint] = []
    previous = -math.inf
    for i, (tfs, pos, vel, acc) in enumerate(command.points):
        field = f'points[{i}]'
        if not math.isfinite(tfs) or tfs < 0:
            raise CommandError(f'{field}.time_from_start', f'must be finite and >= 0, got {tfs}')
        if tfs <= previous:
            raise CommandError(f'{field}.time_from_start', f'{tfs} s is not after the previous '
                               f'point ({previous} s): times must strictly increase')
        previous = tfs
        arrays: list[Vector | None] = []
        for key, values, required in (('positions', pos, True), ('velocities', vel, False),
                                      ('accelerations', acc, False)):
            if len(values) == 0 and not required:
                arrays.append(None)
                continue
            if len(values) != len(names):
                raise CommandError(f'{field}.{key}', f'has {len(values)} values for '
                                   f'{len(names)} joint names')
            array = np.asarray(values, dtype=np.float64)[order]
            if not np.all(np.isfinite(array)):
                raise CommandError(f'{field}.{key}', f'must be finite, got {list(values)}')
            arrays.append(array)
        positions = arrays[0]
        assert positions is not None
        outside = np.nonzero((positions < lower) | (positions > upper))[0]
        if outside.size:
            j = int(outside[0])
            raise CommandError(f'{field}.positions', f'{expected[j]} = {positions[j]:.4f} rad is '
                               f'outside its limits [{lower[j]:.4f}, {upper[j]:.4f}]')
        if arrays[2] is not None and arrays[1] is None:
            raise CommandError(f'{field}.accelerations', 'given without velocities')
        points.append(TrajectoryPoint(tfs, positions, arrays[1], arrays[2]))
    start = now_s if command.start_time_s == 0.0 else command.start_time_s
    if start + points[-1].time_from_start_s < now_s:
        raise CommandError('header.stamp', f'the trajectory ends at {start + previous:.3f} s, '
                           f'before now ({now_s:.3f} s): stamp it 0 to start on arrival')
    return start, points


def _interpolate(t: float, t0: float, a: SampledState | TrajectoryPoint, t1: float,
                 b: TrajectoryPoint) -> SampledState:
    duration = t1 - t0
    s = min(max(t - t0, 0.0), duration)
    p0, p1 = a.positions, b.positions
    v0 = a.velocities if a.velocities is not None else None
    v1 = b.velocities
    zeros = np.zeros_like(p0)
    if v1 is None or v0 is None:
        # Positions only: linear, as joint_trajectory_controller does.
        velocity = (p1 - p0) / duration
        return SampledState(p0 + velocity * s, velocity, zeros)
    a0 = a.accelerations if a.accelerations is not None else None
    a1 = b.accelerations
    if a1 is None or a0 is None:
        # Cubic Hermite through both positions and velocities.
        c2 = (3 * (p1 - p0) - (2 * v0 + v1) * duration) / duration ** 2
        c3 = (2 * (p0 - p1) + (v0 + v1) * duration) / duration ** 3
        return SampledState(p0 + v0 * s + c2 * s ** 2 + c3 * s ** 3,
                            v0 + 2 * c2 * s + 3 * c3 * s ** 2, 2 * c2 + 6 * c3 * s)
    t_ = duration
    c3 = (20 * (p1 - p0) - (8 * v1 + 12 * v0) * t_ - (3 * a0 - a1) * t_ ** 2) / (2 * t_ ** 3)
    c4 = (30 * (p0 - p1) + (14 * v1 + 16 * v0) * t_ + (3 * a0 - 2 * a1) * t_ ** 2) / (2 * t_ ** 4)
    c5 = (12 * (p1 - p0) - (6 * v1 + 6 * v0) * t_ - (a0 - a1) * t_ ** 2) / (2 * t_ ** 5)
    return SampledState(
        p0 + v0 * s + a0 / 2 * s ** 2 + c3 * s ** 3 + c4 * s ** 4 + c5 * s ** 5,
        v0 + a0 * s + 3 * c3 * s ** 2 + 4 * c4 * s ** 3 + 5 * c5 * s ** 4,
        a0 + 6 * c3 * s + 12 * c4 * s ** 2 + 20 * c5 * s ** 3)


class ActiveTrajectory:
    """A validated trajectory being executed, anchored at its start time."""

    def __init__(self, start_s: float, points: list[TrajectoryPoint],
                 state_before: SampledState, arrival_s: float | None = None) -> None:
        self.start_s = start_s
        self.points = points
        self.state_before = state_before
        self.arrival_s = start_s if arrival_s is None else arrival_s

    @property
    def end_s(self) -> float:
        """Absolute time of the last point."""
        return self.start_s + self.points[-1].time_from_start_s

    def sample(self, t: float) -> SampledState:
        """Commanded state at absolute time `t`."""
        first = self.points[0]
        first_s = self.start_s + first.time_from_start_s
        if t <= self.arrival_s and t < first_s:
            return SampledState(self.state_before.positions, np.zeros_like(first.positions),
                                np.zeros_like(first.positions))
        if t < first_s and self.arrival_s < first_s:
            return _interpolate(t, self.arrival_s, self.state_before, first_s, first)
        for previous, point in zip(self.points[:-1], self.points[1:], strict=True):
            t1 = self.start_s + point.time_from_start_s
            if t < t1:
                return _interpolate(t, self.start_s + previous.time_from_start_s, previous,
                                    t1, point)
        last = self.points[-1]
        zeros = np.zeros_like(last.positions)
        return SampledState(last.positions.copy(), zeros, zeros)
