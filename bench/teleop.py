"""Benchmark: controller pose in -> joint command out, on the build machine.

Measured:
- through DDS (what an operator feels, minus Wi-Fi and the robot): the teleop node runs as
  its own process (`python -m visuomotor.ros.teleop_node`, config sim_quest, FR3). This
  process publishes /joint_states (100 Hz), the Joy inputs with the grip held and a
  controller pose moving on a 3 cm circle (50 Hz, about 6 cm/s, 0.3 mm jitter), each pose's
  publish time taken just before publishing; each JointTrajectory the node publishes on
  /safety_bridge/command is received here. A command is stamped when the node computed it,
  so it belongs to the last pose published before its stamp (poses are 20 ms apart; one
  machine, one system clock). Latency = receive time - that pose's publish time. The Joy and
  the pose travel on separate topics, so the pose that first sees the grip varies by one:
  pairing by stamp, not by order, keeps that from shifting every pair.
- in-process: TeleopCore alone (input check, One Euro filter, clutch mapping, DLS IK) per
  pose, the compute part of the figure above.

Results: bench/results/teleop.{json,md}. Medians and p99 from one run.
Run: make bench   (or: python bench/teleop.py [--poses N])
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState, Joy
from trajectory_msgs.msg import JointTrajectory

from visuomotor.robots.description import load_robot
from visuomotor.ros.runner import private_domain_id
from visuomotor.teleop.config import load_teleop_config
from visuomotor.teleop.core import TeleopCore
from visuomotor.teleop.inputs import ControllerInputs, pose_from_fields
from visuomotor.teleop.scripted import HAND_START_M

RESULTS = Path(__file__).resolve().parent / 'results'
RATE_HZ = 50.0
RADIUS_M = 0.03
TURN_HZ = 0.3


def hand(t: float, rng: np.random.Generator) -> np.ndarray:
    """The controller position at `t`: a horizontal circle in the headset frame + jitter."""
    angle = 2.0 * math.pi * TURN_HZ * t
    offset = np.array([RADIUS_M * math.sin(angle), 0.0, RADIUS_M * (math.cos(angle) - 1.0)])
    return np.array(HAND_START_M) + offset + rng.normal(0.0, 0.0003, 3)


class Operator(Node):
    """Joint states, grip-held Joy and the moving pose; records command arrivals."""

    def __init__(self, joints: list[str], home: list[float]) -> None:
        super().__init__('teleop_bench')
        self.joints, self.home = joints, home
        self.pose_pub = self.create_publisher(PoseStamped, '/quest/right/pose', 50)
        self.joy_pub = self.create_publisher(Joy, '/quest/right/joy', 50)
        self.state_pub = self.create_publisher(JointState, '/joint_states', 50)
        self.sent: list[int] = []  # system-clock ns of each clutched pose's publish
        self.received: list[tuple[int, int]] = []  # (command stamp ns, receive ns)
        self.create_subscription(JointTrajectory, '/safety_bridge/command', self._on_command,
                                 500)
        self.create_timer(0.01, self._joint_state)

    def _on_command(self, msg: JointTrajectory) -> None:
        now = self.get_clock().now().nanoseconds
        self.received.append((msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec,
                              now))

    def _joint_state(self) -> None:
        msg = JointState(name=self.joints, position=self.home)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.state_pub.publish(msg)

    def play(self, poses: int, stop: threading.Event) -> None:
        """Publish `poses` poses at RATE_HZ (grip released for the first second)."""
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for k in range(poses + int(RATE_HZ)):
            if stop.is_set():
                return
            t = k / RATE_HZ
            time.sleep(max(0.0, start + t - time.perf_counter()))
            grip = 1.0 if k >= RATE_HZ else 0.0
            joy = Joy(axes=[grip, 0.0], buttons=[0, 0])
            joy.header.stamp = self.get_clock().now().to_msg()
            self.joy_pub.publish(joy)
            pose = PoseStamped()
            pose.header.frame_id = 'quest_world'
            p = pose.pose.position
            p.x, p.y, p.z = (float(v) for v in hand(t, rng))
            pose.pose.orientation.w = 1.0
            now = self.get_clock().now()
            pose.header.stamp = now.to_msg()
            if grip:
                self.sent.append(now.nanoseconds)
            self.pose_pub.publish(pose)


def through_dds(poses: int) -> dict[str, Any]:
    """The teleop node in its own process; latency pose publish -> command receive."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(private_domain_id()))
    os.environ['ROS_DOMAIN_ID'] = env['ROS_DOMAIN_ID']
    node = subprocess.Popen([sys.executable, '-m', 'visuomotor.ros.teleop_node', '--ros-args',
                             '-p', 'teleop:=sim_quest', '-p', 'robot:=fr3'], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    robot = load_robot('fr3')
    rclpy.init()
    operator = Operator(list(robot.joint_names), [float(v) for v in robot.home_rad])
    executor = SingleThreadedExecutor()
    executor.add_node(operator)
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 30.0
        while operator.pose_pub.get_subscription_count() == 0 or \
                operator.joy_pub.get_subscription_count() == 0 or \
                operator.count_publishers('/safety_bridge/command') == 0:
            executor.spin_once(timeout_sec=0.1)
            if time.monotonic() > deadline or node.poll() is not None:
                raise SystemExit(f'the teleop node did not come up: {node.stderr.read()}')
        player = threading.Thread(target=operator.play, args=(poses, stop))
        player.start()
        while player.is_alive():
            executor.spin_once(timeout_sec=0.01)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.01)
    finally:
        stop.set()
        node.terminate()
        node.wait(timeout=10.0)
        operator.destroy_node()
        rclpy.shutdown()
    sent = np.array(operator.sent)
    latency = []
    for stamp, receive in operator.received:
        index = int(np.searchsorted(sent, stamp, side='right')) - 1
        if index >= 0 and stamp - sent[index] < 1e9 / RATE_HZ:
            latency.append((receive - sent[index]) * 1e-6)
    if len(latency) < len(sent) - 2:  # the first clutched pose or two may precede the grip
        raise SystemExit(f'{len(sent)} clutched poses but only {len(latency)} commands paired '
                         'with them; nothing written')
    latency_ms = np.array(latency)
    return {'poses': len(sent), 'commands': len(latency),
            'median_ms': float(np.median(latency_ms)),
            'p99_ms': float(np.percentile(latency_ms, 99)),
            'max_ms': float(latency_ms.max()), 'min_ms': float(latency_ms.min())}


def in_process(poses: int) -> dict[str, Any]:
    """TeleopCore per pose (check, filter, mapping, IK), microseconds."""
    config, robot = load_teleop_config('sim_quest'), load_robot('fr3')
    core = TeleopCore(config, robot)
    core.on_joint_state(np.array(robot.home_rad))
    rng = np.random.default_rng(0)
    core.on_inputs(0.0, ControllerInputs(grip=0.0), False)  # the stream starts released
    core.on_pose(0.0, pose_from_fields(0.0, 'quest_world', tuple(hand(0.0, rng)),
                                       (0.0, 0.0, 0.0, 1.0), 'quest_world', None))
    costs, errors, previous = [], [], 0.0
    for k in range(poses):
        t = 0.02 * (k + 1)
        core.on_inputs(t, ControllerInputs(grip=1.0), False)
        start = time.perf_counter()
        pose = pose_from_fields(t, 'quest_world', tuple(hand(t, rng)), (0.0, 0.0, 0.0, 1.0),
                                'quest_world', previous)
        target = core.on_pose(t, pose)
        costs.append(time.perf_counter() - start)
        previous = t
        if target is not None:
            core.on_joint_state(target.q)  # a perfect arm
            errors.append(target.position_error_m)
    if len(errors) != poses:
        raise SystemExit(f'only {len(errors)} of {poses} poses gave a target: the clutch did '
                         'not engage; nothing written')
    us = np.array(costs) * 1e6
    return {'poses': poses, 'median_us': float(np.median(us)),
            'p99_us': float(np.percentile(us, 99)),
            'ik_error_max_mm': float(np.max(errors) * 1e3)}


def render(results: dict[str, Any]) -> str:
    """The markdown table."""
    dds, core = results['dds'], results['core']
    return '\n'.join([
        '# Teleop latency: controller pose in -> joint command out',
        '',
        f"{results['date']}, {results['machine']}, {results['cpus']} CPUs. One run, "
        f"{dds['poses']} clutched poses at {RATE_HZ:g} Hz (6 cm/s circle, 0.3 mm jitter), "
        f"{dds['commands']} commands paired with them by stamp.",
        '',
        '| path | median | p99 | max |',
        '|---|---|---|---|',
        f"| PoseStamped published -> JointTrajectory received (teleop node in its own "
        f"process, over DDS) | {dds['median_ms']:.2f} ms | {dds['p99_ms']:.2f} ms | "
        f"{dds['max_ms']:.2f} ms |",
        f"| TeleopCore per pose (check + One Euro + clutch mapping + DLS IK), in process | "
        f"{core['median_us']:.0f} us | {core['p99_us']:.0f} us | |",
        '',
        f"IK position error while following: at most {core['ik_error_max_mm']:.3f} mm.",
        'Not included: Wi-Fi from the headset (80-300 ms reported for quest2ros set-ups, see '
        '../shared/research/mission_anchors.md 7g), the bridge tick (<= 10 ms at 100 Hz) '
        "and the controller's own tracking. Reachy 2's published hand-to-gripper figure "
        'is 74 ms (performance_anchors.md).',
        ''])


def main() -> None:
    """Run both and write bench/results/teleop.{json,md}."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--poses', type=int, default=1500)
    args = parser.parse_args()
    results: dict[str, Any] = {
        'date': datetime.date.today().isoformat(), 'machine': platform.platform(),
        'cpus': os.cpu_count(), 'rate_hz': RATE_HZ,
        'core': in_process(args.poses), 'dds': through_dds(args.poses)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'teleop.json').write_text(json.dumps(results, indent=1) + '\n')
    (RESULTS / 'teleop.md').write_text(render(results))
    print(render(results))  # noqa: T201


if __name__ == '__main__':
    main()
