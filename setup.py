"""Build script for the `visuomotor` ament_python package (src/ layout).

`colcon build` (from the repository root or from a `ws/src/visuomotor` checkout) installs:
the Python package, console scripts under lib/visuomotor (so `ros2 run visuomotor <exe>`
finds them), and launch/, config/, calibration/, models/ under share/visuomotor.
"""

import os
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = 'visuomotor'
HERE = Path(__file__).resolve().parent
SHARED_DIRS = ('launch', 'config', 'calibration', 'models')
# Per machine and session (gitignored): a verification record or capture made in a checkout
# says nothing about another machine, and must not make an install's gate pass.
PER_MACHINE_DIRS = ('verification', 'captures')


def share_tree(directory: str) -> list[tuple[str, list[str]]]:
    """Return data_files entries that mirror `directory` under share/visuomotor."""
    entries: list[tuple[str, list[str]]] = []
    root = HERE / directory
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(('.', '__'))
                             and d not in PER_MACHINE_DIRS)
        files = sorted(
            os.path.relpath(os.path.join(dirpath, name), HERE)
            for name in filenames
            if not name.startswith('.') and not name.endswith('.pyc')
        )
        if files:
            relative = os.path.relpath(dirpath, HERE)
            entries.append((os.path.join('share', PACKAGE, relative), files))
    return entries


data_files = [
    ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
    ('share/' + PACKAGE, ['package.xml']),
]
for shared in SHARED_DIRS:
    data_files += share_tree(shared)

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages('src'),
    package_dir={'': 'src'},
    package_data={PACKAGE: ['py.typed']},
    data_files=data_files,
    install_requires=['setuptools'],
    extras_require={'test': ['pytest', 'hypothesis']},
    zip_safe=False,
    maintainer='visuomotor maintainers',
    maintainer_email='maintainers@visuomotor.dev',
    description='End-to-end visuomotor policies on real arms with ROS 2',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'visuomotor = visuomotor.cli:main',
            'sim_node = visuomotor.ros.sim_node:main',
            'safety_bridge = visuomotor.ros.bridge_node:main',
            'policy_node = visuomotor.ros.policy_node:main',
            'capture_node = visuomotor.ros.capture_node:main',
            'recorder_node = visuomotor.ros.recorder_node:main',
            'calibration_capture_node = visuomotor.ros.calibration_capture_node:main',
            'teleop_node = visuomotor.ros.teleop_node:main',
            'sim_quest_node = visuomotor.ros.sim_quest_node:main',
        ],
    },
)
