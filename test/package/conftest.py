"""Fixtures of the package tier: one colcon build of this checkout per session, and the
environment `source install/setup.bash` gives, without the source tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support import REPO, run_checked

# Variables that could put the source tree (or another workspace) on the path: the install
# environment is built from a shell that has none of them, then sources install/setup.bash.
_SOURCE_PATHS = ('PYTHONPATH', 'AMENT_PREFIX_PATH', 'COLCON_PREFIX_PATH', 'CMAKE_PREFIX_PATH')


@pytest.fixture(scope='session')
def colcon_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with this checkout (tracked and new files) in src/visuomotor, built.

    Built once per session (`colcon build`, as on a robot PC): returns the workspace root,
    whose install/ the tests use as `ros2 run` and `ros2 launch` would.
    """
    tracked = run_checked(['git', 'ls-files', '--cached', '--others', '--exclude-standard'],
                          REPO)
    workspace = tmp_path_factory.mktemp('colcon') / 'ws'
    checkout = workspace / 'src' / 'visuomotor'
    for name in tracked.splitlines():
        if not (REPO / name).is_file():
            continue
        target = checkout / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    run_checked(['colcon', 'build', '--event-handlers', 'console_stderr-'], workspace)
    return workspace


@pytest.fixture(scope='session')
def install_env(colcon_workspace: Path) -> dict[str, str]:
    """The environment of a shell that sourced the workspace's install/setup.bash.

    Starts from this process's environment (the ROS underlay, the venv on PATH, the ROS
    domain) without any path variable that could supply the source tree.
    """
    clean = {k: v for k, v in os.environ.items() if k not in _SOURCE_PATHS}
    setup = colcon_workspace / 'install' / 'setup.bash'
    out = subprocess.run(['bash', '-c', f'source "{setup}" && env -0'], env=clean,
                         capture_output=True, timeout=60, check=True).stdout
    env = dict(item.split('=', 1) for item in out.decode().split('\0') if '=' in item)
    install = colcon_workspace / 'install'
    for entry in filter(None, env.get('PYTHONPATH', '').split(os.pathsep)):
        assert not (Path(entry) / 'visuomotor').exists() or Path(entry).is_relative_to(
            install), f'PYTHONPATH entry {entry} supplies visuomotor from outside {install}'
    return env
