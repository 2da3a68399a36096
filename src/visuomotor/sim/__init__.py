"""The MuJoCo twin of the robots, their cameras and their drivers' interfaces.

Physics on simulated time (twin.py), the task and its scripted expert, calibration boards
and captures on the twin, and in-process policy rollouts. The ROS node is
visuomotor.ros.sim_node. This file makes `sim` a regular package: without it,
`find_packages` (setup.py) leaves the folder out of the colcon install.
"""
