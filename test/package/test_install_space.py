"""The colcon install space works on its own, as `ros2 run`, `ros2 launch` and the Docker image
use it: every module imports from it and every executable in lib/visuomotor comes up.

The source tree is kept out: the environment is what `source install/setup.bash` gives in a
shell without PYTHONPATH, and every imported module must come from the install (the venv's
editable install of the checkout cannot supply `visuomotor`: the installed `visuomotor` is a
regular package, so its submodules are looked up only in its own folder, which is checked).
"""

from __future__ import annotations

import configparser
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO, FollowedProcess

pytestmark = pytest.mark.slow

TWIN = ['use_sim_time:=true']
OVERRIDE = 'calibration_override:=install_space_test'

# Each executable with the smallest parameters that let it run on the twin's configuration
# (no hardware, no graph around it); every node logs "<executable> running" once it is built
# and spinning (visuomotor.ros.node_main.run_node).
EXECUTABLES: dict[str, list[str]] = {
    'sim_node': ['scene:=fr3'],
    'safety_bridge': ['robot:=fr3', 'workspace:=twin_fr3', *TWIN],
    'policy_node': ['model:=pick_place_fr3', 'robot:=fr3', 'backend:=onnxruntime', OVERRIDE,
                    *TWIN],
    'capture_node': ['rig:=fake_two'],
    'recorder_node': ['dataset:={tmp}/dataset', 'rig:=twin_fr3', 'robot:=fr3', OVERRIDE, *TWIN],
    'calibration_capture_node': ['calibration:=twin_fr3', 'robot:=fr3', 'mode:=operator',
                                 'out:={tmp}/captures', *TWIN],
    'teleop_node': ['teleop:=sim_quest', 'robot:=fr3', *TWIN],
    'sim_quest_node': TWIN,
}


def _prefix(workspace: Path) -> Path:
    return workspace / 'install' / 'visuomotor'


def _site(workspace: Path) -> Path:
    return next((_prefix(workspace) / 'lib').glob('python3*/site-packages'))


def _source_modules() -> set[str]:
    """Every module of the package in the source tree, by dotted name."""
    root = REPO / 'src'
    names = set()
    for path in (root / 'visuomotor').rglob('*.py'):
        parts = path.relative_to(root).with_suffix('').parts
        names.add('.'.join(parts[:-1] if parts[-1] == '__init__' else parts))
    return names


_IMPORT_ALL = r"""
import importlib, json, pkgutil, sys
import visuomotor
from visuomotor.paths import share_dir
modules, errors = {}, {}
def walk_error(name):
    errors[name] = repr(sys.exc_info()[1])
for info in pkgutil.walk_packages(visuomotor.__path__, 'visuomotor.', onerror=walk_error):
    try:
        modules[info.name] = importlib.import_module(info.name).__file__
    except Exception as exc:
        errors[info.name] = f'{type(exc).__name__}: {exc}'
modules['visuomotor'] = visuomotor.__file__
print(json.dumps({'path': list(visuomotor.__path__), 'modules': modules, 'errors': errors,
                  'share': str(share_dir())}))
"""


def test_every_module_of_the_source_tree_imports_from_the_install_space(
        colcon_workspace: Path, install_env: dict[str, str], tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, '-c', _IMPORT_ALL], cwd=tmp_path, env=install_env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    package = _site(colcon_workspace) / 'visuomotor'
    assert found['path'] == [str(package)], 'visuomotor does not come from the install space'
    assert found['errors'] == {}, f'modules that fail to import from the install: ' \
                                  f'{found["errors"]}'
    outside = {n: f for n, f in found['modules'].items() if not Path(f).is_relative_to(package)}
    assert outside == {}, f'modules imported from outside the install space: {outside}'
    missing = sorted(_source_modules() - set(found['modules']))
    assert missing == [], f'modules of src/ missing from the install space (a folder without ' \
                          f'__init__.py?): {missing}'
    assert Path(found['share']) == _prefix(colcon_workspace) / 'share' / 'visuomotor'


def test_every_console_script_is_in_lib_visuomotor_and_tested_here(
        colcon_workspace: Path) -> None:
    entry_points = configparser.ConfigParser()
    entry_points.read(next(_site(colcon_workspace).glob('visuomotor-*-info/entry_points.txt')))
    scripts = set(entry_points['console_scripts'])
    installed = {p.name for p in (_prefix(colcon_workspace) / 'lib' / 'visuomotor').iterdir()}
    assert scripts == installed
    assert scripts == set(EXECUTABLES) | {'visuomotor'}, 'a new executable: add it to EXECUTABLES'


class _Process(FollowedProcess):
    """An executable of lib/visuomotor started as `ros2 run` would, with its output followed."""

    def finish(self, timeout_s: float = 30.0) -> int:  # type: ignore[override]
        code = super().finish(timeout_s)
        if code is None:
            pytest.fail(f'still running {timeout_s} s after SIGINT:\n{self.output}')
        return code


@pytest.mark.parametrize('executable', sorted(EXECUTABLES))
def test_every_node_executable_comes_up_and_stops_on_ctrl_c(
        colcon_workspace: Path, install_env: dict[str, str], tmp_path: Path,
        executable: str) -> None:
    parameters = EXECUTABLES[executable]
    ready = rf'\]: {executable} running \(Ctrl-C'
    script = _prefix(colcon_workspace) / 'lib' / 'visuomotor' / executable
    command = [str(script), '--ros-args'] + [
        a for p in parameters for a in ('-p', p.format(tmp=tmp_path))]
    node = _Process(command, install_env, tmp_path)
    try:
        up = node.wait_for(ready, 90)
    finally:
        if node.process.poll() is None:
            node.process.send_signal(signal.SIGINT)
    code = node.finish()
    assert up, f'{executable} did not come up (no {ready!r} in its output):\n{node.output}'
    assert 'Traceback' not in node.output, node.output
    assert code == 0, f'{executable} exited with {code} on SIGINT:\n{node.output}'
    assert 'SIGINT: stopping' in node.output, node.output


def test_the_policy_node_refuses_without_a_verified_calibration_with_our_message(
        colcon_workspace: Path, install_env: dict[str, str], tmp_path: Path) -> None:
    script = _prefix(colcon_workspace) / 'lib' / 'visuomotor' / 'policy_node'
    node = _Process([str(script), '--ros-args', '-p', 'model:=pick_place_fr3'], install_env,
                    tmp_path)
    code = node.finish(90)
    assert code == 2, node.output
    assert 'policy_node: refusing to start: calibration gate' in node.output
    assert 'Traceback' not in node.output


def test_the_cli_runs_from_the_install_space(colcon_workspace: Path,
                                             install_env: dict[str, str],
                                             tmp_path: Path) -> None:
    script = _prefix(colcon_workspace) / 'lib' / 'visuomotor' / 'visuomotor'
    result = subprocess.run([str(script), '--help'], cwd=tmp_path, env=install_env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('usage: visuomotor')
    assert 'launch' in result.stdout
