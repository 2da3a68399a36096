"""Teleoperation (pure): Quest controller samples -> clutch mapping -> IK -> joint targets.

The ROS side (visuomotor.ros.teleop_node, visuomotor.ros.teleop_sources) only converts
messages and publishes; every decision is made here and tested without ROS.
"""
