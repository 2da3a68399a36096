"""The repository root is one ament_python ROS 2 package that colcon builds and installs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

from support import REPO, run_checked

SHARED = ('launch', 'config', 'calibration', 'models')


def test_package_xml_parses_with_catkin_pkg_without_warnings() -> None:
    warnings: list[str] = []
    package = parse_package(str(REPO / 'package.xml'), warnings=warnings)
    assert warnings == []
    assert package.name == 'visuomotor'
    assert package.get_build_type() == 'ament_python'
    exec_depends = {dep.name for dep in package.exec_depends}
    assert {'rclpy', 'sensor_msgs', 'diagnostic_msgs', 'trajectory_msgs'} <= exec_depends


def test_colcon_list_identifies_a_ros_ament_python_package() -> None:
    out = run_checked(['colcon', 'list'], REPO)
    assert out.split() == ['visuomotor', '.', '(ros.ament_python)']


def _check_install(install: Path, *, fresh: bool) -> None:
    """Check the install layout; a `fresh` install space must hold nothing else."""
    prefix = install / 'visuomotor'
    share = prefix / 'share' / 'visuomotor'
    assert (share / 'package.xml').is_file()
    assert (prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' /
            'visuomotor').is_file()
    # `ros2 run visuomotor <executable>` and launch_ros Node(executable=...) look here.
    for executable in ('visuomotor', 'sim_node', 'safety_bridge'):
        script = prefix / 'lib' / 'visuomotor' / executable
        assert script.is_file() and os.access(script, os.X_OK), f'lib/visuomotor/{executable}'
    # What a checkout ships: files git tracks or would add (not the ignored per-machine
    # verification records and captures a user's twin calibration writes into calibration/).
    listed = subprocess.run(['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    shipped = {REPO / name for name in listed.splitlines()}
    for folder in SHARED:
        source = {p.relative_to(REPO / folder) for p in (REPO / folder).rglob('*')
                  if p.is_file() and p in shipped and not p.name.startswith('.')}
        installed = {p.relative_to(share / folder) for p in (share / folder).rglob('*')
                     if p.is_file()} if (share / folder).exists() else set()
        missing = source - installed
        assert not missing, f'{folder}/ files not installed to share/visuomotor: {missing}'
        if fresh:
            assert installed == source, f'unexpected files in share/visuomotor/{folder}'
    modules = list((prefix / 'lib').glob('python3*/site-packages/visuomotor/preprocessing/'
                                         'spec.py'))
    assert modules, 'the Python package was not installed'


def test_root_build_installs_the_layout() -> None:
    """`make setup` ran `colcon build` at the root; its install/ must have the layout."""
    install = REPO / 'install'
    if not (install / 'visuomotor').exists():
        pytest.fail('no install/visuomotor: run `make setup` (it runs colcon build)')
    _check_install(install, fresh=False)


@pytest.mark.slow
def test_builds_from_a_ws_src_checkout(colcon_workspace: Path, install_env: dict[str, str],
                                       tmp_path: Path) -> None:
    assert run_checked(['colcon', 'list'], colcon_workspace).split() == [
        'visuomotor', 'src/visuomotor', '(ros.ament_python)']
    _check_install(colcon_workspace / 'install', fresh=True)
    # The installed package runs from the install space alone, like `ros2 run` would use it.
    code = ('import visuomotor.paths as p, visuomotor.preprocessing as q; '
            'print(p.share_dir()); '
            'print(q.load_spec(p.share_dir() / "config/preprocessing/imagenet_224.json")'
            '.spec_hash())')
    result = subprocess.run([str(REPO / '.venv' / 'bin' / 'python'), '-c', code], cwd=tmp_path,
                            capture_output=True, text=True, env=install_env, timeout=60)
    assert result.returncode == 0, result.stderr
    share, spec_hash = result.stdout.split()
    assert Path(share) == colcon_workspace / 'install' / 'visuomotor' / 'share' / 'visuomotor'
    assert len(spec_hash) == 16


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / 'README.md').read_text()
    assert 'make demo' in readme and 'make test' in readme
    ci = (REPO / '.ci' / 'run').read_text()
    assert 'make test' in ci.split('\n', 3)[-1]
