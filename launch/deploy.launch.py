"""ros2 launch visuomotor deploy.launch.py robot:=fr3 policy:=<bundle> cameras:=<rig> rig:=<cell>

A thin adapter: the graph (nodes, parameters, remappings) comes from
visuomotor.ros.graph.deploy_graph, the same function the launch-free runner
(`visuomotor launch deploy ...`, `make demo`) starts. Nothing is declared here.
"""

from visuomotor.ros.graph import DEPLOY_ARGUMENTS, deploy_graph
from visuomotor.ros.launch_adapter import launch_description


def generate_launch_description():
    return launch_description(DEPLOY_ARGUMENTS, deploy_graph)
