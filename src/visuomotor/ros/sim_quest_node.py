"""The simulated Quest: a scripted operator's right (or left) controller on the twin.

Publishes `/quest/<hand>/pose` (geometry_msgs/PoseStamped in `quest_world`) and
`/quest/<hand>/joy` (sensor_msgs/Joy: axes [grip, trigger], buttons [A/X, B/Y], the layout
of config/teleop/sim_quest.yaml) at `rate_hz` on its clock (simulated time on the twin),
playing visuomotor.teleop.scripted; nothing while the script says the controller is lost.
Subscribes `/quest/<hand>/set_feedback` (sensor_msgs/JoyFeedbackArray) and logs each haptic
pulse it feels. Exits with 0 when the script has played (`exit_when_done`).
"""

from __future__ import annotations

from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Joy, JoyFeedbackArray

from visuomotor.robots.transforms import quat_from_matrix
from visuomotor.ros.lockstep import LockstepReporter
from visuomotor.ros.node_main import run_node
from visuomotor.ros.parameters import declare_parameters
from visuomotor.teleop.node_schema import SIM_QUEST_NODE_PARAMS
from visuomotor.teleop.scripted import HEADSET_FRAME, ScriptedQuest, teleop_session


class SimQuestNode(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__('sim_quest', **kwargs)  # type: ignore[arg-type]
        params = declare_parameters(self, SIM_QUEST_NODE_PARAMS)
        self.script = ScriptedQuest(
            teleop_session(int(params['episodes']), bool(params['discard'])),
            jitter_m=float(params['jitter_m']), seed=int(params['seed']))
        self.delay_s = float(params['start_delay_s'])
        self.exit_when_done = bool(params['exit_when_done'])
        hand = str(params['hand'])
        self.pose_pub = self.create_publisher(PoseStamped, f'/quest/{hand}/pose', 20)
        self.joy_pub = self.create_publisher(Joy, f'/quest/{hand}/joy', 20)
        self.create_subscription(JoyFeedbackArray, f'/quest/{hand}/set_feedback',
                                 self._on_feedback, 20)
        self.pulses = 0
        self._start: float | None = None
        self._segment = -1
        self._rumbling = False
        self.done = False
        tick_timer = self.create_timer(1.0 / float(params['rate_hz']), self._tick)
        self.lockstep = LockstepReporter(self, bool(params['lockstep']))
        self.lockstep.follow(tick_timer)
        self.get_logger().info(f'simulated Quest ({hand} hand): {len(self.script.segments)} '
                               f'segments, {self.script.duration_s:.1f} s')

    def _now(self) -> float:
        return float(self.get_clock().now().nanoseconds) * 1e-9

    def _tick(self) -> None:
        now = self._now()
        if now <= 0.0:  # no /clock yet
            return
        if self._start is None:
            self._start = now + self.delay_s
        t = now - self._start
        if t < 0.0 or self.done:
            return
        if t > self.script.duration_s:
            self.done = True
            self.get_logger().info(f'script played ({self.pulses} haptic pulses felt)')
            return
        sample = self.script.sample(t)
        if sample.segment != self._segment:
            self._segment = sample.segment
            self.get_logger().info(f'{t:6.2f} s: {self.script.segments[sample.segment].label}')
        if not sample.tracked:
            return
        stamp = self.get_clock().now().to_msg()
        pose = PoseStamped()
        pose.header.stamp, pose.header.frame_id = stamp, HEADSET_FRAME
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (
            float(v) for v in sample.position)
        w, x, y, z = quat_from_matrix(sample.rotation)
        o = pose.pose.orientation
        o.w, o.x, o.y, o.z = float(w), float(x), float(y), float(z)
        inputs = sample.inputs
        joy = Joy(axes=[inputs.grip, inputs.trigger], buttons=[int(inputs.lower),
                                                               int(inputs.upper)])
        joy.header.stamp, joy.header.frame_id = stamp, HEADSET_FRAME
        self.joy_pub.publish(joy)
        self.pose_pub.publish(pose)

    def _on_feedback(self, msg: JoyFeedbackArray) -> None:
        on = any(f.intensity > 0.0 for f in msg.array)
        if on and not self._rumbling:
            self.pulses += 1
            self.get_logger().info(f'haptic pulse {self.pulses}')
        self._rumbling = on


def _spin(node: SimQuestNode, executor: SingleThreadedExecutor) -> None:
    while not node.done or not node.exit_when_done:
        executor.spin_once(timeout_sec=0.1)


def main(args: list[str] | None = None) -> int:
    """Entry point of the `sim_quest_node` executable."""
    return run_node('sim_quest_node', SimQuestNode, args, spin=_spin)


if __name__ == '__main__':
    raise SystemExit(main())
