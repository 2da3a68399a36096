"""The twin's arm and gripper controllers, with the checks real controllers apply.

A joint trajectory controller, a forward position controller and a gripper; pure code (time
is an argument).

As on a ros2_control robot, the latest accepted command owns the arm: a trajectory replaces
a position command and vice versa (the twin switches between them as if both controllers were
loaded and the switch were instantaneous). A rejected command changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from visuomotor.robots.description import RobotDescription
from visuomotor.sim.joint_trajectory import (
    ActiveTrajectory,
    CommandError,
    SampledState,
    Vector,
    validate_trajectory,
)
from visuomotor.trajectory import JointTrajectoryCommand


class ArmController:
    """Commanded arm and gripper state of the twin.

    Args:
        robot: the arm description (joint order, limits, gripper).
        positions: the arm's joint positions at start; the controller holds them.
        now_s: current simulated time.
    """

    def __init__(self, robot: RobotDescription, positions: Sequence[float] | np.ndarray,
                 now_s: float,
                 ) -> None:
        self.robot = robot
        self._lower = robot.lower_rad
        self._upper = robot.upper_rad
        self.reset(positions, now_s)

    def reset(self, positions: Sequence[float] | np.ndarray, now_s: float,
              gripper_width_m: float | None = None) -> None:
        """Hold `positions` from `now_s` on, forgetting any command."""
        q = np.asarray(positions, dtype=np.float64)
        zeros = np.zeros(self.robot.dof)
        self._hold = SampledState(q.copy(), zeros, zeros)
        self._trajectory: ActiveTrajectory | None = None
        width = self.robot.gripper.max_width_m if gripper_width_m is None else gripper_width_m
        self._gripper_target = width
        self._gripper_width = width
        self._gripper_time = now_s
        self.mode = 'hold'

    def command_trajectory(self, command: JointTrajectoryCommand, now_s: float) -> None:
        """Accept a JointTrajectory (see joint_trajectory for the semantics).

        Raises:
            CommandError: the trajectory is invalid; the previous command stays active.
        """
        start, points = validate_trajectory(command, self.robot.joint_names, self._lower,
                                            self._upper, now_s)
        before = self.sample(now_s)
        self._trajectory = ActiveTrajectory(start, points, before, now_s)
        self.mode = 'trajectory'

    def command_positions(self, values: Sequence[float], now_s: float) -> None:
        """Accept a forward position command (std_msgs/Float64MultiArray data).

        The values are in the controller's joint order (the robot description's order, as
        the `joints` parameter of a forward_command_controller).

        Raises:
            CommandError: wrong length, non-finite or outside the joint limits.
        """
        names = list(self.robot.joint_names)
        if len(values) != len(names):
            raise CommandError('data', f'has {len(values)} values; the position controller '
                               f'expects {len(names)} in the order {names}')
        q = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(q)):
            raise CommandError('data', f'must be finite, got {list(values)}')
        outside = np.nonzero((q < self._lower) | (q > self._upper))[0]
        if outside.size:
            j = int(outside[0])
            raise CommandError('data', f'{names[j]} = {q[j]:.4f} rad is outside its limits '
                               f'[{self._lower[j]:.4f}, {self._upper[j]:.4f}]')
        zeros = np.zeros(self.robot.dof)
        self._hold = SampledState(q, zeros, zeros)
        self._trajectory = None
        self.mode = 'position'

    def command_gripper(self, width_m: float, now_s: float) -> None:
        """Move the gripper to an opening width (metres) at its maximum speed.

        A width smaller than the object grasps it with the gripper's maximum force.

        Raises:
            CommandError: non-finite or outside [0, max width].
        """
        limit = self.robot.gripper.max_width_m
        if not math.isfinite(width_m) or not 0.0 <= width_m <= limit + 1e-9:
            raise CommandError('gripper width', f'must be finite and within [0, {limit}] m, '
                               f'got {width_m}')
        self._gripper_width = self.gripper_width(now_s)
        self._gripper_time = now_s
        self._gripper_target = min(width_m, limit)

    def sample(self, now_s: float) -> SampledState:
        """Commanded arm state at `now_s`."""
        if self._trajectory is None:
            return self._hold
        return self._trajectory.sample(now_s)

    def trajectory_active(self, now_s: float) -> bool:
        """Whether a trajectory is still moving (before its last point's time)."""
        return self._trajectory is not None and now_s < self._trajectory.end_s

    def gripper_width(self, now_s: float) -> float:
        """Commanded gripper opening at `now_s`, moving at the gripper's speed limit."""
        elapsed = max(now_s - self._gripper_time, 0.0)
        step = self.robot.gripper.max_speed_m_s * elapsed
        delta = self._gripper_target - self._gripper_width
        return self._gripper_target if abs(delta) <= step else \
            self._gripper_width + math.copysign(step, delta)

    @property
    def gripper_target_m(self) -> float:
        """The last accepted gripper width."""
        return self._gripper_target

    def hold_positions(self) -> Vector:
        """Positions held when no trajectory runs."""
        return self._hold.positions
