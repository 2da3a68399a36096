"""Only visuomotor.ros may import rclpy or ROS message packages (the core stays pure)."""

from __future__ import annotations

import ast
from pathlib import Path

from support import REPO

SOURCE = REPO / 'src' / 'visuomotor'
ROS_MODULES = {
    'rclpy', 'builtin_interfaces', 'std_msgs', 'std_srvs', 'sensor_msgs', 'geometry_msgs',
    'trajectory_msgs', 'diagnostic_msgs', 'visualization_msgs', 'rosgraph_msgs',
    'rcl_interfaces', 'launch', 'launch_ros', 'message_filters', 'tf2_ros',
}
# The command line is the composition root: it may start the ROS layer, lazily.
MAY_IMPORT_ROS_LAYER = {'cli.py'}


def ros_imports(source: str) -> list[str]:
    """Top-level names of ROS modules imported anywhere in `source`, plus visuomotor.ros."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else \
                func.id if isinstance(func, ast.Name) else ''
            if called in ('import_module', '__import__'):
                names = [node.args[0].value]
        for name in names:
            if name.split('.')[0] in ROS_MODULES or name.startswith('visuomotor.ros'):
                found.append(name)
    return found


def test_checker_finds_every_import_form() -> None:
    source = '\n'.join([
        'import os',
        'def f():',
        '    import rclpy.node',
        '    from sensor_msgs.msg import Image',
        '    importlib.import_module("std_msgs.msg")',
        '    __import__("rclpy")',
        'from visuomotor.ros.image_conversion import image_to_numpy',
        'from visuomotor.preprocessing import Preprocessor',
        'import rclpyish',
    ])
    assert sorted(ros_imports(source)) == ['rclpy', 'rclpy.node', 'sensor_msgs.msg',
                                           'std_msgs.msg', 'visuomotor.ros.image_conversion']


def test_no_module_outside_visuomotor_ros_imports_ros() -> None:
    offenders = {}
    files = sorted(SOURCE.rglob('*.py'))
    assert len(files) > 10, 'the source tree was not found'
    for path in files:
        relative = path.relative_to(SOURCE)
        if relative.parts[0] == 'ros':
            continue
        found = ros_imports(path.read_text(encoding='utf-8'))
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
