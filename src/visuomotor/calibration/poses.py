"""Robot poses to capture calibration views from (pure: IK on the robot description).

Hand-eye calibration needs views whose hand orientations differ about several axes (15-30
degrees, Tsai and Lenz's advice); verification needs a few views that see the board well. A
plan is a list of joint positions, generated from where the board is (roughly: a tape
measure is enough) and stepped through by the capture helper, which moves the robot through
the safety bridge or asks the operator to. Plans for a rig can be stored (teach the poses
once, reuse them every session).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from visuomotor.calibration.charuco import CalibrationError
from visuomotor.robots.description import RobotDescription
from visuomotor.robots.ik import solve_ik
from visuomotor.robots.transforms import Matrix, rot_x, rot_y, rot_z


def poses_above(robot: RobotDescription, centre_base: npt.ArrayLike, count: int, *,
                seed: int = 0, start: npt.ArrayLike | None = None,
                height_m: tuple[float, float] = (0.25, 0.38),
                spread_m: tuple[float, float] = (0.12, 0.08),
                tilt_rad: float = 0.5, yaw_rad: float = 0.6,
                offset_m: Sequence[float] = (-0.06, 0.0)) -> list[Matrix]:
    """Joint positions with the hand above `centre_base`, looking down at it.

    Tilted and turned at random (reproducibly by `seed`); unreachable poses are skipped.

    Args:
        robot: the arm.
        centre_base: the point to look at, in the base frame (the board centre).
        count: poses wanted.
        seed: random seed of the tilts, turns and offsets.
        start: IK seed of the first pose (default: the robot's home), then each pose seeds
            the next, so consecutive poses are close in joint space.
        height_m: range of TCP heights above the point.
        spread_m: +- x and y range of the TCP around the point (plus `offset_m`).
        offset_m: x and y offset of the TCP from the point (a wrist camera sits beside the
            TCP: the offset keeps the point in the middle of its view).
        tilt_rad: +- tilt about the hand's x and y axes.
        yaw_rad: +- turn about the vertical.

    Raises:
        CalibrationError: fewer than half the poses were reachable (the point is out of
            reach, or the ranges are too wide).
    """
    rng = np.random.default_rng(seed)
    q = np.asarray(robot.home_rad if start is None else start, dtype=np.float64)
    centre = np.asarray(centre_base, dtype=np.float64)
    poses: list[Matrix] = []
    attempts = 0
    while len(poses) < count and attempts < count * 4:
        attempts += 1
        target = rot_z(rng.uniform(-yaw_rad, yaw_rad)) @ rot_x(math.pi) @ \
            rot_x(rng.uniform(-tilt_rad, tilt_rad)) @ rot_y(rng.uniform(-tilt_rad, tilt_rad))
        target[:3, 3] = centre + (
            offset_m[0] + rng.uniform(-spread_m[0], spread_m[0]),
            offset_m[1] + rng.uniform(-spread_m[1], spread_m[1]), rng.uniform(*height_m))
        result = solve_ik(robot, target, q)
        if result.converged:
            poses.append(np.asarray(result.q, dtype=np.float64))
            q = result.q
    if len(poses) < max(1, count // 2):
        raise CalibrationError(f'only {len(poses)} of {count} calibration poses above '
                               f'{[round(float(v), 3) for v in centre]} m are reachable: check '
                               'the board position (base frame) or narrow the ranges')
    return poses
