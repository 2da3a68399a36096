"""Teleop configuration files (config/teleop/<name>.yaml).

Each holds the controller source, the headset-to-robot rotation, scales, filter, deadman
timing and the IK settings.

Two sources share one interface (visuomotor.ros.teleop_sources):

- `quest2ros`: the Quest2ROS app (Welle et al. 2024) through the Unity ROS-TCP endpoint.
  Topics as its `scripts/ros2quest.py` names them: `/ovr2ros_<hand>_hand_pose`
  (geometry_msgs/PoseStamped), `/ovr2ros_<hand>_hand_twist` (Twist, unused: poses are
  differentiated here), `/ovr2ros_<hand>_hand_inputs` (quest2ros/OVR2ROSInputs: button_upper,
  button_lower, thumb_stick_horizontal, thumb_stick_vertical, press_index, press_middle) and
  `/ovr2ros_<hand>_hand_haptic_feedback` (OVR2ROSHapticFeedback: frequency, amplitude), per
  the package's msg/*.msg. The inputs need the quest2ros message package on the robot PC.
- `joy`: geometry_msgs/PoseStamped + sensor_msgs/Joy (any bridge that publishes those; the
  twin's simulated Quest does), haptics as sensor_msgs/JoyFeedbackArray rumble.

Both become the same controller reading: grip (the clutch), index trigger (the gripper), the
lower button (A/X: start / stop an episode) and the upper button (B/Y: discard the episode
being recorded; held while idle: move home).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visuomotor.config_fields import FieldReader, config_path, read_yaml
from visuomotor.errors import FieldError
from visuomotor.paths import share_dir
from visuomotor.robots.transforms import Matrix, from_xyz_rpy

SOURCES = ('quest2ros', 'joy')
HANDS = ('right', 'left')


class TeleopConfigError(FieldError):
    """A teleop config file is missing or invalid."""


@dataclass(frozen=True)
class JoyLayout:
    """Where the controller's inputs are in a sensor_msgs/Joy message (source `joy`).

    Attributes:
        grip_axis, trigger_axis: axes holding the grip and index trigger, 0 (released) .. 1.
        lower_button, upper_button: buttons holding A/X and B/Y.
    """

    grip_axis: int = 0
    trigger_axis: int = 1
    lower_button: int = 0
    upper_button: int = 1


@dataclass(frozen=True)
class Topics:
    """The source's topics (defaults follow the source and the hand)."""

    pose: str
    inputs: str
    haptic: str


@dataclass(frozen=True)
class TeleopConfig:
    """One teleop set-up.

    Attributes:
        name: the file's stem.
        source: `quest2ros` or `joy`.
        hand: the controller that drives the arm.
        topics: pose, inputs and haptic topics.
        frame_id: the frame the controller poses must be stamped in; others are refused.
        headset_to_base: 3x3 rotation taking headset-frame vectors into the robot base frame
            (calibrated: `visuomotor teleop align` measures its yaw).
        translation_scale: robot metres per controller metre.
        rotation_scale: fraction of the controller's rotation applied (0: keep orientation).
        clutch_engage, clutch_release: grip thresholds (hysteresis) of the clutch.
        gripper_close, gripper_open: trigger thresholds (hysteresis) of the gripper.
        filter_min_cutoff_hz, filter_beta, filter_derivative_cutoff_hz: the One Euro filter
            on the controller pose (jitter at rest vs lag when moving).
        input_timeout_s: a pose or input stream silent this long releases the clutch (and a
            new grip press is needed).
        max_jump_m: a raw controller step larger than this between two samples is a
            tracking glitch: the clutch releases (1 m/s at 50 Hz is 2 cm a sample).
        lead_s: each joint target is commanded to be reached this far after its stamp.
        home_speed_rad_s: joint speed of the hold-to-run move home.
        ik_iterations, ik_damping, ik_limit_margin_rad, ik_rest_gain, ik_limit_gain,
        ik_limit_zone_rad: the damped-least-squares IK (visuomotor.robots.ik), against the
            safety bridge's joint envelope of the tier.
        joy: the Joy layout (source `joy`).
        source_file: where the config came from.
    """

    name: str
    source: str
    hand: str
    topics: Topics
    frame_id: str
    headset_to_base: Matrix
    translation_scale: float = 1.0
    rotation_scale: float = 1.0
    clutch_engage: float = 0.6
    clutch_release: float = 0.4
    gripper_close: float = 0.6
    gripper_open: float = 0.4
    filter_min_cutoff_hz: float = 1.5
    filter_beta: float = 4.0
    filter_derivative_cutoff_hz: float = 1.0
    input_timeout_s: float = 0.12
    max_jump_m: float = 0.05
    lead_s: float = 0.05
    home_speed_rad_s: float = 0.3
    ik_iterations: int = 30
    ik_damping: float = 0.02
    ik_limit_margin_rad: float = 0.05
    ik_rest_gain: float = 0.05
    ik_limit_gain: float = 0.5
    ik_limit_zone_rad: float = 0.1
    joy: JoyLayout = JoyLayout()
    source_file: str = ''


def default_topics(source: str, hand: str) -> Topics:
    """The topics a source publishes for `hand`."""
    if source == 'quest2ros':
        stem = f'/ovr2ros_{hand}_hand'
        return Topics(f'{stem}_pose', f'{stem}_inputs', f'{stem}_haptic_feedback')
    return Topics(f'/quest/{hand}/pose', f'/quest/{hand}/joy', f'/quest/{hand}/set_feedback')


_KEYS = {'source', 'hand', 'topics', 'frame_id', 'headset_to_base_rpy_deg',
         'translation_scale', 'rotation_scale', 'clutch', 'gripper', 'filter',
         'input_timeout_s', 'max_jump_m', 'lead_s', 'home_speed_rad_s', 'ik', 'joy'}


def _pair(reader: FieldReader, key: str, high: str, low: str, defaults: tuple[float, float]
          ) -> tuple[float, float]:
    if not reader.has(key):
        return defaults
    child = reader.child(key)
    child.unknown({high, low})
    upper = child.number(high, defaults[0], minimum=0.0, maximum=1.0)
    lower = child.number(low, defaults[1], minimum=0.0, maximum=1.0)
    if lower >= upper:
        raise child.fail(low, f'must be below {high} ({upper}) so the switch has hysteresis, '
                         f'got {lower}')
    return upper, lower


def teleop_config_from_dict(data: object, name: str = 'teleop', source_file: str = ''
                            ) -> TeleopConfig:
    """Build and validate a config from parsed YAML."""
    reader = FieldReader(data, '', TeleopConfigError)
    reader.unknown(_KEYS)
    source = reader.text('source', choices=SOURCES)
    hand = reader.text('hand', 'right', choices=HANDS)
    topics = default_topics(source, hand)
    if reader.has('topics'):
        child = reader.child('topics')
        child.unknown({'pose', 'inputs', 'haptic'})
        topics = Topics(child.text('pose', topics.pose), child.text('inputs', topics.inputs),
                        child.text('haptic', topics.haptic))
    rpy = reader.numbers('headset_to_base_rpy_deg', 3)
    rotation = from_xyz_rpy((0.0, 0.0, 0.0), [math.radians(a) for a in rpy])[:3, :3]
    frame = reader.raw('frame_id')
    if not isinstance(frame, str):
        raise reader.fail('frame_id', f'must be a string (the frame_id the controller poses '
                          f'carry; may be empty), got {frame!r}')
    clutch = _pair(reader, 'clutch', 'engage', 'release', (0.6, 0.4))
    gripper = _pair(reader, 'gripper', 'close', 'open', (0.6, 0.4))
    filt = reader.child('filter') if reader.has('filter') else FieldReader({}, 'filter',
                                                                            TeleopConfigError)
    filt.unknown({'min_cutoff_hz', 'beta', 'derivative_cutoff_hz'})
    ik = reader.child('ik') if reader.has('ik') else FieldReader({}, 'ik', TeleopConfigError)
    ik.unknown({'iterations', 'damping', 'limit_margin_rad', 'rest_gain', 'limit_gain',
                'limit_zone_rad'})
    joy = JoyLayout()
    if reader.has('joy'):
        child = reader.child('joy')
        child.unknown({'grip_axis', 'trigger_axis', 'lower_button', 'upper_button'})
        joy = JoyLayout(*(child.integer(k, getattr(joy, k), minimum=0) for k in
                          ('grip_axis', 'trigger_axis', 'lower_button', 'upper_button')))
    config = TeleopConfig(
        name=name, source=source, hand=hand, topics=topics, frame_id=frame,
        headset_to_base=np.asarray(rotation),
        translation_scale=reader.number('translation_scale', 1.0, minimum=0.05, maximum=10.0),
        rotation_scale=reader.number('rotation_scale', 1.0, minimum=0.0, maximum=2.0),
        clutch_engage=clutch[0], clutch_release=clutch[1],
        gripper_close=gripper[0], gripper_open=gripper[1],
        filter_min_cutoff_hz=filt.number('min_cutoff_hz', 1.5, positive=True),
        filter_beta=filt.number('beta', 4.0, minimum=0.0),
        filter_derivative_cutoff_hz=filt.number('derivative_cutoff_hz', 1.0, positive=True),
        input_timeout_s=reader.number('input_timeout_s', 0.12, minimum=0.01, maximum=1.0),
        max_jump_m=reader.number('max_jump_m', 0.05, minimum=0.001, maximum=1.0),
        lead_s=reader.number('lead_s', 0.05, minimum=0.01, maximum=0.5),
        home_speed_rad_s=reader.number('home_speed_rad_s', 0.3, positive=True, maximum=2.0),
        ik_iterations=ik.integer('iterations', 30),
        ik_damping=ik.number('damping', 0.02, positive=True),
        ik_limit_margin_rad=ik.number('limit_margin_rad', 0.05, minimum=0.0, maximum=0.5),
        ik_rest_gain=ik.number('rest_gain', 0.05, minimum=0.0, maximum=1.0),
        ik_limit_gain=ik.number('limit_gain', 0.5, minimum=0.0, maximum=5.0),
        ik_limit_zone_rad=ik.number('limit_zone_rad', 0.1, minimum=0.0, maximum=1.0),
        joy=joy, source_file=source_file)
    if source == 'quest2ros' and reader.has('joy'):
        raise reader.fail('joy', 'is only for source: joy (quest2ros has its own input '
                          'message)')
    return config


def load_teleop_config(name_or_path: str | Path) -> TeleopConfig:
    """A config by name (a file in config/teleop) or path.

    Raises:
        TeleopConfigError: unknown name or an invalid file (naming the file and field).
    """
    path = config_path(name_or_path, share_dir() / 'config' / 'teleop', 'teleop',
                       TeleopConfigError)
    data = read_yaml(path, TeleopConfigError, 'teleop')
    try:
        return teleop_config_from_dict(data, path.stem, str(path))
    except TeleopConfigError as error:
        raise TeleopConfigError(f'{path}: {error.field}',
                                str(error).split(': ', 1)[1]) from None
