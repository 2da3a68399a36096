"""A node graph of `visuomotor.ros.graph` as a launch_ros description.

The one body of launch/*.launch.py: each declares the graph's launch arguments and, once
they are resolved, turns the graph function's NodeSpecs into launch_ros Node actions. The
launch packages are imported on call: they exist only on real ROS 2 installs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any

from visuomotor.ros.graph import LaunchArgument, NodeSpec


def _typed(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters with their strings typed as strings.

    launch_ros would parse a plain string as YAML (task:=1 would become an int): keep the
    graph's types exactly as the runner's params file does.
    """
    value = import_module('launch_ros.parameter_descriptions').ParameterValue
    return {k: value(v, value_type=str) if isinstance(v, str) else v
            for k, v in parameters.items()}


def launch_description(arguments: Sequence[LaunchArgument],
                       graph: Callable[[Mapping[str, str]], list[NodeSpec]]) -> Any:
    """The LaunchDescription declaring `arguments` and starting `graph(values)`."""
    launch, actions = import_module('launch'), import_module('launch.actions')
    configuration = import_module('launch.substitutions').LaunchConfiguration
    node = import_module('launch_ros.actions').Node

    def nodes(context: Any, *args: Any, **kwargs: Any) -> list[Any]:
        values = {a.name: configuration(a.name).perform(context) for a in arguments}
        return [node(package=n.package, executable=n.executable, name=n.name,
                     parameters=[_typed(n.parameters)], remappings=list(n.remappings),
                     output='screen', emulate_tty=True)
                for n in graph(values)]

    return launch.LaunchDescription(
        [actions.DeclareLaunchArgument(a.name, default_value=a.default,
                                       description=a.description)
         for a in arguments] + [actions.OpaqueFunction(function=nodes)])
