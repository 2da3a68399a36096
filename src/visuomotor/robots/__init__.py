"""Robot descriptions (published kinematics, limits, controller names) and kinematics.

Pure code: the twin builds its MuJoCo arms from these descriptions, and the safety bridge
and teleop IK use the same forward kinematics, so there is one source for every number.
"""

from visuomotor.robots.description import (
    ControllerNames,
    DHRow,
    GripperSpec,
    JointSpec,
    RobotDescription,
    available_robots,
    load_robot,
)
from visuomotor.robots.kinematics import forward_kinematics, jacobian, link_frames, tcp_pose

__all__ = [
    'ControllerNames', 'DHRow', 'GripperSpec', 'JointSpec', 'RobotDescription',
    'available_robots', 'forward_kinematics', 'jacobian', 'link_frames', 'load_robot',
    'tcp_pose',
]
