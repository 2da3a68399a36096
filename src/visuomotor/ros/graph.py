"""The node graphs, described once: which nodes, with which parameters and remappings.

`deploy_graph` and `record_graph` turn launch arguments (which only select: a robot, a model,
a camera rig, a work cell) into a list of `NodeSpec`. Two consumers read the same list:

- launch/deploy.launch.py and launch/record.launch.py make launch_ros `Node` actions of them
  on a real ROS 2 install (`ros2 launch visuomotor deploy.launch.py robot:=fr3 ...`);
- the launch-free runner (`visuomotor.ros.runner`, used by `make demo` and the whole-graph
  tests on machines without the `launch` package) starts each as its own process, with the
  same executable, node name, parameters file and remappings.

Every parameter is checked against its node's schema here, so a typo fails before anything
starts, the same way in both consumers. This module does not import rclpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from visuomotor.errors import VisuomotorError
from visuomotor.params import Param, ParameterError, ParamValue

PACKAGE = 'visuomotor'
ROBOTS = ('fr3', 'panda', 'ur5', 'ur5e', 'sim')


@dataclass(frozen=True)
class LaunchArgument:
    """A launch argument: `name:=value` on the command line."""

    name: str
    default: str
    description: str


@dataclass(frozen=True)
class NodeSpec:
    """One node of a graph, as both launch_ros and the runner need it.

    Attributes:
        executable: the console script (setup.py entry point) of the package.
        name: node name.
        module: the Python module whose `main` the executable runs (the runner starts
            `python -m <module>` so it works from a source checkout too).
        parameters: node parameters (checked against the node's schema).
        remappings: (from, to) topic remappings.
    """

    executable: str
    name: str
    module: str
    parameters: Mapping[str, ParamValue] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()

    @property
    def package(self) -> str:
        """The ROS package (always this one)."""
        return PACKAGE


DEPLOY_ARGUMENTS = (
    LaunchArgument('robot', 'sim', f'robot: one of {", ".join(ROBOTS)} (sim: the MuJoCo twin '
                   'of `scene`, on simulated time)'),
    LaunchArgument('policy', '', 'policy bundle: a directory with policy.onnx, or a name '
                   'under models/'),
    LaunchArgument('cameras', '', 'camera rig file (config/cameras/<name>.yaml or a path); '
                   'empty: the twin rig of `scene` for robot:=sim, required otherwise'),
    LaunchArgument('rig', '', 'work cell: the TCP workspace box of the safety bridge '
                   '(config/workspaces/<name>.yaml or a path); empty: the twin cell for '
                   'robot:=sim, required otherwise'),
    LaunchArgument('tier', 'commissioning', 'safety limit tier (commissioning or nominal)'),
    LaunchArgument('scene', 'fr3', 'robot:=sim only: the twin scene (config/sim: fr3, ur5e)'),
    LaunchArgument('real_time_factor', '1.0', 'robot:=sim only: simulated seconds per wall '
                   'second'),
    LaunchArgument('lockstep', 'true', 'robot:=sim only: simulated time never runs ahead of '
                   "the other nodes by more than the sim node's max_lead_s (a loaded machine "
                   'slows the twin down instead of starving its consumers); false: the twin '
                   'runs free, like a real robot'),
    LaunchArgument('seed', '0', 'robot:=sim only: task seed of the first episode (the sim '
                   "node's ~/reset moves to the next)"),
    LaunchArgument('backend', 'tensorrt,onnxruntime,torch', 'inference backends in order of '
                   'preference'),
    LaunchArgument('arm_on_start', 'false', 'arm the safety bridge as soon as joint states '
                   'arrive (the twin demo); on a real robot call /safety_bridge/arm'),
    LaunchArgument('calibration', '', 'rig calibration folder (a name under calibration/ or '
                   'a path) whose newest verification must have passed; empty: the camera '
                   "rig's name"),
    LaunchArgument('calibration_override', '', 'start WITHOUT a passing, recent camera '
                   'verification: the reason (logged loudly, stored with recorded episodes)'),
)

RECORD_ARGUMENTS = (
    LaunchArgument('robot', 'sim', f'robot: one of {", ".join(ROBOTS)}'),
    LaunchArgument('dataset', '', 'dataset path (episodes append)'),
    LaunchArgument('cameras', '', 'camera rig file; empty: the twin rig for robot:=sim'),
    LaunchArgument('rig', '', 'work cell (TCP workspace box); empty: the twin cell for '
                   'robot:=sim'),
    LaunchArgument('task', 'task', 'task description stored with each episode'),
    LaunchArgument('tier', 'commissioning', 'safety limit tier'),
    LaunchArgument('scene', 'fr3', 'robot:=sim only: the twin scene'),
    LaunchArgument('real_time_factor', '1.0', 'robot:=sim only: simulated seconds per wall '
                   'second'),
    LaunchArgument('lockstep', 'true', 'robot:=sim only: simulated time never runs ahead of '
                   "the other nodes by more than the sim node's max_lead_s (a loaded machine "
                   'slows the twin down instead of starving its consumers); false: the twin '
                   'runs free, like a real robot'),
    LaunchArgument('seed', '0', 'robot:=sim only: task seed of the first episode'),
    LaunchArgument('calibration', '', 'rig calibration folder (a name under calibration/ or '
                   'a path) whose newest verification must have passed; empty: the camera '
                   "rig's name"),
    LaunchArgument('calibration_override', '', 'start WITHOUT a passing, recent camera '
                   'verification: the reason (logged loudly, stored with recorded episodes)'),
    LaunchArgument('teleop', '', 'teleop config (config/teleop/<name>.yaml or a path); empty: '
                   'sim_quest for robot:=sim, quest2ros otherwise; none: no teleop node (the '
                   'arm is commanded by something else)'),
    LaunchArgument('operator', '', "robot:=sim only: 'script' starts the simulated Quest, "
                   'which plays a scripted session; empty: a real controller drives the twin'),
    LaunchArgument('episodes', '3', 'operator:=script: kept episodes of the scripted session '
                   '(plus one discarded)'),
    LaunchArgument('arm_on_start', 'false', 'robot:=sim only: arm the safety bridge at once'),
)


def _flag(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value not in ('true', 'false', '1', '0', 'yes', 'no'):
        raise VisuomotorError(f'{name}:={text!r} is not a boolean; use true or false')
    return value in ('true', '1', 'yes')


def _arm_on_start(values: Mapping[str, str], sim: bool, robot: str) -> bool:
    """The `arm_on_start` argument, refused on a real robot (arming there is a person's call)."""
    arm = _flag(values['arm_on_start'], 'arm_on_start')
    if arm and not sim:
        raise VisuomotorError(f'arm_on_start:=true is for the twin only; on robot:={robot} arm '
                              'with `ros2 service call /safety_bridge/arm std_srvs/srv/Trigger` '
                              'once the cell is clear')
    return arm


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise VisuomotorError(f'{name}:={text!r} is not a number') from None


def _schemas() -> dict[str, tuple[Param, ...]]:
    from visuomotor.calibration.node_schema import CALIBRATION_CAPTURE_PARAMS
    from visuomotor.cameras.node_schema import CAPTURE_NODE_PARAMS
    from visuomotor.policy.node_schema import POLICY_NODE_PARAMS
    from visuomotor.recording.node_schema import RECORDER_NODE_PARAMS
    from visuomotor.safety.node_schema import BRIDGE_NODE_PARAMS
    from visuomotor.sim.node_schema import SIM_NODE_PARAMS
    from visuomotor.teleop.node_schema import SIM_QUEST_NODE_PARAMS, TELEOP_NODE_PARAMS

    return {'sim_node': SIM_NODE_PARAMS, 'safety_bridge': BRIDGE_NODE_PARAMS,
            'policy_node': POLICY_NODE_PARAMS, 'capture_node': CAPTURE_NODE_PARAMS,
            'recorder_node': RECORDER_NODE_PARAMS,
            'calibration_capture_node': CALIBRATION_CAPTURE_PARAMS,
            'teleop_node': TELEOP_NODE_PARAMS, 'sim_quest_node': SIM_QUEST_NODE_PARAMS}


def check_parameters(node: NodeSpec) -> None:
    """Every parameter exists in the node's schema and has a valid value.

    Raises:
        ParameterError: naming the node, the parameter and what is allowed.
    """
    schema = {p.name: p for p in _schemas()[node.executable]}
    for name, value in node.parameters.items():
        if name == 'use_sim_time':
            if not isinstance(value, bool):
                raise ParameterError(f'{node.name}.use_sim_time', 'must be a bool')
            continue
        if name not in schema:
            raise ParameterError(f'{node.name}.{name}', f'is not a parameter of '
                                 f'{node.executable} (it has {sorted(schema)})')
        try:
            schema[name].check(value)
        except ParameterError as exc:
            raise ParameterError(f'{node.name}.{name}',
                                 str(exc).split(': ', 1)[-1]) from None


def _robot_and_cell(args: Mapping[str, str]) -> tuple[str, bool, str, str]:
    robot = args.get('robot', 'sim')
    if robot not in ROBOTS:
        raise VisuomotorError(f'robot:={robot!r} is not one of {list(ROBOTS)}')
    sim = robot == 'sim'
    cameras, cell = args.get('cameras', ''), args.get('rig', '')
    if sim:
        from visuomotor.sim.config import load_scene

        robot = load_scene(args.get('scene', 'fr3')).robot.name
        cameras = cameras or f'twin_{robot}'  # every twin scene of a robot has its cameras
        cell = cell or f'twin_{robot}'
    for name, value in (('cameras', cameras), ('rig', cell)):
        if not value:
            raise VisuomotorError(f'{name}:= is required for robot:={robot} (the '
                                  f'{"camera rig" if name == "cameras" else "work cell"} '
                                  'file); see launch/README.md')
    return robot, sim, cameras, cell


def _gate(args: Mapping[str, str], cameras: str) -> dict[str, ParamValue]:
    """The calibration gate's parameters (policy node, recorder).

    The camera rig's own calibration folder unless `calibration` names another.
    """
    from visuomotor.cameras.rig import load_rig

    return {'calibration': args.get('calibration') or load_rig(cameras).name,
            'calibration_override': args.get('calibration_override', '')}


def _sim_and_capture(args: Mapping[str, str], sim: bool, cameras: str,
                     sim_extra: Mapping[str, ParamValue] | None = None) -> list[NodeSpec]:
    from visuomotor.cameras.rig import load_rig

    nodes = []
    if sim:
        nodes.append(NodeSpec('sim_node', 'sim', 'visuomotor.ros.sim_node', {
            'scene': args.get('scene', 'fr3'),
            'real_time_factor': _number(args.get('real_time_factor', '1.0'),
                                        'real_time_factor'),
            'seed': int(_number(args.get('seed', '0'), 'seed')), **(sim_extra or {})}))
    rig = load_rig(cameras)
    if any(c.backend != 'sim' for c in rig.cameras):
        nodes.append(NodeSpec('capture_node', 'capture', 'visuomotor.ros.capture_node',
                              {'rig': cameras, 'use_sim_time': sim}))
    return nodes


def _in_lockstep(nodes: list[NodeSpec], values: Mapping[str, str], sim: bool
                 ) -> list[NodeSpec]:
    """On the twin with lockstep:=true, the sim node waits for every node on simulated time."""
    if not sim or not _flag(values['lockstep'], 'lockstep'):
        return nodes
    consumers = [n.name for n in nodes if n.parameters.get('use_sim_time') is True]
    return [replace(n, parameters={**n.parameters, 'lockstep_with': ','.join(consumers)})
            if n.executable == 'sim_node' else
            replace(n, parameters={**n.parameters, 'lockstep': True}) if n.name in consumers
            else n for n in nodes]


def _with_defaults(args: Mapping[str, str], arguments: tuple[LaunchArgument, ...],
                   graph: str) -> dict[str, str]:
    """Every argument's value (defaults filled in); unknown names are refused."""
    names = [a.name for a in arguments]
    unknown = sorted(set(args) - set(names))
    if unknown:
        raise VisuomotorError(f'unknown launch arguments {unknown}; {graph} takes {names}')
    return {a.name: a.default for a in arguments} | dict(args)


def deploy_graph(args: Mapping[str, str]) -> list[NodeSpec]:
    """The deployment graph: (twin or capture) + policy + safety bridge.

    Args:
        args: launch argument values by name (DEPLOY_ARGUMENTS; missing ones take defaults).
    """
    values = _with_defaults(args, DEPLOY_ARGUMENTS, 'deploy')
    robot, sim, cameras, cell = _robot_and_cell(values)
    if not values['policy']:
        raise VisuomotorError('policy:= is required: a bundle directory or a name under '
                              'models/ (e.g. policy:=pick_place_fr3)')
    arm_on_start = _arm_on_start(values, sim, robot)
    nodes = _sim_and_capture(values, sim, cameras)
    nodes.append(NodeSpec('policy_node', 'policy', 'visuomotor.ros.policy_node', {
        'model': values['policy'], 'robot': robot, 'backend': values['backend'],
        **_gate(values, cameras), 'use_sim_time': sim}))
    nodes.append(NodeSpec('safety_bridge', 'safety_bridge', 'visuomotor.ros.bridge_node', {
        'robot': robot, 'tier': values['tier'], 'workspace': cell,
        'arm_on_start': arm_on_start,
        'use_sim_time': sim}))
    nodes = _in_lockstep(nodes, values, sim)
    for node in nodes:
        check_parameters(node)
    return nodes


def record_graph(args: Mapping[str, str]) -> list[NodeSpec]:
    """The recording graph: (twin or capture) + safety bridge + recorder + teleop.

    Teleop is Quest -> mapping -> IK -> the bridge; its buttons start, stop and discard
    episodes. On the twin, operator:=script adds the simulated Quest playing a session.
    """
    values = _with_defaults(args, RECORD_ARGUMENTS, 'record')
    robot, sim, cameras, cell = _robot_and_cell(values)
    if not values['dataset']:
        raise VisuomotorError('dataset:= is required: where episodes are recorded')
    arm_on_start = _arm_on_start(values, sim, robot)
    operator = values['operator']
    if operator and not sim:
        raise VisuomotorError(f'operator:={operator} is for the twin only; on robot:={robot} '
                              'teleoperate with the real controller')
    if operator not in ('', 'script'):
        raise VisuomotorError(f"operator:={operator!r}: use 'script' (the simulated Quest) or "
                              'leave it empty (a real controller)')
    teleop = values['teleop'] or ('sim_quest' if sim else 'quest2ros')
    if operator and teleop != 'sim_quest':
        raise VisuomotorError(f'operator:=script publishes what teleop:=sim_quest reads, not '
                              f'{teleop!r}')
    nodes = _sim_and_capture(values, sim, cameras)
    nodes.append(NodeSpec('safety_bridge', 'safety_bridge', 'visuomotor.ros.bridge_node', {
        'robot': robot, 'tier': values['tier'], 'workspace': cell,
        'arm_on_start': arm_on_start, 'use_sim_time': sim}))
    if teleop != 'none':
        from visuomotor.teleop.config import load_teleop_config

        load_teleop_config(teleop)  # a bad file fails here, before anything starts
        nodes.append(NodeSpec('teleop_node', 'teleop', 'visuomotor.ros.teleop_node', {
            'teleop': teleop, 'robot': robot, 'tier': values['tier'], 'use_sim_time': sim}))
    if operator:
        nodes.append(NodeSpec('sim_quest_node', 'sim_quest', 'visuomotor.ros.sim_quest_node', {
            'episodes': int(_number(values['episodes'], 'episodes')), 'use_sim_time': True}))
    nodes.append(NodeSpec('recorder_node', 'recorder', 'visuomotor.ros.recorder_node', {
        'dataset': str(Path(values['dataset']).expanduser()), 'rig': cameras, 'robot': robot,
        'task': values['task'], **_gate(values, cameras), 'use_sim_time': sim}))
    nodes = _in_lockstep(nodes, values, sim)
    for node in nodes:
        check_parameters(node)
    return nodes


CALIBRATE_ARGUMENTS = (
    LaunchArgument('robot', 'sim', f'robot: one of {", ".join(ROBOTS)}'),
    LaunchArgument('calibration', '', 'rig calibration folder (a name under calibration/ or '
                   "a path); empty: the camera rig's name"),
    LaunchArgument('cameras', '', 'camera rig file; empty: the twin rig for robot:=sim'),
    LaunchArgument('rig', '', 'work cell (TCP workspace box); empty: the twin cell for '
                   'robot:=sim'),
    LaunchArgument('mode', 'robot', 'robot: move through the verification poses via the '
                   'safety bridge (arm it first: /safety_bridge/arm); operator: capture on '
                   '/calibration_capture/capture calls'),
    LaunchArgument('out', '', 'capture folder (empty: <calibration>/captures/<time>)'),
    LaunchArgument('tier', 'commissioning', 'safety limit tier'),
    LaunchArgument('scene', 'fr3', 'robot:=sim only: the twin scene'),
    LaunchArgument('real_time_factor', '1.0', 'robot:=sim only: simulated seconds per wall '
                   'second'),
    LaunchArgument('lockstep', 'true', 'robot:=sim only: simulated time never runs ahead of '
                   "the other nodes by more than the sim node's max_lead_s (a loaded machine "
                   'slows the twin down instead of starving its consumers); false: the twin '
                   'runs free, like a real robot'),
    LaunchArgument('arm_on_start', 'false', 'robot:=sim only: arm the bridge at once'),
)


def calibrate_graph(args: Mapping[str, str]) -> list[NodeSpec]:
    """The verification graph: (twin or capture) + safety bridge + the capture helper.

    On the twin (robot:=sim), the sim node renders at the calibrated resolution and places
    the rig's ChArUco board where its board.yaml says.
    """
    values = _with_defaults(args, CALIBRATE_ARGUMENTS, 'calibrate')
    robot, sim, cameras, cell = _robot_and_cell(values)
    calibration = _gate(values, cameras)['calibration']
    arm_on_start = _arm_on_start(values, sim, robot)
    sim_extra: dict[str, ParamValue] = {}
    if sim:
        from visuomotor.calibration.rig_files import load_rig_calibration

        rig = load_rig_calibration(str(calibration))
        width, height = {(c.intrinsics.width, c.intrinsics.height)
                         for c in rig.cameras.values()}.pop()
        sim_extra = {'image_width': width, 'image_height': height,
                     'calibration_board': str(rig.folder)}
    nodes = _sim_and_capture(values, sim, cameras, sim_extra)
    nodes.append(NodeSpec('safety_bridge', 'safety_bridge', 'visuomotor.ros.bridge_node', {
        'robot': robot, 'tier': values['tier'], 'workspace': cell,
        'arm_on_start': arm_on_start, 'use_sim_time': sim}))
    nodes.append(NodeSpec('calibration_capture_node', 'calibration_capture',
                          'visuomotor.ros.calibration_capture_node', {
                              'calibration': str(calibration), 'robot': robot,
                              'mode': values['mode'], 'out': values['out'],
                              'use_sim_time': sim}))
    nodes = _in_lockstep(nodes, values, sim)
    for node in nodes:
        check_parameters(node)
    return nodes


GRAPHS = {'deploy': (deploy_graph, DEPLOY_ARGUMENTS), 'record': (record_graph, RECORD_ARGUMENTS),
          'calibrate': (calibrate_graph, CALIBRATE_ARGUMENTS)}
