"""Benchmark: sustained recording of 2 and 3 cameras at 640x480 and 30 Hz on this machine.

The real pipeline, as separate processes: the capture node (synthetic cameras, 640x480 at
30 Hz, each frame stamped at capture) publishes over DDS to the recorder node (30 rows per
second, AV1 video as LeRobot defaults, or H.264), which commits one episode at the end.
Measured, per configuration:
- frames dropped: sequence gaps between consecutive rows (the recorder skipped a captured
  frame), rows the recorder could not align (ticks refused), rows skipped because an encoder
  fell behind; target 0 over 5 minutes for 2 cameras;
- CPU use of each process (user + system time / wall time, in cores) and of the machine;
- disk: bytes written per second (the committed dataset) and the commit time;
- capture-to-publish latency per camera (the capture node's /diagnostics: median, p99);
- skew of each camera's frame to its row time (the dataset check).

The operator node plays the robot and its safety bridge: joint states of an arm at rest at
100 Hz, the bridge's latched state `armed` and the command it sends (`~/limited`, holding the
arm) at 100 Hz, so every row has a valid action (the recorder flags rows without one and
refuses an episode that has none).

Run: python bench/recording.py [--seconds 300] [--codec av1] [--results DIR]
(writes DIR/recording.{json,md}; DIR defaults to bench/results: give another one for a
shortened run, so the full run's figures stay)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from visuomotor.recording.check import check_dataset
from visuomotor.robots.description import load_robot

RESULTS = Path(__file__).resolve().parent / 'results'
TICKS = os.sysconf('SC_CLK_TCK')


def _rig(cameras: int, folder: Path) -> Path:
    names = ['scene_camera', 'wrist_camera', 'side_camera'][:cameras]
    lines = [f'rig: bench_{cameras}', 'cameras:']
    for name in names:
        lines += [f'  - name: {name}', '    backend: fake', '    width: 640', '    height: 480',
                  '    fps: 30']
    path = folder / f'bench_{cameras}.yaml'
    path.write_text('\n'.join(lines) + '\n')
    return path


def _cpu_s(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _machine_cpu() -> tuple[float, float]:
    values = [int(v) for v in Path('/proc/stat').read_text().split('\n')[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) / TICKS, idle / TICKS


class Operator(Node):
    """Calls the recorder's services and collects the capture node's diagnostics."""

    def __init__(self) -> None:
        super().__init__('bench_operator')
        self.clients_ = {n: self.create_client(Trigger, f'/recorder/{n}')
                         for n in ('start', 'stop')}
        self.latency: dict[str, str] = {}
        self.capture_dropped: dict[str, str] = {}
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        # The robot's joint states at 100 Hz (an arm at rest), as a driver would publish them.
        robot = load_robot('fr3')
        self._joints = JointState(name=list(robot.joint_names + robot.gripper.joint_names),
                                  position=[*robot.home_rad, 0.02, 0.02])
        self.joint_pub = self.create_publisher(JointState, '/joint_states', 50)
        # The safety bridge, armed and holding the arm where it is.
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_publisher(String, '/safety_bridge/state', latched).publish(
            String(data='armed'))
        self._limited = JointState(name=list(robot.joint_names),
                                   position=list(robot.home_rad))
        self.limited_pub = self.create_publisher(JointState, '/safety_bridge/limited', 50)
        self.create_timer(0.01, self._publish_joints)

    def _publish_joints(self) -> None:
        stamp = self.get_clock().now().to_msg()
        self._joints.header.stamp = self._limited.header.stamp = stamp
        self.joint_pub.publish(self._joints)
        self.limited_pub.publish(self._limited)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith('visuomotor: camera '):
                values = {v.key: v.value for v in status.values}
                self.capture_dropped[status.name.removeprefix('visuomotor: camera ')] = \
                    values.get('dropped', '?')
                if 'capture_to_publish_ms' in values:
                    self.latency[status.name.removeprefix('visuomotor: camera ')] = \
                        values['capture_to_publish_ms']

    def call(self, name: str, timeout_s: float = 60.0) -> Trigger.Response:
        client = self.clients_[name]
        if not client.wait_for_service(timeout_sec=30.0):
            raise RuntimeError(f'/recorder/{name} is not available')
        future = client.call_async(Trigger.Request())
        rclpy.spin_until_future_complete(self, future, timeout_sec=timeout_s)
        result = future.result()
        if result is None:
            raise RuntimeError(f'/recorder/{name} did not answer')
        return result


def _committed(dataset: Path) -> int:
    """Episodes the dataset's info.json (its commit record) counts; 0 before it exists."""
    try:
        return int(json.loads((dataset / 'meta' / 'info.json').read_text())['total_episodes'])
    except (OSError, ValueError, KeyError):
        return 0


def run(cameras: int, seconds: float, codec: str, work: Path) -> dict[str, Any]:
    """One configuration; returns its figures."""
    rig = _rig(cameras, work)
    dataset = work / f'dataset_{cameras}'
    env = dict(os.environ)
    capture = subprocess.Popen(
        [sys.executable, '-m', 'visuomotor.ros.capture_node', '--ros-args', '-p',
         f'rig:={rig}'], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    recorder = subprocess.Popen(
        [sys.executable, '-m', 'visuomotor.ros.recorder_node', '--ros-args', '-p',
         f'rig:={rig}', '-p', f'dataset:={dataset}', '-p', 'fps:=30.0', '-p',
         f'codec:={codec}', '-p', 'task:=bench', '-p',
         'calibration_override:=benchmark with synthetic cameras (nothing to calibrate)'],
        env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    operator = Operator()
    try:
        time.sleep(3.0)  # discovery and warm-up
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            rclpy.spin_once(operator, timeout_sec=0.1)
        cpu0 = {p.pid: _cpu_s(p.pid) for p in (capture, recorder)}
        machine0 = _machine_cpu()
        response = operator.call('start')
        if not response.success:
            raise RuntimeError(f'start refused: {response.message}')
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            rclpy.spin_once(operator, timeout_sec=0.2)
        wall = time.monotonic() - started
        cpu = {name: (_cpu_s(p.pid) - cpu0[p.pid]) / wall
               for name, p in (('capture', capture), ('recorder', recorder))}
        machine1 = _machine_cpu()
        total = machine1[0] - machine0[0]
        busy_cores = (total - (machine1[1] - machine0[1])) / total * (os.cpu_count() or 1) \
            if total > 0 else float('nan')
        commit_start = time.monotonic()
        response = operator.call('stop')
        if not response.success:
            raise RuntimeError(f'stop refused: {response.message}')
        while _committed(dataset) < 1:
            rclpy.spin_once(operator, timeout_sec=0.2)
            if time.monotonic() - commit_start > 600:
                raise RuntimeError('the commit did not finish in 10 minutes')
        commit_s = time.monotonic() - commit_start
    finally:
        for process in (capture, recorder):
            process.send_signal(signal.SIGINT)
        for process in (capture, recorder):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        operator.destroy_node()
    report = check_dataset(dataset, decode=False)
    episode = report.episodes[0]
    size = sum(f.stat().st_size for f in dataset.rglob('*') if f.is_file())
    expected_rows = wall * 30.0
    return {
        'cameras': cameras, 'seconds': round(wall, 1), 'codec': codec,
        'rows': episode.length, 'rows_expected': round(expected_rows),
        'frames_dropped': dict(episode.dropped), 'rows_reusing_a_frame': dict(episode.repeated),
        'row_rate_hz': round(episode.row_rate_hz, 3),
        'camera_rate_hz': {k: round(v, 3) for k, v in episode.camera_rate_hz.items()},
        'skew_ms_median_p99_max': {k: [round(x, 2) for x in v]
                                   for k, v in episode.skew_ms.items()},
        'marks': episode.warnings, 'check_failures': report.failures + episode.failures,
        'cpu_cores': {k: round(v, 3) for k, v in cpu.items()},
        'machine_busy_cores': round(busy_cores, 3),
        'disk_mb_per_s': round(size / 1e6 / wall, 3), 'dataset_mb': round(size / 1e6, 1),
        'commit_s': round(commit_s, 1), 'capture_to_publish_ms': operator.latency,
        'dropped_in_the_capture_node': operator.capture_dropped,
    }


def main() -> None:
    """Run 2 and 3 cameras and write bench/results/recording.{json,md}."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seconds', type=float, default=300.0)
    parser.add_argument('--codec', default='av1', choices=('av1', 'h264'))
    parser.add_argument('--cameras', type=int, nargs='+', default=[2, 3])
    parser.add_argument('--results', type=Path, default=RESULTS,
                        help='folder for recording.{json,md} (default: bench/results)')
    args = parser.parse_args()
    rclpy.init()
    results: dict[str, Any] = {'date': datetime.date.today().isoformat(),
                               'machine': platform.platform(), 'cpus': os.cpu_count(),
                               'runs': []}
    work = Path(tempfile.mkdtemp(prefix='vm_bench_rec_'))
    try:
        for cameras in args.cameras:
            results['runs'].append(run(cameras, args.seconds, args.codec, work))
            print(json.dumps(results['runs'][-1]), flush=True)  # noqa: T201
    finally:
        rclpy.try_shutdown()
        shutil.rmtree(work, ignore_errors=True)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / 'recording.json').write_text(json.dumps(results, indent=1) + '\n')
    (args.results / 'recording.md').write_text(render(results))
    print(render(results))  # noqa: T201


def render(results: dict[str, Any]) -> str:
    """The Markdown report."""
    lines = ['# Recording benchmark', '',
             f"{results['date']}, {results['machine']}, {results['cpus']} CPUs. Capture node "
             '(synthetic 640x480 cameras at 30 Hz) -> DDS -> recorder node (30 rows/s) -> one '
             'LeRobot v3 episode, separate processes.', '',
             '| cameras | s | codec | rows / expected | frames dropped | rows reusing a frame | '
             'CPU capture / recorder / machine (cores) | disk MB/s | commit s | '
             'capture->publish ms | skew p99 ms |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in results['runs']:
        dropped = sum(r['frames_dropped'].values())
        repeated = sum(r['rows_reusing_a_frame'].values())
        latency = '; '.join(f'{k}: {v}' for k, v in sorted(r['capture_to_publish_ms'].items()))
        skew = max(v[1] for v in r['skew_ms_median_p99_max'].values())
        lines.append(
            f"| {r['cameras']} | {r['seconds']:.0f} | {r['codec']} | {r['rows']} / "
            f"{r['rows_expected']} | {dropped} | {repeated} | {r['cpu_cores']['capture']:.2f} / "
            f"{r['cpu_cores']['recorder']:.2f} / {r['machine_busy_cores']:.2f} | "
            f"{r['disk_mb_per_s']:.2f} | {r['commit_s']:.1f} | {latency} | {skew:.1f} |")
    for r in results['runs']:
        if r['marks'] or r['check_failures']:
            lines.append(f"\n{r['cameras']} cameras: {r['check_failures'] + r['marks']}")
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    sys.exit(main())
