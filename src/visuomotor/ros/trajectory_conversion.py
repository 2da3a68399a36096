"""trajectory_msgs/JointTrajectory <-> the pure JointTrajectoryCommand."""

from __future__ import annotations

from builtin_interfaces.msg import Duration
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from visuomotor.trajectory import JointTrajectoryCommand


def duration_to_s(duration: Duration) -> float:
    """Seconds of a builtin_interfaces/Duration."""
    return float(duration.sec) + float(duration.nanosec) * 1e-9


def s_to_duration(seconds: float) -> Duration:
    """A builtin_interfaces/Duration of `seconds` (>= 0)."""
    nanoseconds = int(round(seconds * 1e9))
    return Duration(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def trajectory_from_msg(msg: JointTrajectory) -> JointTrajectoryCommand:
    """The message as plain values (validation happens in the controller)."""
    stamp = float(msg.header.stamp.sec) + float(msg.header.stamp.nanosec) * 1e-9
    points = tuple((duration_to_s(p.time_from_start), tuple(p.positions), tuple(p.velocities),
                    tuple(p.accelerations)) for p in msg.points)
    return JointTrajectoryCommand(tuple(msg.joint_names), points, stamp)


def trajectory_to_msg(command: JointTrajectoryCommand) -> JointTrajectory:
    """A JointTrajectory message (header.stamp from command.start_time_s; 0 = on arrival)."""
    msg = JointTrajectory()
    nanoseconds = int(round(command.start_time_s * 1e9))
    msg.header.stamp.sec = nanoseconds // 1_000_000_000
    msg.header.stamp.nanosec = nanoseconds % 1_000_000_000
    msg.joint_names = list(command.joint_names)
    for tfs, positions, velocities, accelerations in command.points:
        point = JointTrajectoryPoint()
        point.time_from_start = s_to_duration(tfs)
        point.positions = [float(v) for v in positions]
        point.velocities = [float(v) for v in velocities]
        point.accelerations = [float(v) for v in accelerations]
        msg.points.append(point)
    return msg
