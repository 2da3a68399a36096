"""Parameters of the capture node (declared once; the ROS node and the graph read this)."""

from __future__ import annotations

from visuomotor.cameras.sync import SyncConfig
from visuomotor.params import Param

CAPTURE_NODE_PARAMS = (
    Param('rig', 'fake_two', 'camera rig: a name in config/cameras or a rig YAML path'),
    Param('read_timeout_s', 1.0, 'a camera silent for this long is reported (s)', 0.05, 60.0),
    Param('frozen_repeats', SyncConfig.frozen_repeats, 'identical frames in a row that mark a '
          'camera frozen (0: off)', 0, 1000),
)
