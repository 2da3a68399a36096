"""A joint trajectory as plain values: what a trajectory_msgs/JointTrajectory carries.

The one command type of the stack's joint-space paths (policy plans, teleop targets, the
safety bridge's setpoints, the twin's controller), shared by rooms that must not import each
other; visuomotor.ros.trajectory_conversion turns it into the message and back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class JointTrajectoryCommand:
    """A trajectory_msgs/JointTrajectory as plain values.

    Attributes:
        joint_names: joint order of the point arrays.
        points: waypoints with time_from_start in seconds.
        start_time_s: header.stamp in seconds; 0 means "start when received".
    """

    joint_names: tuple[str, ...]
    points: tuple[tuple[float, Sequence[float], Sequence[float], Sequence[float]], ...]
    start_time_s: float = 0.0
