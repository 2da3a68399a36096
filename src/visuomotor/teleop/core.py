"""The teleop pipeline (pure): controller readings -> clutch mapping -> IK -> joint targets.

`TeleopCore` is what the teleop node runs; the node only converts messages and publishes the
targets to the safety bridge's `~/command` like a policy's (one point, `lead_s` after its
stamp: the bridge moves there in a straight line under its limits). No target is produced
while the clutch is released, the streams are silent or an input was refused, so the bridge's
watchdog stops the arm: that is the deadman.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visuomotor.robots.description import RobotDescription
from visuomotor.robots.ik import solve_ik
from visuomotor.robots.kinematics import TcpKinematics
from visuomotor.robots.transforms import Matrix
from visuomotor.teleop.config import TeleopConfig
from visuomotor.teleop.inputs import ControllerInputs, ControllerPose
from visuomotor.teleop.mapping import ClutchMapping

OUT_OF_REACH_M = 0.01  # IK position error above which the target is reported unreachable
HOME_REACHED_RAD = 1e-3


@dataclass(frozen=True)
class JointTarget:
    """Joint positions to reach `time_from_stamp_s` after the command's stamp."""

    q: Matrix
    time_from_stamp_s: float
    position_error_m: float = 0.0


class TeleopCore:
    """See the module docstring.

    Args:
        config: the teleop config.
        robot: the arm.
        limits: (lower, upper) joint limits the IK keeps to and avoids: the safety bridge's
            envelope of the active tier, so the IK never plans a posture the bridge would
            clamp (default: the robot's own limits).
    """

    def __init__(self, config: TeleopConfig, robot: RobotDescription,
                 limits: tuple[Matrix, Matrix] | None = None) -> None:
        self.config = config
        self.robot = robot
        lower, upper = limits if limits is not None else (robot.lower_rad, robot.upper_rad)
        self.lower_rad: Matrix = np.asarray(lower, dtype=np.float64)
        self.upper_rad: Matrix = np.asarray(upper, dtype=np.float64)
        self.mapping = ClutchMapping(config)
        self.kinematics = TcpKinematics(robot)
        self.home = np.array(robot.home_rad, dtype=np.float64)
        self.measured: Matrix | None = None
        self._seed: Matrix | None = None  # the last IK solution while engaged
        self._rest = self.home
        self.counters: dict[str, int] = {}

    def count(self, key: str) -> None:
        """Add one to a diagnostics counter."""
        self.counters[key] = self.counters.get(key, 0) + 1

    @property
    def gripper_width_m(self) -> float:
        """The commanded gripper opening (closed while the trigger is pressed)."""
        return 0.0 if self.mapping.gripper_closed else self.robot.gripper.max_width_m

    def on_joint_state(self, q: Matrix) -> None:
        """The measured arm positions (robot joint order)."""
        self.measured = np.asarray(q, dtype=np.float64)

    def on_inputs(self, now_s: float, inputs: ControllerInputs, recording: bool) -> list[str]:
        """Button and grip reading; returns the events (see visuomotor.teleop.mapping)."""
        return self.mapping.on_inputs(now_s, inputs, recording)

    def on_pose(self, now_s: float, pose: ControllerPose) -> JointTarget | None:
        """A checked controller pose; the joint target to command, or None (nothing)."""
        if self.measured is None:
            self.count('poses_before_joint_states')
            return None
        was_engaged = self.mapping.engaged
        target = self.mapping.on_pose(now_s, pose, self.kinematics.pose(self.measured))
        if target is None:
            self._seed = None
            return None
        if not was_engaged or self._seed is None:
            # The posture at the engage is the rest posture of the null-space term: the elbow
            # stays where the operator left it instead of drifting towards home.
            self._seed = self._rest = self.measured
            self.count('clutch_engaged')
        cfg = self.config
        result = solve_ik(self.robot, target, self._seed, rest_rad=self._rest,
                          max_iterations=cfg.ik_iterations, tolerance_m=1e-4,
                          tolerance_rad=1e-3, damping=cfg.ik_damping,
                          limit_margin_rad=cfg.ik_limit_margin_rad, rest_gain=cfg.ik_rest_gain,
                          limit_gain=cfg.ik_limit_gain, limit_zone_rad=cfg.ik_limit_zone_rad,
                          lower_rad=self.lower_rad,
                          upper_rad=self.upper_rad)
        if result.position_error_m > OUT_OF_REACH_M:
            self.count('target_out_of_reach')
        self._seed = result.q
        return JointTarget(result.q, cfg.lead_s, result.position_error_m)

    def home_step(self) -> JointTarget | None:
        """The home posture, timed at the home speed, while the move home is held.

        None when not homing, without joint states, or at home.
        """
        if not self.mapping.homing or self.measured is None:
            return None
        distance = float(np.max(np.abs(self.home - self.measured)))
        if distance < HOME_REACHED_RAD:
            return None
        return JointTarget(self.home.copy(), max(self.config.lead_s,
                                          distance / self.config.home_speed_rad_s))
