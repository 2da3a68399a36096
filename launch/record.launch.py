"""ros2 launch visuomotor record.launch.py robot:=fr3 dataset:=<path> cameras:=<rig> rig:=<cell>

A thin adapter: the graph (nodes, parameters, remappings) comes from
visuomotor.ros.graph.record_graph, the same function the launch-free runner
(`visuomotor launch record ...`) starts. Nothing is declared here.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue

from visuomotor.ros.graph import RECORD_ARGUMENTS, record_graph


def _typed(parameters):
    # launch_ros would parse a plain string as YAML (task:=1 would become an int): keep the
    # graph's types exactly as the runner's params file does.
    return {k: ParameterValue(v, value_type=str) if isinstance(v, str) else v
            for k, v in parameters.items()}


def _nodes(context, *args, **kwargs):
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in RECORD_ARGUMENTS}
    return [Node(package=n.package, executable=n.executable, name=n.name,
                 parameters=[_typed(n.parameters)], remappings=list(n.remappings),
                 output='screen', emulate_tty=True)
            for n in record_graph(values)]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
         for a in RECORD_ARGUMENTS] + [OpaqueFunction(function=_nodes)])
