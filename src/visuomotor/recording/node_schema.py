"""Parameters of the recorder node (declared once; the ROS node and the graph read this)."""

from __future__ import annotations

from visuomotor.calibration.gate import GATE_PARAMS
from visuomotor.params import LOCKSTEP_PARAM, Param
from visuomotor.recording.video import CODECS

RECORDER_NODE_PARAMS = (
    Param('dataset', '', 'dataset path (created on the first episode; episodes append)'),
    Param('rig', 'twin_fr3', 'camera rig: a name in config/cameras or a rig YAML path'),
    Param('robot', 'fr3', 'robot: a name in config/robots or a robot YAML path'),
    Param('fps', 10.0, 'rows per second (the dataset rate)', 1.0, 120.0),
    Param('task', 'task', 'task description of the next episode (also settable on ~/task)'),
    Param('codec', 'h264', 'video codec: h264 (the default: records 2 cameras at 30 Hz on 2 '
          "cores without a drop, bench/recording.py) or av1 (LeRobot's default: smaller files, "
          'about twice the CPU)',
          choices=tuple(sorted(CODECS))),
    Param('bridge', '/safety_bridge', 'namespace of the safety bridge whose commands are '
          'recorded'),
    Param('max_skew_s', 0.025, 'a frame may be this far from its row time (s)', 0.001, 1.0),
    Param('max_age_s', 0.2, 'no row when the newest frame is older than this (s)', 0.01, 5.0),
    Param('reliable_images', True, 'subscribe to images reliably (no frame lost in transport; '
          'needs a reliable publisher: ours are, some drivers are not: then set false)'),
    *GATE_PARAMS,
    Param('preprocessing_spec', '', 'preprocessing spec the data is meant for (a name in '
          'config/preprocessing or a JSON path; its hash is stored with every episode)'),
    LOCKSTEP_PARAM,
)
