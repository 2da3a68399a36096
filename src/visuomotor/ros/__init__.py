"""The ROS 2 layer: the only part of visuomotor that imports rclpy and ROS message types.

Nodes here declare parameters, convert messages to the core's value objects and call the
pure core; all logic lives outside this package.
"""
