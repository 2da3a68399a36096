"""ros2 launch visuomotor calibrate.launch.py robot:=fr3 calibration:=<rig> cameras:=<rig> rig:=<cell>

The pre-session check: the capture helper moves the arm through the rig's verification
poses (through the safety bridge: arm it first) or, with mode:=operator, captures on each
/calibration_capture/capture call; then it verifies every camera and writes the record the
deploy and record graphs' gate checks. The graph comes from
visuomotor.ros.graph.calibrate_graph, the same function `visuomotor launch calibrate` runs.
"""

from visuomotor.ros.graph import CALIBRATE_ARGUMENTS, calibrate_graph
from visuomotor.ros.launch_adapter import launch_description


def generate_launch_description():
    return launch_description(CALIBRATE_ARGUMENTS, calibrate_graph)
