"""The launch files: what can be checked without the `launch` package (not installable here).

The adapter's pure parts (which launch configurations are unknown arguments, why a graph
stops) run here; the installed launch files load from the install space alone and their
graphs start only executables that lib/visuomotor has. What launch itself does with the
description (OnProcessExit -> Shutdown, the unknown-argument error) needs a ROS 2 install.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from visuomotor.errors import VisuomotorError
from visuomotor.ros import graph
from visuomotor.ros.launch_adapter import (
    LAUNCH_INTERNAL_CONFIGURATIONS,
    exit_reason,
    graph_arguments,
    unknown_arguments,
)

DEPLOY_NAMES = [a.name for a in graph.DEPLOY_ARGUMENTS]


def test_a_misspelt_launch_argument_is_refused_with_the_valid_names() -> None:
    configurations = {'robot': 'sim', 'polcy': 'pick_place_fr3', 'policy': ''}
    with pytest.raises(VisuomotorError) as error:
        graph_arguments(configurations, graph.DEPLOY_ARGUMENTS, 'deploy')
    message = str(error.value)
    assert "unknown launch arguments ['polcy']" in message
    assert f'deploy takes {DEPLOY_NAMES}' in message


def test_the_runner_and_the_launch_file_refuse_the_same_names() -> None:
    given = {'robot': 'sim', 'policy': 'p', 'polcy': 'q', 'seeds': '1'}
    with pytest.raises(VisuomotorError, match=r"unknown launch arguments \['polcy', 'seeds'\]"):
        graph.deploy_graph(given)
    with pytest.raises(VisuomotorError, match=r"unknown launch arguments \['polcy', 'seeds'\]"):
        graph_arguments(given, graph.DEPLOY_ARGUMENTS, 'deploy')


def test_launch_s_own_configurations_are_not_arguments() -> None:
    """PushRosNamespace, SetParameter, SetRemap, emulate_tty and AnonName set these."""
    configurations = dict.fromkeys(LAUNCH_INTERNAL_CONFIGURATIONS, 'x')
    configurations |= {'anonpolicy': 'policy_123', 'robot': 'sim'}
    assert unknown_arguments(configurations, DEPLOY_NAMES) == []


def test_the_declared_arguments_come_back_as_strings_with_defaults_filled_in() -> None:
    values = graph_arguments({'robot': 'sim', 'policy': 'pick_place_fr3', 'ros_namespace': '/a'},
                             graph.DEPLOY_ARGUMENTS, 'deploy')
    assert list(values) == DEPLOY_NAMES
    assert values['policy'] == 'pick_place_fr3' and values['tier'] == 'commissioning'
    assert graph.deploy_graph(values) == graph.deploy_graph({'policy': 'pick_place_fr3'})


@pytest.mark.parametrize(('code', 'meaning'), [
    (2, 'refused to start or run'), (0, 'finished'), (1, 'failed'),
    (-9, 'killed by signal 9'), (130, 'stopped by SIGINT during cleanup')])
def test_the_reason_a_graph_stops_names_the_node_and_its_exit(code: int, meaning: str) -> None:
    reason = exit_reason('policy', 'policy_node', code)
    assert reason.startswith(f"node 'policy' (policy_node) exited with code {code} ({meaning}")
    assert reason.endswith('stopping the graph')


def test_the_adapter_loads_without_the_launch_package() -> None:
    """Importing it is fine here; building a description needs `launch` (imported on call)."""
    from visuomotor.ros.launch_adapter import launch_description

    # ("No module named 'launch.actions'" when the repository root is on sys.path: its
    # launch/ folder then imports as a namespace package)
    with pytest.raises(ModuleNotFoundError, match="No module named 'launch"):
        launch_description(graph.DEPLOY_ARGUMENTS, graph.deploy_graph)


_LAUNCH_FILES = r"""
import importlib.util, json, sys
from pathlib import Path
from visuomotor.ros import graph
share = Path(sys.argv[1])
out = {}
for path in sorted((share / 'launch').glob('*.launch.py')):
    spec = importlib.util.spec_from_file_location(path.stem.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # imports visuomotor.ros.graph and the adapter
    assert callable(module.generate_launch_description)
    out[path.name] = module.__file__
args = {'deploy': {'policy': 'pick_place_fr3'}, 'record': {'dataset': sys.argv[2]},
        'calibrate': {}}
nodes = {name: [n.executable for n in function(args[name])]
         for name, (function, _) in graph.GRAPHS.items()}
print(json.dumps({'files': out, 'nodes': nodes, 'graph': graph.__file__}))
"""


@pytest.mark.slow
def test_the_installed_launch_files_load_and_start_installed_executables(
        colcon_workspace: Path, install_env: dict[str, str], tmp_path: Path) -> None:
    prefix = colcon_workspace / 'install' / 'visuomotor'
    share = prefix / 'share' / 'visuomotor'
    result = subprocess.run([sys.executable, '-c', _LAUNCH_FILES, str(share),
                             str(tmp_path / 'dataset')], cwd=tmp_path, env=install_env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert sorted(found['files']) == ['calibrate.launch.py', 'deploy.launch.py',
                                      'record.launch.py']
    assert Path(found['graph']).is_relative_to(prefix)
    executables = {p.name for p in (prefix / 'lib' / 'visuomotor').iterdir()}
    for name, nodes in found['nodes'].items():
        assert nodes and set(nodes) <= executables, (name, nodes)
