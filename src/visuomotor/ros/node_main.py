"""Shared pieces of the nodes' executables: poses as messages and the process entry point."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from visuomotor.errors import VisuomotorError
from visuomotor.robots.transforms import Matrix, quat_from_matrix

NodeT = TypeVar('NodeT', bound=Node)


def pose_to_msg(pose: Matrix, stamp: Time, frame_id: str) -> PoseStamped:
    """A 4x4 homogeneous pose as geometry_msgs/PoseStamped."""
    msg = PoseStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v)
                                                                     for v in pose[:3, 3])
    w, x, y, z = quat_from_matrix(pose)
    msg.pose.orientation.w, msg.pose.orientation.x = float(w), float(x)
    msg.pose.orientation.y, msg.pose.orientation.z = float(y), float(z)
    return msg


def run_node(name: str, make: Callable[[], NodeT], args: list[str] | None,
             spin: Callable[[NodeT, SingleThreadedExecutor], None] | None = None) -> int:
    """Run one node as a process: init, build, spin until Ctrl-C, clean up.

    A VisuomotorError while building (a bad parameter, an unsafe profile) refuses to start:
    the message goes to stderr and the exit code is 2.
    """
    rclpy.init(args=args)
    try:
        node = make()
    except VisuomotorError as error:
        print(f'{name}: refusing to start: {error}', file=sys.stderr)  # noqa: T201
        rclpy.try_shutdown()
        return 2
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if spin is None:
            executor.spin()
        else:
            spin(node, executor)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
