"""A node graph of `visuomotor.ros.graph` as a launch_ros description.

The one body of launch/*.launch.py: each declares the graph's launch arguments and, once
they are resolved, turns the graph function's NodeSpecs into launch_ros Node actions. The
launch packages are imported on call: they exist only on real ROS 2 installs.

Written against ros2/launch 3.x and ros2/launch_ros (Jazzy, Kilted), whose APIs it relies on:

- `OpaqueFunction(function=f)` calls `f(context)` with the LaunchContext once the
  DeclareLaunchArgument actions before it ran, so `context.launch_configurations` (a dict)
  holds every declared argument (given or defaulted) and every other configuration set so
  far: `name:=value` pairs given to `ros2 launch` arrive there through
  IncludeLaunchDescription's SetLaunchConfiguration actions, including names nothing
  declares (launch/actions/include_launch_description.py only checks that required ones are
  present). So unknown names are refused here, as the launch-free runner refuses them.
- `Node(..., on_exit=f)`: ExecuteLocal registers `OnProcessExit(target_action=<the node>,
  on_exit=f)` and calls `f(event, context)` with a `launch.events.process.ProcessExited`
  (`returncode`, `action`) when that process ends (launch/actions/execute_local.py,
  event_handlers/on_process_exit.py). We return `LogInfo` and `Shutdown(reason=...)`, which
  emits the Shutdown event: launch then stops every other process (SIGINT, then SIGTERM
  after `sigterm_timeout`, then SIGKILL after `sigkill_timeout`, 5 s each by default).
  Nothing is emitted once `context.is_shutdown` (the graph is already stopping).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import import_module
from typing import Any

from visuomotor.errors import VisuomotorError
from visuomotor.ros.graph import LaunchArgument, NodeSpec

# Launch configurations that launch and launch_ros set for themselves, not launch arguments:
# 'emulate_tty' (launch/actions/execute_local.py), 'ros_namespace' (PushRosNamespace),
# 'global_params' (SetParameter, SetParametersFromFile), 'ros_remaps' (SetRemap), and
# 'anon<name>' (the AnonName substitution).
LAUNCH_INTERNAL_CONFIGURATIONS = frozenset({'emulate_tty', 'ros_namespace', 'global_params',
                                            'ros_remaps'})

# What a node's exit code means, for the reason the graph stops.
EXIT_MEANINGS = {0: 'finished', 2: 'refused to start or run (its message is above)',
                 130: 'stopped by SIGINT during cleanup', 143: 'stopped by SIGTERM during cleanup'}


def graph_arguments(configurations: Mapping[str, object],
                    arguments: Sequence[LaunchArgument], graph: str) -> dict[str, str]:
    """The graph's argument values out of launch's `context.launch_configurations`.

    Args:
        configurations: every launch configuration set when the graph is built.
        arguments: the graph's declared arguments.
        graph: the graph's name (messages).

    Raises:
        VisuomotorError: naming the configurations that are not arguments of the graph
            and listing the valid ones (a misspelt `polcy:=` must not be ignored).
    """
    names = [a.name for a in arguments]
    unknown = unknown_arguments(configurations, names)
    if unknown:
        raise VisuomotorError(
            f'unknown launch arguments {unknown}; {graph} takes {names}. (Including this '
            'launch file from another one? Launch configurations are not scoped per include: '
            'include it inside GroupAction(scoped=True, forwarding=False, '
            'launch_configurations={...}) with only its own arguments.)')
    return {a.name: str(configurations.get(a.name, a.default)) for a in arguments}


def unknown_arguments(configurations: Iterable[str], names: Iterable[str]) -> list[str]:
    """The configuration names that are neither declared nor launch's own, sorted."""
    declared = set(names)
    return sorted(c for c in configurations if c not in declared
                  and c not in LAUNCH_INTERNAL_CONFIGURATIONS and not c.startswith('anon'))


def exit_reason(node: str, executable: str, returncode: int) -> str:
    """Why the graph stops when `node` ended with `returncode`."""
    meaning = EXIT_MEANINGS.get(returncode, 'failed' if returncode > 0 else
                                f'killed by signal {-returncode}')
    return (f'node {node!r} ({executable}) exited with code {returncode} ({meaning}): '
            'stopping the graph')


def _typed(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters with their strings typed as strings.

    launch_ros would parse a plain string as YAML (task:=1 would become an int): keep the
    graph's types exactly as the runner's params file does.
    """
    value = import_module('launch_ros.parameter_descriptions').ParameterValue
    return {k: value(v, value_type=str) if isinstance(v, str) else v
            for k, v in parameters.items()}


def _stop_graph_on_exit(spec: NodeSpec) -> Callable[[Any, Any], list[Any] | None]:
    """The `on_exit` of a node: any exit of one node stops the whole graph, with the reason.

    A policy node refusing at the calibration gate (exit 2) must not leave the twin and the
    bridge running; a capture helper that finished (exit 0) ends the calibration graph.
    """
    def on_exit(event: Any, context: Any) -> list[Any] | None:
        if context.is_shutdown:
            return None  # the graph is already stopping (Ctrl-C, or another node's exit)
        actions = import_module('launch.actions')
        reason = exit_reason(spec.name, spec.executable, int(event.returncode))
        return [actions.LogInfo(msg=reason), actions.Shutdown(reason=reason)]
    return on_exit


def launch_description(arguments: Sequence[LaunchArgument],
                       graph: Callable[[Mapping[str, str]], list[NodeSpec]]) -> Any:
    """The LaunchDescription declaring `arguments` and starting `graph(values)`.

    Unknown arguments are refused (VisuomotorError, shown by `ros2 launch`), and the graph
    stops as soon as any of its nodes exits.
    """
    launch, actions = import_module('launch'), import_module('launch.actions')
    node = import_module('launch_ros.actions').Node
    name = graph.__name__.removesuffix('_graph')

    def nodes(context: Any, *args: Any, **kwargs: Any) -> list[Any]:
        values = graph_arguments(context.launch_configurations, arguments, name)
        return [node(package=n.package, executable=n.executable, name=n.name,
                     parameters=[_typed(n.parameters)], remappings=list(n.remappings),
                     output='screen', emulate_tty=True, on_exit=_stop_graph_on_exit(n))
                for n in graph(values)]

    return launch.LaunchDescription(
        [actions.DeclareLaunchArgument(a.name, default_value=a.default,
                                       description=a.description)
         for a in arguments] + [actions.OpaqueFunction(function=nodes)])
