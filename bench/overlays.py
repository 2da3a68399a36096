"""Benchmark: the policy node's control loop with live overlays off and on.

The policy node runs as its own process (`python -m visuomotor.ros.policy_node`) with the
bundled demo policy (models/pick_place_fr3: two 96x96 cameras, Levine encoders, ACT-style
head; ONNX Runtime, CPU provider) at its 10 Hz. This process plays a rig: twin frames of
both cameras at 20 Hz (rendered once from the fr3_demo scene at several arm poses, cycled) and
/joint_states at 100 Hz. It records, per chunk, the node's ~/latency report (preprocess,
inference and observation-to-chunk times) and the arrival time of every command (the tick
period and its jitter).

Settings, each run for the same time, interleaved (A B C D A B C D) so drift in the shared
machine's load spreads over all of them:
- off: debug_rate_hz 0;
- points: feature points (the network's extra ONNX outputs) drawn at 5 Hz;
- points + saliency: as above, plus a FullGrad map (backward pass of the PyTorch twin) at 1 Hz;
- saliency at 5 Hz: the heaviest setting, to show where overlays start to cost.

Results: bench/results/overlays.{json,md}: medians and p99 per setting and the ratio of the
medians to "off", from one run.
Run: make bench   (or: python bench/overlays.py [--seconds S] [--rounds R])
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from visuomotor.paths import share_dir
from visuomotor.robots.description import load_robot
from visuomotor.ros.image_conversion import numpy_to_image
from visuomotor.ros.runner import private_domain_id
from visuomotor.sim.config import load_scene
from visuomotor.sim.twin import Twin

RESULTS = Path(__file__).resolve().parent / 'results'
MODEL = share_dir() / 'models' / 'pick_place_fr3'
SETTINGS: dict[str, dict[str, str]] = {
    'off': {'debug_rate_hz': '0.0'},
    'points 5 Hz': {'debug_rate_hz': '5.0'},
    'points 5 Hz + saliency 1 Hz': {'debug_rate_hz': '5.0', 'debug_saliency': 'true',
                                    'debug_saliency_rate_hz': '1.0'},
    'saliency 5 Hz': {'debug_rate_hz': '5.0', 'debug_saliency': 'true',
                      'debug_saliency_rate_hz': '5.0'},
}


def twin_frames(count: int = 8) -> list[dict[str, np.ndarray]]:
    """Both cameras' frames at `count` arm poses between home and a reach."""
    robot = load_robot('fr3')
    frames = []
    with Twin(load_scene('fr3_demo')) as twin:
        home = np.array(robot.home_rad)
        for k in range(count):
            q = home + np.array([0.0, 0.25, 0.0, -0.2, 0.0, 0.2, 0.0]) * k / max(1, count - 1)
            twin.reset(arm_positions=q.tolist())
            frames.append({n: np.ascontiguousarray(i) for n, i in twin.render().items()})
    return frames


class Rig(Node):
    """Frames at 20 Hz, joint states at 100 Hz; records latency reports and commands."""

    def __init__(self, frames: list[dict[str, np.ndarray]]) -> None:
        super().__init__('overlay_bench_rig')
        self.robot = load_robot('fr3')
        self.frames = frames
        self.k = 0
        self.pubs = {c: self.create_publisher(Image, f'/{c}/image_raw', 10) for c in frames[0]}
        self.joint_pub = self.create_publisher(JointState, '/joint_states', 10)
        self.reports: list[dict[str, float]] = []
        self.commands: list[float] = []
        self.overlays = 0
        self.create_subscription(String, '/policy/latency',
                                 lambda m: self.reports.append(json.loads(m.data)), 50)
        self.create_subscription(JointTrajectory, '/safety_bridge/command',
                                 lambda _m: self.commands.append(time.monotonic()), 50)
        for camera in frames[0]:
            self.create_subscription(Image, f'/policy/debug/{camera}', self._on_overlay, 5)
        self.create_timer(0.05, self._on_frames)
        self.create_timer(0.01, self._on_joints)

    def _on_overlay(self, _msg: Image) -> None:
        self.overlays += 1

    def _on_frames(self) -> None:
        stamp = self.get_clock().now().to_msg()
        images = self.frames[self.k % len(self.frames)]
        self.k += 1
        for camera, pub in self.pubs.items():
            pub.publish(numpy_to_image(images[camera], 'rgb8', stamp=stamp))

    def _on_joints(self) -> None:
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        fingers = list(self.robot.gripper.joint_names)
        msg.name = list(self.robot.joint_names) + fingers
        msg.position = [float(v) for v in self.robot.home_rad] + [0.02] * len(fingers)
        self.joint_pub.publish(msg)


def run_setting(rig: Rig, executor: SingleThreadedExecutor, params: dict[str, str],
                seconds: float, env: dict[str, str]) -> dict[str, list[float]]:
    """One policy node process with `params`, measured for `seconds` after its first chunk."""
    args = [sys.executable, '-m', 'visuomotor.ros.policy_node', '--ros-args',
            '-p', f'model:={MODEL}', '-p', 'backend:=onnxruntime', '-p', 'threads:=1',
            '-p', 'calibration_override:=overlay benchmark on twin frames']
    for key, value in params.items():
        args += ['-p', f'{key}:={value}']
    node = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60.0
        rig.reports.clear()
        while len(rig.reports) < 20:  # warm: past start-up and the first chunks
            executor.spin_once(timeout_sec=0.01)
            if time.monotonic() > deadline or node.poll() is not None:
                raise SystemExit('the policy node did not produce chunks: '
                                 + (node.stderr.read() if node.poll() is not None else ''))
        rig.reports.clear()
        rig.commands.clear()
        rig.overlays = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.01)
        reports, commands, overlays = list(rig.reports), list(rig.commands), rig.overlays
    finally:
        node.terminate()
        node.wait(timeout=10.0)
    return {'compute_ms': [r['preprocess_ms'] + r['inference_ms'] + r['postprocess_ms']
                           for r in reports],
            'inference_ms': [r['inference_ms'] for r in reports],
            'preprocess_ms': [r['preprocess_ms'] for r in reports],
            'observation_to_chunk_ms': [r['observation_to_chunk_ms'] for r in reports],
            'tick_period_ms': list(np.diff(commands) * 1e3),
            'overlays_per_s': [overlays / seconds]}


def _stats(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    return {'n': int(len(array)), 'median': float(np.median(array)),
            'p99': float(np.percentile(array, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=30.0, help='per setting and round')
    parser.add_argument('--rounds', type=int, default=2)
    args = parser.parse_args()
    env = dict(os.environ, ROS_DOMAIN_ID=str(private_domain_id()))
    os.environ['ROS_DOMAIN_ID'] = env['ROS_DOMAIN_ID']
    frames = twin_frames()
    rclpy.init()
    rig = Rig(frames)
    executor = SingleThreadedExecutor()
    executor.add_node(rig)
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in SETTINGS}
    try:
        for _ in range(args.rounds):
            for name, params in SETTINGS.items():
                got = run_setting(rig, executor, params, args.seconds, env)
                for key, values in got.items():
                    samples[name].setdefault(key, []).extend(values)
                print(f'{name}: {len(got["inference_ms"])} chunks', flush=True)
    finally:
        executor.shutdown()
        rig.destroy_node()
        rclpy.shutdown()
    results: dict[str, Any] = {
        'date': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
        'machine': f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores',
        'model': 'models/pick_place_fr3 (2 cameras 96x96, onnxruntime CPU, 1 thread)',
        'seconds_per_setting': args.seconds * args.rounds, 'settings': {}}
    for name, metrics in samples.items():
        entry = {k: _stats(v) for k, v in metrics.items() if k != 'overlays_per_s'}
        entry['overlays_per_s'] = float(np.mean(metrics['overlays_per_s']))
        results['settings'][name] = entry
    base = results['settings']['off']
    for entry in results['settings'].values():
        entry['median_ratio_to_off'] = {
            k: entry[k]['median'] / base[k]['median']
            for k in ('compute_ms', 'observation_to_chunk_ms', 'tick_period_ms')}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'overlays.json').write_text(json.dumps(results, indent=2) + '\n')
    (RESULTS / 'overlays.md').write_text(render(results))
    print(render(results))


def render(results: dict[str, Any]) -> str:
    """The markdown table."""
    lines = ['# Policy node control loop with live overlays off and on', '',
             f'{results["date"]}, {results["machine"]}; {results["model"]}; '
             f'{results["seconds_per_setting"]:.0f} s per setting (interleaved rounds). '
             'Medians / p99 in ms; ratio = median / median with overlays off. Chunk compute = '
             'preprocess + inference + postprocess on the inference thread; observation -> '
             'chunk also holds the wait from the newest frame (20 Hz) to the tick, whose phase '
             'is set anew each time a node starts.', '',
             '| setting | overlay images/s | chunk compute | inference | observation -> chunk '
             '| tick period | ratio (compute, obs->chunk, tick) |',
             '|---|---|---|---|---|---|---|']
    for name, entry in results['settings'].items():
        ratio = entry['median_ratio_to_off']

        def cell(key: str, entry: dict[str, Any] = entry) -> str:
            return f'{entry[key]["median"]:.2f} / {entry[key]["p99"]:.2f}'
        lines.append(f'| {name} | {entry["overlays_per_s"]:.1f} | {cell("compute_ms")} | '
                     f'{cell("inference_ms")} | '
                     f'{cell("observation_to_chunk_ms")} | {cell("tick_period_ms")} | '
                     f'{ratio["compute_ms"]:.2f}, {ratio["observation_to_chunk_ms"]:.2f}, '
                     f'{ratio["tick_period_ms"]:.2f} |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    main()
