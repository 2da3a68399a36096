"""Controller sources of the teleop node, behind one interface (visuomotor.teleop.config).

A source subscribes to its topics and hands the teleop node plain values: the pose fields
(checked there: visuomotor.teleop.inputs) and ControllerInputs; it turns haptic amplitudes
into its own feedback message. Message conversion only: no decisions here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Joy, JoyFeedback, JoyFeedbackArray

from visuomotor.errors import VisuomotorError
from visuomotor.ros.stamps import stamp_to_ns
from visuomotor.teleop.config import JoyLayout, TeleopConfig
from visuomotor.teleop.inputs import ControllerInputs, TeleopInputError, inputs_from_fields

PoseFields = tuple[float, str, tuple[float, float, float], tuple[float, float, float, float]]
OnPose = Callable[[PoseFields], None]
OnInputs = Callable[[ControllerInputs], None]
OnError = Callable[[TeleopInputError], None]


class TeleopSource(Protocol):
    """What the teleop node needs of a controller source."""

    description: str

    def haptic(self, amplitude: float) -> None:
        """Vibrate at `amplitude` (0..1; 0 stops)."""


def pose_fields(msg: PoseStamped) -> PoseFields:
    """The fields of a PoseStamped the checks need."""
    p, o = msg.pose.position, msg.pose.orientation
    return (stamp_to_ns(msg.header.stamp) * 1e-9, msg.header.frame_id,
            (p.x, p.y, p.z), (o.x, o.y, o.z, o.w))


def inputs_from_joy(msg: Any, layout: JoyLayout) -> ControllerInputs:
    """ControllerInputs from a sensor_msgs/Joy (analog grip and trigger 0..1).

    Raises:
        TeleopInputError: the message lacks an axis or button of the layout.
    """
    for kind, values, index, what in (
            ('axes', msg.axes, layout.grip_axis, 'grip'),
            ('axes', msg.axes, layout.trigger_axis, 'trigger'),
            ('buttons', msg.buttons, layout.lower_button, 'lower (A/X)'),
            ('buttons', msg.buttons, layout.upper_button, 'upper (B/Y)')):
        if index >= len(values):
            raise TeleopInputError(f'joy.{kind}', f'has {len(values)} entries but the layout '
                                   f'reads the {what} from index {index}: fix `joy:` in the '
                                   'teleop config')
    return inputs_from_fields(float(msg.axes[layout.grip_axis]),
                              float(msg.axes[layout.trigger_axis]),
                              bool(msg.buttons[layout.lower_button]),
                              bool(msg.buttons[layout.upper_button]))


def inputs_from_quest2ros(msg: Any) -> ControllerInputs:
    """ControllerInputs from a quest2ros/OVR2ROSInputs.

    press_middle is the grip, press_index the trigger, button_lower A/X, button_upper B/Y.
    """
    return inputs_from_fields(float(msg.press_middle), float(msg.press_index),
                              bool(msg.button_lower), bool(msg.button_upper))


def _guarded(convert: Callable[[Any], ControllerInputs], on_inputs: OnInputs,
             on_error: OnError) -> Callable[[Any], None]:
    def handle(msg: Any) -> None:
        try:
            inputs = convert(msg)
        except TeleopInputError as error:
            on_error(error)
            return
        on_inputs(inputs)
    return handle


class JoySource:
    """PoseStamped + sensor_msgs/Joy; rumble through sensor_msgs/JoyFeedbackArray."""

    def __init__(self, node: Node, config: TeleopConfig, on_pose: OnPose,
                 on_inputs: OnInputs, on_error: OnError) -> None:
        topics = config.topics
        node.create_subscription(PoseStamped, topics.pose, lambda m: on_pose(pose_fields(m)),
                                 20)
        node.create_subscription(Joy, topics.inputs, _guarded(
            lambda m: inputs_from_joy(m, config.joy), on_inputs, on_error), 20)
        self._feedback = node.create_publisher(JoyFeedbackArray, topics.haptic, 10)
        self.description = f'PoseStamped {topics.pose} + Joy {topics.inputs}'

    def haptic(self, amplitude: float) -> None:
        """Rumble motor 0 at `amplitude`."""
        self._feedback.publish(JoyFeedbackArray(array=[JoyFeedback(
            type=JoyFeedback.TYPE_RUMBLE, id=0, intensity=float(amplitude))]))


class Quest2RosSource:
    """The Quest2ROS app's topics (needs the quest2ros message package for the inputs)."""

    def __init__(self, node: Node, config: TeleopConfig, on_pose: OnPose,
                 on_inputs: OnInputs, on_error: OnError) -> None:
        try:
            from quest2ros.msg import OVR2ROSHapticFeedback, OVR2ROSInputs  # type: ignore
        except ImportError:
            raise VisuomotorError(
                'teleop source quest2ros: the quest2ros message package is not installed, so '
                'the grip (clutch), trigger and buttons cannot be read. Build '
                'https://github.com/Quest2ROS/quest2ros in the workspace (and the ROS 2 '
                'branch of the Unity ROS-TCP endpoint), or bridge the controller to '
                'PoseStamped + sensor_msgs/Joy and use a teleop config with source: joy'
            ) from None
        topics = config.topics
        node.create_subscription(PoseStamped, topics.pose, lambda m: on_pose(pose_fields(m)),
                                 20)
        node.create_subscription(OVR2ROSInputs, topics.inputs,
                                 _guarded(inputs_from_quest2ros, on_inputs, on_error), 20)
        self._message = OVR2ROSHapticFeedback
        self._feedback = node.create_publisher(OVR2ROSHapticFeedback, topics.haptic, 1)
        self.description = f'quest2ros {topics.pose} + {topics.inputs}'

    def haptic(self, amplitude: float) -> None:
        """Vibrate (frequency and amplitude 0..1, as the app's demo sends them)."""
        self._feedback.publish(self._message(frequency=1.0 if amplitude > 0 else 0.0,
                                             amplitude=float(amplitude)))


def make_source(node: Node, config: TeleopConfig, on_pose: OnPose, on_inputs: OnInputs,
                on_error: OnError) -> TeleopSource:
    """The source the config names."""
    kind = JoySource if config.source == 'joy' else Quest2RosSource
    return kind(node, config, on_pose, on_inputs, on_error)
