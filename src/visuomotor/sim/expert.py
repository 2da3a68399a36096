"""A scripted expert for the pick-and-place task, acting through the robot's command interface.

It reads privileged state (the cube pose and the target position, which only the simulator
knows), plans Cartesian waypoints, moves a Cartesian set-point towards them at a bounded speed,
solves IK on the pure kinematics, and emits each control tick what a policy would: a short
JointTrajectory (one point, reached at the next tick) and a gripper width. Its runs can thus
be recorded as demonstrations exactly like teleoperation or policy rollouts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from visuomotor.robots.description import RobotDescription
from visuomotor.robots.ik import solve_ik
from visuomotor.robots.kinematics import tcp_pose
from visuomotor.robots.transforms import Matrix, invert, rot_x, rot_z
from visuomotor.trajectory import JointTrajectoryCommand

PHASES = ('approach', 'descend', 'close', 'lift', 'carry', 'lower', 'release', 'retreat',
          'done')


@dataclass(frozen=True)
class ExpertObservation:
    """What the expert sees each tick (world frame, metres)."""

    time_s: float
    arm_positions: np.ndarray
    gripper_width_m: float
    object_pose: Matrix
    target_xy: tuple[float, float]


@dataclass(frozen=True)
class ExpertAction:
    """One tick's command: the arm trajectory, the gripper width, and the phase it is in."""

    trajectory: JointTrajectoryCommand
    gripper_width_m: float
    phase: str
    arm_target: np.ndarray


class ScriptedExpert:
    """Pick the cube, carry it to the target, put it down, retreat.

    Args:
        robot: the arm.
        base_pose: robot base in the world.
        object_size_m: cube edge (sets the grasp and place heights).
        rate_hz: control rate; each action's single point is reached 1/rate_hz later.
        speed_m_s: Cartesian speed of the set-point.
        yaw_rate_rad_s: fastest turn of the commanded hand yaw (inf: turn at once), so the
            commands stay within a slow safety tier (commissioning: 0.3 rad/s).
    """

    def __init__(self, robot: RobotDescription, base_pose: Matrix, object_size_m: float, *,
                 rate_hz: float = 10.0, speed_m_s: float = 0.25,
                 yaw_rate_rad_s: float = math.inf) -> None:
        self.robot = robot
        self.yaw_rate_rad_s = yaw_rate_rad_s
        self.base_pose = base_pose
        self._world_to_base = invert(base_pose)
        self.object_size_m = object_size_m
        self.rate_hz = rate_hz
        self.speed_m_s = speed_m_s
        self.hover_m = 0.12
        self.reset()

    def reset(self, miss_offset_m: tuple[float, float] = (0.0, 0.0)) -> None:
        """Start a new episode.

        Args:
            miss_offset_m: a deliberate error of the first grasp, metres along the hand's x and
                y axes (y: the fingers' closing direction). A recovery demonstration: the
                expert grasps beside the cube, finds its hand empty after lifting, opens and
                tries again on the cube. `perturbed` is true until the failed grasp closed.
        """
        self.phase = 'approach'
        self._miss_offset = (float(miss_offset_m[0]), float(miss_offset_m[1]))
        self._setpoint: np.ndarray | None = None
        self._yaw: float | None = None
        self._commanded_yaw: float | None = None
        self._q_command: np.ndarray | None = None
        self._phase_started_s = 0.0
        self._gripper = self.robot.gripper.max_width_m
        self._retries = 0

    @property
    def perturbed(self) -> bool:
        """Whether the expert is acting out a deliberate miss (not to be imitated)."""
        return self._retries == 0 and any(self._miss_offset) and \
            self.phase in ('approach', 'descend', 'close')

    @property
    def done(self) -> bool:
        """Whether the expert finished (object released at the target, arm retreated)."""
        return self.phase == 'done'

    def _grasp_yaw(self, object_pose: Matrix, q: np.ndarray) -> float:
        """The cube's face yaw (mod 90 deg) closest to the current TCP yaw."""
        current = self.base_pose @ tcp_pose(self.robot, q)
        current_yaw = math.atan2(current[1, 0], current[0, 0])
        object_yaw = math.atan2(object_pose[1, 0], object_pose[0, 0])
        candidates = [object_yaw + k * math.pi / 2 for k in range(-4, 5)]
        return min(candidates, key=lambda y: abs(math.remainder(y - current_yaw, 2 * math.pi)))

    def _waypoint(self, obs: ExpertObservation) -> np.ndarray:
        obj = obs.object_pose[:3, 3].copy()
        if self._retries == 0 and self._yaw is not None:
            c, s = math.cos(self._yaw), math.sin(self._yaw)
            dx, dy = self._miss_offset
            obj[:2] += (c * dx - s * dy, s * dx + c * dy)
        tx, ty = obs.target_xy
        half = self.object_size_m / 2
        grasp_z = max(half, 0.012)
        hover = half + self.hover_m
        table = {'approach': (obj[0], obj[1], hover), 'descend': (obj[0], obj[1], grasp_z),
                 'lift': (None, None, hover), 'carry': (tx, ty, hover),
                 'lower': (tx, ty, grasp_z + 0.008), 'retreat': (None, None, hover)}
        assert self._setpoint is not None
        x, y, z = table.get(self.phase, (None, None, None))
        return np.array([self._setpoint[0] if x is None else x,
                         self._setpoint[1] if y is None else y,
                         self._setpoint[2] if z is None else z])

    def _advance(self, obs: ExpertObservation, waypoint: np.ndarray) -> None:
        reached = self._setpoint is not None and np.linalg.norm(waypoint - self._setpoint) < 1e-6
        measured = (self.base_pose @ tcp_pose(self.robot, obs.arm_positions))[:3, 3]
        turned = self._commanded_yaw is None or self._yaw is None or abs(
            math.remainder(self._yaw - self._commanded_yaw, 2 * math.pi)) < 0.02
        settled = reached and turned and np.linalg.norm(measured - waypoint) < 0.006
        elapsed = obs.time_s - self._phase_started_s
        held = obs.object_pose[2, 3] > self.object_size_m / 2 + 0.03
        next_phase = None
        if self.phase in ('approach', 'descend', 'carry', 'lower', 'retreat') and settled:
            next_phase = PHASES[PHASES.index(self.phase) + 1]
        elif self.phase == 'close' and (elapsed > 0.5 and obs.gripper_width_m <
                                        self.object_size_m + 0.002 or elapsed > 1.5):
            next_phase = 'lift'
        elif self.phase == 'lift' and settled:
            # Missed or dropped the cube: open and try again from above it (three times).
            next_phase = 'carry' if held or self._retries >= 3 else 'approach'
            if next_phase == 'approach':
                self._retries += 1
                self._gripper = self.robot.gripper.max_width_m
                assert self._q_command is not None
                self._yaw = self._grasp_yaw(obs.object_pose, self._q_command)  # as it lies now
        elif self.phase == 'release' and elapsed > 0.5:
            next_phase = 'retreat'
        if next_phase is not None:
            self.phase = next_phase
            self._phase_started_s = obs.time_s
            if next_phase == 'close':
                self._gripper = 0.0
            elif next_phase == 'release':
                self._gripper = self.robot.gripper.max_width_m

    def act(self, obs: ExpertObservation) -> ExpertAction:
        """The command for this tick."""
        q = np.asarray(obs.arm_positions, dtype=np.float64)
        if self._setpoint is None or self._q_command is None:
            self._setpoint = (self.base_pose @ tcp_pose(self.robot, q))[:3, 3].copy()
            self._q_command = q.copy()
            self._phase_started_s = obs.time_s
        if self._yaw is None or self.phase in ('approach',):
            self._yaw = self._grasp_yaw(obs.object_pose, self._q_command)
        self._advance(obs, self._waypoint(obs))
        waypoint = self._waypoint(obs)
        step = waypoint - self._setpoint
        limit = self.speed_m_s / self.rate_hz
        if self.phase in ('descend', 'lower'):
            limit *= 0.5
        distance = float(np.linalg.norm(step))
        if distance > limit:
            step *= limit / distance
        self._setpoint = self._setpoint + step
        if self._commanded_yaw is None:
            current = self.base_pose @ tcp_pose(self.robot, self._q_command)
            self._commanded_yaw = math.atan2(current[1, 0], current[0, 0])
        turn = math.remainder(self._yaw - self._commanded_yaw, 2 * math.pi)
        max_turn = self.yaw_rate_rad_s / self.rate_hz
        self._commanded_yaw += max(-max_turn, min(max_turn, turn))
        target = rot_z(self._commanded_yaw) @ rot_x(math.pi)
        target[:3, 3] = self._setpoint
        result = solve_ik(self.robot, self._world_to_base @ target, self._q_command,
                          max_iterations=50, tolerance_m=1e-4, tolerance_rad=1e-3)
        self._q_command = result.q
        trajectory = JointTrajectoryCommand(
            self.robot.joint_names, ((1.0 / self.rate_hz, tuple(result.q), (), ()),))
        return ExpertAction(trajectory, self._gripper, self.phase, result.q.copy())
