"""Bridge setpoints -> the message of each controller interface a safety profile can name.

joint_trajectory (ros2_control joint_trajectory_controller; franka_ros2's fr3_arm_controller,
    UR's scaled/joint_trajectory_controller): a JointTrajectory stamped 0 ("start on
    arrival") with the setpoint (positions + velocities: cubic interpolation in the controller)
    and the braking tail, so the controller decelerates on its own if the bridge goes quiet.
forward_position (forward_command_controller): the setpoint positions as Float64MultiArray;
    requires the driver's own rate limiting (checked by the profile).
cartesian_pose (a Cartesian impedance/compliance controller): the setpoint's TCP pose from
    forward kinematics as PoseStamped in the robot's base frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from visuomotor.robots.kinematics import TcpKinematics
from visuomotor.ros.node_main import pose_to_msg
from visuomotor.ros.trajectory_conversion import trajectory_to_msg
from visuomotor.safety.bridge import Setpoint


def setpoint_to_trajectory(setpoint: Setpoint, joint_names: Sequence[str]) -> JointTrajectory:
    """The setpoint (and its braking tail) as a JointTrajectory starting on arrival."""
    return trajectory_to_msg(setpoint.trajectory(joint_names))


def setpoint_to_positions(setpoint: Setpoint) -> Float64MultiArray:
    """The setpoint positions for a forward position controller."""
    return Float64MultiArray(data=setpoint.positions.tolist())


def setpoint_to_pose(setpoint: Setpoint, kinematics: TcpKinematics, frame_id: str,
                     stamp: Time) -> PoseStamped:
    """The setpoint's TCP pose for a Cartesian controller."""
    return pose_to_msg(kinematics.pose(np.asarray(setpoint.positions)), stamp, frame_id)
