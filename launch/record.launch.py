"""ros2 launch visuomotor record.launch.py robot:=fr3 dataset:=<path> cameras:=<rig> rig:=<cell>

A thin adapter: the graph (nodes, parameters, remappings) comes from
visuomotor.ros.graph.record_graph, the same function the launch-free runner
(`visuomotor launch record ...`) starts. Nothing is declared here.
"""

from visuomotor.ros.graph import RECORD_ARGUMENTS, record_graph
from visuomotor.ros.launch_adapter import launch_description


def generate_launch_description():
    return launch_description(RECORD_ARGUMENTS, record_graph)
