"""Only visuomotor.ros may import rclpy or ROS message packages (the core stays pure)."""

from __future__ import annotations

import ast
from pathlib import Path

from support import REPO

SOURCE = REPO / 'src' / 'visuomotor'
ROS_MODULES = {'rclpy', 'launch', 'launch_ros', 'message_filters', 'cv_bridge', 'rosbag2_py',
               'ament_index_python', 'builtin_interfaces', 'tf2_ros', 'tf2_py'}
ROS_SUFFIXES = ('_msgs', '_srvs', '_interfaces')
# The command line is the composition root: it may start the ROS layer, lazily.
MAY_IMPORT_ROS_LAYER = {'cli.py'}


def _is_ros(name: str) -> bool:
    top = name.split('.')[0]
    return top in ROS_MODULES or top.endswith(ROS_SUFFIXES) or top.startswith('rcl') or \
        name == 'visuomotor.ros' or name.startswith('visuomotor.ros.')


def ros_imports(source: str, module: str = 'visuomotor.module') -> list[str]:
    """ROS modules (and visuomotor.ros) imported anywhere in `source`.

    Args:
        source: Python source text.
        module: dotted name of the module the source belongs to (resolves relative imports).
    """
    package = module.split('.')[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package[:len(package) - node.level + 1]
                base = '.'.join(anchor + ([base] if base else []))
            names = [base] if _is_ros(base) else [f'{base}.{alias.name}' for alias in node.names]
        elif isinstance(node, ast.Call) and node.args and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else \
                func.id if isinstance(func, ast.Name) else ''
            if called in ('import_module', '__import__'):
                names = [node.args[0].value]
        found += [name for name in names if _is_ros(name)]
    return sorted(set(found))


def test_checker_finds_every_import_form() -> None:
    source = '\n'.join([
        'import os',
        'def f():',
        '    import rclpy.node',
        '    from sensor_msgs.msg import Image',
        '    importlib.import_module("std_msgs.msg")',
        '    __import__("rcl_interfaces")',
        'from visuomotor.ros.image_conversion import image_to_numpy',
        'from visuomotor import ros',
        'from ..ros import demo',
        'from . import stamps',
        'import cv_bridge, tf2_ros, example_interfaces',
        'from visuomotor.preprocessing import Preprocessor',
        'import rosbags, numpy',  # pure-Python libraries are fine
    ])
    assert ros_imports(source, 'visuomotor.cameras.backend') == [
        'cv_bridge', 'example_interfaces', 'rcl_interfaces', 'rclpy.node',
        'sensor_msgs.msg', 'std_msgs.msg', 'tf2_ros', 'visuomotor.ros',
        'visuomotor.ros.image_conversion']


def test_no_module_outside_visuomotor_ros_imports_ros() -> None:
    offenders = {}
    files = sorted(SOURCE.rglob('*.py'))
    assert len(files) > 10, 'the source tree was not found'
    for path in files:
        relative = path.relative_to(SOURCE)
        if relative.parts[0] == 'ros':
            continue
        module = 'visuomotor.' + '.'.join(relative.with_suffix('').parts)
        found = ros_imports(path.read_text(encoding='utf-8'), module)
        if relative.name in MAY_IMPORT_ROS_LAYER:
            found = [name for name in found if not name.startswith('visuomotor.ros')]
        if found:
            offenders[str(relative)] = found
    assert offenders == {}, f'ROS imported outside visuomotor/ros: {offenders}'


def test_importing_the_core_does_not_load_rclpy() -> None:
    import subprocess
    import sys

    code = ('import sys, visuomotor.preprocessing, visuomotor.cameras.encodings, '
            'visuomotor.cameras.intrinsics, visuomotor.cameras.synthetic, visuomotor.cli; '
            'loaded = sorted(m for m in sys.modules if m.split(".")[0] in '
            '("rclpy", "sensor_msgs", "torch")); print(loaded); sys.exit(1 if loaded else 0)')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                            cwd=Path(REPO), env={'PYTHONPATH': str(REPO / 'src'),
                                                 'PATH': '/usr/bin:/bin'})
    assert result.returncode == 0, result.stdout + result.stderr
