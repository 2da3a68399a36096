"""The node graph is described once: the launch files and the launch-free runner read it.

The `launch` package does not exist on these machines, so the launch files are executed
against minimal recording stand-ins of the four launch classes they use; what they would
hand to launch_ros is compared with what the runner starts.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from visuomotor.errors import VisuomotorError
from visuomotor.params import ParameterError
from visuomotor.ros import graph
from visuomotor.ros.runner import node_command, parse_launch_arguments, write_params_file

LAUNCH_DIR = Path(__file__).resolve().parents[2] / 'launch'


class _Recorded:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class _ParameterValue:
    def __init__(self, value: object, value_type: type) -> None:
        self.value, self.value_type = value, value_type


def _plain(parameters: dict[str, Any]) -> dict[str, Any]:
    """Parameters as launch_ros hands them to the node (typed values unwrapped)."""
    out = {}
    for key, value in parameters.items():
        if isinstance(value, _ParameterValue):
            assert isinstance(value.value, value.value_type)
            value = value.value
        else:
            assert not isinstance(value, str), f'{key}: a bare string would be parsed as YAML'
        out[key] = value
    return out


class _LaunchConfiguration:
    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context: dict[str, str]) -> str:
        return context[self.name]


@pytest.fixture
def fake_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    modules = {
        'launch': {'LaunchDescription': _Recorded},
        'launch.actions': {'DeclareLaunchArgument': _Recorded, 'OpaqueFunction': _Recorded},
        'launch.substitutions': {'LaunchConfiguration': _LaunchConfiguration},
        'launch_ros': {},
        'launch_ros.actions': {'Node': _Recorded},
        'launch_ros.parameter_descriptions': {'ParameterValue': _ParameterValue},
    }
    for name, members in modules.items():
        module = types.ModuleType(name)
        for key, value in members.items():
            setattr(module, key, value)
        monkeypatch.setitem(sys.modules, name, module)


def _load(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name.replace('.', '_'), LAUNCH_DIR / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _launch_nodes(file: str, arguments: tuple[graph.LaunchArgument, ...],
                  values: dict[str, str]) -> tuple[list[_Recorded], list[_Recorded]]:
    description = _load(file).generate_launch_description()
    entities = description.args[0]
    declared = [e for e in entities if 'default_value' in e.kwargs]
    opaque = [e for e in entities if 'function' in e.kwargs]
    assert [d.args[0] for d in declared] == [a.name for a in arguments]
    assert [d.kwargs['default_value'] for d in declared] == [a.default for a in arguments]
    context = types.SimpleNamespace(
        launch_configurations={a.name: a.default for a in arguments} | values)
    return declared, opaque[0].kwargs['function'](context)


DEPLOY = {'robot': 'sim', 'policy': 'pick_place_fr3', 'real_time_factor': '2.0'}
RECORD = {'robot': 'sim', 'dataset': '/tmp/demos', 'task': '1'}  # a task YAML reads as int
CALIBRATE = {'robot': 'sim', 'arm_on_start': 'true'}


@pytest.mark.parametrize(('file', 'build', 'arguments', 'values'), [
    ('deploy.launch.py', graph.deploy_graph, graph.DEPLOY_ARGUMENTS, DEPLOY),
    ('record.launch.py', graph.record_graph, graph.RECORD_ARGUMENTS, RECORD),
    ('calibrate.launch.py', graph.calibrate_graph, graph.CALIBRATE_ARGUMENTS, CALIBRATE),
])
def test_launch_file_and_runner_start_the_same_nodes(
        fake_launch: None, tmp_path: Path, file: str, build: Any,
        arguments: tuple[graph.LaunchArgument, ...], values: dict[str, str]) -> None:
    _, launched = _launch_nodes(file, arguments, values)
    expected = build(values)
    assert [n.kwargs['executable'] for n in launched] == [n.executable for n in expected]
    assert [n.kwargs['name'] for n in launched] == [n.name for n in expected]
    assert all(n.kwargs['package'] == 'visuomotor' for n in launched)
    for node, spec in zip(launched, expected, strict=True):
        assert [_plain(p) for p in node.kwargs['parameters']] == [dict(spec.parameters)]
        assert node.kwargs['remappings'] == list(spec.remappings)
        # The runner: same node name and parameters, run from the module of the executable.
        command = node_command(spec, write_params_file(spec, tmp_path))
        assert command[command.index('-m') + 1] == spec.module
        assert f'__node:={spec.name}' in command
        params = yaml.safe_load(Path(command[command.index('--params-file') + 1]).read_text())
        assert params['/**']['ros__parameters'] == dict(spec.parameters)


def test_the_launch_file_and_the_runner_call_the_same_function(
        fake_launch: None, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, str]] = []
    original = graph.deploy_graph

    def spy(args: dict[str, str]) -> list[graph.NodeSpec]:
        calls.append(dict(args))
        return original(args)

    monkeypatch.setattr(graph, 'deploy_graph', spy)
    _launch_nodes('deploy.launch.py', graph.DEPLOY_ARGUMENTS, DEPLOY)
    assert len(calls) == 1 and calls[0]['policy'] == 'pick_place_fr3'
    assert graph.GRAPHS['deploy'][0] is original and graph.GRAPHS['record'][0] is \
        graph.record_graph


def test_the_sim_deploy_graph_is_twin_policy_and_bridge_on_sim_time() -> None:
    nodes = {n.executable: n for n in graph.deploy_graph(DEPLOY)}
    assert sorted(nodes) == ['policy_node', 'safety_bridge', 'sim_node']
    assert nodes['sim_node'].parameters['real_time_factor'] == 2.0
    assert nodes['policy_node'].parameters['use_sim_time'] is True
    bridge = nodes['safety_bridge'].parameters
    assert (bridge['robot'], bridge['tier'], bridge['workspace']) == \
        ('fr3', 'commissioning', 'twin_fr3')
    assert bridge['arm_on_start'] is False


def test_a_real_robot_graph_captures_cameras_and_needs_a_cell() -> None:
    nodes = graph.deploy_graph({'robot': 'ur5e', 'policy': 'p', 'cameras': 'example_lab',
                                'rig': 'twin_ur5e'})
    assert [n.executable for n in nodes] == ['capture_node', 'policy_node', 'safety_bridge']
    assert all(n.parameters.get('use_sim_time') is False for n in nodes)
    with pytest.raises(VisuomotorError, match=r'rig:= is required for robot:=fr3'):
        graph.deploy_graph({'robot': 'fr3', 'policy': 'p', 'cameras': 'example_lab'})
    with pytest.raises(VisuomotorError, match=r'cameras:= is required'):
        graph.deploy_graph({'robot': 'fr3', 'policy': 'p'})
    with pytest.raises(VisuomotorError, match=r'arm_on_start:=true is for the twin only'):
        graph.deploy_graph({'robot': 'ur5e', 'policy': 'p', 'cameras': 'example_lab',
                            'rig': 'twin_ur5e', 'arm_on_start': 'true'})


@pytest.mark.parametrize(('args', 'message'), [
    ({'robot': 'kuka', 'policy': 'p'}, r"robot:='kuka' is not one of"),
    ({'robot': 'sim'}, r'policy:= is required'),
    ({'robot': 'sim', 'policy': 'p', 'polcy': 'q'}, r"unknown launch arguments \['polcy'\]"),
    ({'robot': 'sim', 'policy': 'p', 'arm_on_start': 'maybe'}, r'not a boolean'),
    ({'robot': 'sim', 'policy': 'p', 'real_time_factor': 'fast'}, r'not a number'),
])
def test_bad_launch_arguments_are_refused_by_name(args: dict[str, str], message: str) -> None:
    with pytest.raises(VisuomotorError, match=message):
        graph.deploy_graph(args)


def test_parameters_outside_the_node_schema_are_refused_before_anything_starts() -> None:
    with pytest.raises(ParameterError, match=r'safety_bridge.tier'):
        graph.deploy_graph({'robot': 'sim', 'policy': 'p', 'tier': 'reckless'})
    with pytest.raises(ParameterError, match=r'policy.modle: is not a parameter of policy_node'):
        graph.check_parameters(graph.NodeSpec('policy_node', 'policy',
                                              'visuomotor.ros.policy_node', {'modle': 'x'}))


def test_launch_arguments_parse_like_ros2_launch() -> None:
    assert parse_launch_arguments(['robot:=sim', 'policy:=a:=b']) == \
        {'robot': 'sim', 'policy': 'a:=b'}
    with pytest.raises(ValueError, match='name:=value'):
        parse_launch_arguments(['robot=sim'])


def test_the_runner_runs_stops_kills_and_restarts_node_processes(tmp_path: Path) -> None:
    from visuomotor.ros.runner import GraphProcesses

    sleeper = graph.NodeSpec('sim_node', 'sleeper', 'this_module_does_not_exist')
    with GraphProcesses([sleeper], tmp_path, env={'PYTHONPATH': ''}) as processes:
        processes.start()
        processes.processes['sleeper'].wait(30)
        assert processes.exited() == {'sleeper': 1}  # an unexpected exit is reported
        assert 'No module named this_module_does_not_exist' in processes.log_tail('sleeper')
    (tmp_path / 'idle_node.py').write_text('import time\ntime.sleep(120)\n')
    fine = graph.NodeSpec('sim_node', 'fine', 'idle_node')  # runs until stopped
    with GraphProcesses([fine], tmp_path, env={'PYTHONPATH': str(tmp_path)},
                        domain_id=42) as processes:
        processes.start()
        assert processes.env['ROS_DOMAIN_ID'] == '42'
        assert processes.env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'
        with pytest.raises(subprocess.TimeoutExpired):  # still running a second later
            processes.processes['fine'].wait(1.0)
        assert processes.alive('fine') and processes.exited() == {}
        processes.kill('fine')  # on purpose: not an unexpected exit
        assert not processes.alive('fine') and processes.exited() == {}
        processes.start('fine')
        assert processes.alive('fine')
    assert not processes.alive('fine')


def test_the_graphs_carry_the_calibration_gate() -> None:
    """Deploy and record check the camera rig's own calibration unless told otherwise; the
    calibrate graph renders the twin at the calibrated size with the rig's board."""
    deploy = {n.executable: n for n in graph.deploy_graph(DEPLOY)}
    assert deploy['policy_node'].parameters['calibration'] == 'twin_fr3'
    assert deploy['policy_node'].parameters['calibration_override'] == ''
    record = {n.executable: n for n in graph.record_graph(
        RECORD | {'calibration': '/data/cal/lab', 'calibration_override': 'bench day (ada)'})}
    assert record['recorder_node'].parameters['calibration'] == '/data/cal/lab'
    assert record['recorder_node'].parameters['calibration_override'] == 'bench day (ada)'
    calibrate = {n.executable: n for n in graph.calibrate_graph(CALIBRATE)}
    assert set(calibrate) == {'sim_node', 'safety_bridge', 'calibration_capture_node'}
    sim = calibrate['sim_node'].parameters
    assert (sim['image_width'], sim['image_height']) == (640, 480)
    assert str(sim['calibration_board']).endswith('calibration/twin_fr3')
    with pytest.raises(VisuomotorError, match='arm_on_start:=true is for the twin only'):
        graph.calibrate_graph({'robot': 'fr3', 'cameras': 'example_lab', 'rig': 'twin_fr3',
                               'arm_on_start': 'true'})


def test_the_record_graph_teleoperates_with_the_quest() -> None:
    """A real robot records with quest2ros by default; the twin reads the simulated Quest's
    topics and, with operator:=script, starts it; misuse is refused before anything runs."""
    real = {'robot': 'fr3', 'dataset': '/data/d', 'cameras': 'example_lab', 'rig': 'twin_fr3'}
    nodes = {n.executable: n for n in graph.record_graph(real)}
    assert nodes['teleop_node'].parameters['teleop'] == 'quest2ros'
    assert nodes['teleop_node'].parameters['use_sim_time'] is False
    assert 'sim_quest_node' not in nodes and nodes['safety_bridge'].parameters[
        'arm_on_start'] is False
    twin = [n.executable for n in graph.record_graph(RECORD | {'operator': 'script',
                                                               'episodes': '4'})]
    assert twin == ['sim_node', 'safety_bridge', 'teleop_node', 'sim_quest_node',
                    'recorder_node']
    assert 'teleop_node' not in {n.executable for n in graph.record_graph(
        RECORD | {'teleop': 'none'})}
    with pytest.raises(VisuomotorError, match='for the twin only'):
        graph.record_graph(real | {'operator': 'script'})
    with pytest.raises(VisuomotorError, match="reads, not 'quest2ros'"):
        graph.record_graph(RECORD | {'operator': 'script', 'teleop': 'quest2ros'})
    with pytest.raises(VisuomotorError, match='unknown teleop'):
        graph.record_graph(RECORD | {'teleop': 'vive'})


def test_launch_free_graphs_run_on_their_own_domain_unless_ros_domain_id_is_set() -> None:
    from visuomotor.ros.runner import graph_domain

    private = graph_domain({})
    assert not private.chosen and 10 <= private.domain_id <= 99
    assert private.env == {'ROS_DOMAIN_ID': str(private.domain_id),
                           'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    assert 'this host only' in private.describe()
    chosen = graph_domain({'ROS_DOMAIN_ID': '7'})
    assert chosen.chosen and chosen.domain_id == 7 and chosen.env == {'ROS_DOMAIN_ID': '7'}
    assert graph_domain({'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET'}).env[
        'ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'SUBNET'
    for bad in ('x', '-1', '300'):
        with pytest.raises(VisuomotorError, match='ROS_DOMAIN_ID'):
            graph_domain({'ROS_DOMAIN_ID': bad})


@pytest.mark.parametrize('build, args', [
    (graph.deploy_graph, {'policy': 'pick_place_fr3'}),
    (graph.record_graph, {'dataset': '/tmp/ds', 'operator': 'script'}),
    (graph.calibrate_graph, {}),
])
def test_twin_graphs_run_in_lockstep_with_every_node_on_simulated_time(build, args) -> None:
    nodes = build({'robot': 'sim', **args})
    sim = next(n for n in nodes if n.executable == 'sim_node')
    consumers = [n for n in nodes if n.parameters.get('use_sim_time') is True]
    assert consumers
    assert sim.parameters['lockstep_with'] == ','.join(n.name for n in consumers)
    assert all(n.parameters['lockstep'] is True for n in consumers)
    free = build({'robot': 'sim', 'lockstep': 'false', **args})
    assert 'lockstep_with' not in next(n for n in free if n.executable == 'sim_node').parameters
    assert not any('lockstep' in n.parameters for n in free)
    with pytest.raises(VisuomotorError, match='lockstep'):
        build({'robot': 'sim', 'lockstep': 'maybe', **args})
