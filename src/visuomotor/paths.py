"""Where the package's data (config/, calibration/, models/, launch/) lives."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = 'visuomotor'


def share_dir() -> Path:
    """The directory holding config/, calibration/, models/ and launch/.

    A source checkout (this file under <repo>/src/visuomotor) uses the repository root; an
    installed package uses <prefix>/share/visuomotor of the first AMENT_PREFIX_PATH prefix
    that has it (what `ros2 launch` and `ros2 run` see).

    Raises:
        FileNotFoundError: when neither exists.
    """
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / 'package.xml').is_file() and (checkout / 'src' / PACKAGE).is_dir():
        return checkout
    for prefix in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep):
        candidate = Path(prefix) / 'share' / PACKAGE
        if prefix and (candidate / 'package.xml').is_file():
            return candidate
    raise FileNotFoundError(
        'cannot find the visuomotor share directory: source the workspace '
        '(source install/setup.bash) or run from a source checkout')
