"""Inverse kinematics: damped least squares on the DH forward kinematics.

Used by the scripted expert of the twin and by teleoperation. Joint limits are respected
by clamping every iterate to the limits shrunk by a margin, and, for redundant arms (the
7-DoF Franka), a null-space term pulls the solution towards a rest posture so the elbow
stays away from the limits and the solution does not drift between calls; with
`limit_gain`, a second null-space term pushes any joint inside `limit_zone_rad` of a limit
back out of that zone (joint-limit avoidance that does not disturb the TCP).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from visuomotor.robots.description import RobotDescription
from visuomotor.robots.kinematics import jacobian, tcp_pose
from visuomotor.robots.transforms import Matrix, rotation_vector


@dataclass(frozen=True)
class IKResult:
    """The outcome of one IK solve.

    Attributes:
        q: joint positions (within limits), in the robot's joint order.
        converged: whether both errors are below the requested tolerances.
        position_error_m: remaining TCP position error.
        rotation_error_rad: remaining TCP orientation error (0 when position-only).
        iterations: iterations used.
    """

    q: Matrix
    converged: bool
    position_error_m: float
    rotation_error_rad: float
    iterations: int


def _pose_error(current: Matrix, target: Matrix) -> tuple[Matrix, Matrix]:
    position = target[:3, 3] - current[:3, 3]
    rotation = current[:3, :3] @ rotation_vector(current[:3, :3].T @ target[:3, :3])
    return position, rotation


def solve_ik(robot: RobotDescription, target: npt.ArrayLike, q_seed: npt.ArrayLike, *,
             position_only: bool = False, rest_rad: npt.ArrayLike | None = None,
             max_iterations: int = 200, tolerance_m: float = 1e-5,
             tolerance_rad: float = 1e-4, damping: float = 0.02,
             limit_margin_rad: float = 0.02, max_step_rad: float = 0.2,
             rest_gain: float = 0.1, limit_gain: float = 0.0,
             limit_zone_rad: float = 0.3, lower_rad: npt.ArrayLike | None = None,
             upper_rad: npt.ArrayLike | None = None) -> IKResult:
    """Joint positions that put the TCP at `target` (a 4x4 pose in the base frame).

    Args:
        robot: the arm.
        target: desired TCP pose in the robot's base frame.
        q_seed: start of the iteration, usually the measured joint positions.
        position_only: ignore the orientation of `target`.
        rest_rad: posture the null-space term pulls towards (default: `robot.home_rad`).
        max_iterations: upper bound on iterations.
        tolerance_m: convergence threshold on the position error.
        tolerance_rad: convergence threshold on the orientation error.
        damping: the DLS damping factor lambda (metres / radians scale).
        limit_margin_rad: iterates are kept this far inside the joint limits.
        max_step_rad: largest change of any joint per iteration.
        rest_gain: strength of the null-space pull towards `rest_rad`.
        limit_gain: strength of the null-space push out of the zones near the limits.
        limit_zone_rad: width of those zones.
        lower_rad: lower joint limits to use instead of the robot's (e.g. the safety
            bridge's envelope of the active tier, which is tighter).
        upper_rad: upper joint limits, likewise.

    Raises:
        ValueError: non-finite target or seed.
    """
    goal = np.asarray(target, dtype=np.float64)
    q = np.asarray(q_seed, dtype=np.float64).copy()
    if goal.shape != (4, 4) or not np.all(np.isfinite(goal)):
        raise ValueError(f'IK target must be a finite 4x4 pose, got {goal!r}')
    if q.shape != (robot.dof,) or not np.all(np.isfinite(q)):
        raise ValueError(f'IK seed must be {robot.dof} finite joint positions, got {q!r}')
    rest = np.asarray(robot.home_rad if rest_rad is None else rest_rad, dtype=np.float64)
    low = np.asarray(robot.lower_rad if lower_rad is None else lower_rad, dtype=np.float64)
    high = np.asarray(robot.upper_rad if upper_rad is None else upper_rad, dtype=np.float64)
    lower, upper = low + limit_margin_rad, high - limit_margin_rad
    q = np.clip(q, lower, upper)
    rows = slice(0, 3) if position_only else slice(0, 6)
    iterations = 0
    position_error = rotation_error = np.zeros(3)
    for iterations in range(1, max_iterations + 1):  # noqa: B007 (reported below)
        position_error, rotation_error = _pose_error(tcp_pose(robot, q), goal)
        error = np.concatenate([position_error, rotation_error])[rows]
        if np.linalg.norm(position_error) < tolerance_m and (
                position_only or np.linalg.norm(rotation_error) < tolerance_rad):
            break
        jac = jacobian(robot, q)[rows]
        jjt = jac @ jac.T + damping ** 2 * np.eye(jac.shape[0])
        step = jac.T @ np.linalg.solve(jjt, error)
        if robot.dof > jac.shape[0]:
            # The exact projector (undamped pseudo-inverse) keeps the posture term out of
            # the task space; the damped one would leak it into the TCP error.
            null_space = np.eye(robot.dof) - np.linalg.pinv(jac, rcond=1e-6) @ jac
            posture = rest_gain * (rest - q)
            if limit_gain > 0.0:
                posture += limit_gain * (np.maximum(low + limit_zone_rad - q, 0.0)
                                         - np.maximum(q - high + limit_zone_rad, 0.0))
            step += null_space @ posture
        largest = float(np.max(np.abs(step)))
        if largest > max_step_rad:
            step *= max_step_rad / largest
        q = np.clip(q + step, lower, upper)
    else:
        position_error, rotation_error = _pose_error(tcp_pose(robot, q), goal)
    position_norm = float(np.linalg.norm(position_error))
    rotation_norm = 0.0 if position_only else float(np.linalg.norm(rotation_error))
    converged = position_norm < tolerance_m * 10 and (
        position_only or rotation_norm < tolerance_rad * 10)
    return IKResult(q, converged, position_norm, rotation_norm, iterations)
