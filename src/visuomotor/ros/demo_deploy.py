"""Demo stage 6: the bundled policy deployed through the whole ROS graph on the twin.

The deploy graph (visuomotor.ros.graph.deploy_graph, robot:=sim: the twin's sim node with
its cameras, the policy node with the bundled model, the safety bridge in commissioning
limits, everything on simulated time) is started by the launch-free runner as separate
processes talking over DDS, exactly as `ros2 launch visuomotor deploy.launch.py robot:=sim`
would start it. A supervisor node in this process runs the seeded episodes: it arms the
bridge, judges success from the twin's privileged poses (the cube released and resting in
the target square for a second), disarms, and resets the twin to the next seed. The same
bundle is also rolled out in-process without ROS on the same seeds, for comparison.

Writes a video of the rollouts (both cameras, as the policy sees them) and a per-stage
latency plot.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.client import Client
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from visuomotor.errors import VisuomotorError
from visuomotor.policy.bundle import load_bundle
from visuomotor.recording.video import VideoEncoder, VideoSettings
from visuomotor.ros.demo_checks import Check
from visuomotor.ros.graph import deploy_graph
from visuomotor.ros.graph_monitor import GraphMonitor
from visuomotor.ros.image_conversion import image_to_numpy
from visuomotor.ros.runner import GraphProcesses
from visuomotor.ros.stamps import stamp_to_ns
from visuomotor.sim.config import SceneConfig, load_scene
from visuomotor.sim.task import placed
from visuomotor.training.demo_policy import EVAL_SEEDS, NAME, Evaluation, evaluate
from visuomotor.training.demos import DEMO_SCENE

STAGES = ('preprocess_ms', 'inference_ms', 'postprocess_ms', 'observation_to_chunk_ms')


@dataclass(frozen=True)
class EpisodeOutcome:
    """One episode through the ROS graph."""

    seed: int
    success: bool
    sim_s: float
    wall_s: float
    note: str = ''


@dataclass
class DeployFigures:
    """What the stage measured."""

    model: Path
    nodes: list[str]
    in_process: Evaluation
    episodes: list[EpisodeOutcome] = field(default_factory=list)
    latency: dict[str, list[float]] = field(default_factory=dict)
    video: Path | None = None
    plot: Path | None = None
    real_time_factor: float = 1.0
    wall_s: float = 0.0
    faults: int = 0
    twin: dict[str, str] = field(default_factory=dict)  # the sim node's last diagnostics

    @property
    def success_rate(self) -> float:
        """Fraction of successful episodes through ROS."""
        return sum(e.success for e in self.episodes) / max(1, len(self.episodes))


class Supervisor(Node):
    """Arms, resets and judges; records frames for the video and the policy's latencies."""

    def __init__(self, context: Context, scene: SceneConfig) -> None:
        super().__init__('demo_supervisor', context=context,
                         parameter_overrides=[Parameter('use_sim_time', value=True)])
        self.scene = scene
        self.robot = scene.robot
        self.object_xyz: tuple[float, float, float] | None = None
        self.target_xy: tuple[float, float] | None = None
        self.gripper_width = math.nan
        self.joint_stamp = -math.inf
        self.bridge_state = ''
        self.latency: list[dict[str, float]] = []
        self.frames: dict[str, tuple[float, npt.NDArray[np.uint8]]] = {}
        self.on_scene_frame: Callable[[float], None] | None = None
        self.create_subscription(PoseStamped, '/sim/object_pose', self._on_object, 10)
        self.create_subscription(PoseStamped, '/sim/target_pose', self._on_target, 10)
        self.create_subscription(JointState, '/joint_states', self._on_joints, 50)
        self.create_subscription(String, '/policy/latency', self._on_latency, 50)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(String, '/safety_bridge/state', self._on_state, latched)
        for camera in scene.cameras:
            self.create_subscription(Image, f'/{camera.name}/image_raw',
                                     self._frame_handler(camera.name), qos_profile_sensor_data)
        services = (('reset', '/sim/reset'), ('arm', '/safety_bridge/arm'),
                    ('disarm', '/safety_bridge/disarm'),
                    ('acknowledge', '/safety_bridge/acknowledge'))
        self.clients_: dict[str, Client] = {name: self.create_client(Trigger, service)
                                            for name, service in services}

    def now(self) -> float:
        """Simulated time (s)."""
        return float(self.get_clock().now().nanoseconds) * 1e-9

    def _on_object(self, msg: PoseStamped) -> None:
        p = msg.pose.position
        self.object_xyz = (p.x, p.y, p.z)

    def _on_target(self, msg: PoseStamped) -> None:
        self.target_xy = (msg.pose.position.x, msg.pose.position.y)

    def _on_joints(self, msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        fingers = self.robot.gripper.joint_names
        if all(f in index for f in fingers):
            self.gripper_width = sum(msg.position[index[f]] for f in fingers)
        self.joint_stamp = stamp_to_ns(msg.header.stamp) * 1e-9

    def _on_latency(self, msg: String) -> None:
        self.latency.append(json.loads(msg.data))

    def _on_state(self, msg: String) -> None:
        self.bridge_state = msg.data

    def _frame_handler(self, camera: str) -> Callable[[Image], None]:
        def handle(msg: Image) -> None:
            stamp = stamp_to_ns(msg.header.stamp) * 1e-9
            self.frames[camera] = (stamp, image_to_numpy(msg, copy=True))
            if camera == self.scene.cameras[0].name and self.on_scene_frame is not None:
                self.on_scene_frame(stamp)
        return handle

    def placed(self) -> bool:
        """The task's success check on the latest privileged state."""
        if self.object_xyz is None or self.target_xy is None:
            return False
        return placed(self.scene.task, self.object_xyz, self.target_xy, self.gripper_width)


class GraphSession:
    """The supervisor's executor, service calls and the graph's health.

    A GraphMonitor beside the supervisor reports the bridge's state changes, faults with
    their reasons and errors on /diagnostics through `say` as they happen.
    """

    def __init__(self, supervisor: Supervisor, graph: GraphProcesses,
                 say: Callable[[str], None] | None = None) -> None:
        self.node, self.graph = supervisor, graph
        self.say = say or (lambda line: None)
        self.monitor = GraphMonitor(supervisor.context)
        self.executor = SingleThreadedExecutor(context=supervisor.context)
        self.executor.add_node(supervisor)
        self.executor.add_node(self.monitor.node)

    def close(self) -> None:
        """Destroy the monitor (the supervisor belongs to the caller)."""
        self.monitor.close()

    def spin_until(self, done: Callable[[], bool], timeout_wall_s: float, what: str) -> None:
        """Spin until `done()`; raise if a node exits or the wall-clock timeout passes."""
        deadline = time.monotonic() + timeout_wall_s
        while not done():
            exited = self.graph.exited()
            if exited:
                name, code = next(iter(exited.items()))
                raise VisuomotorError(f'{name} exited with code {code} while waiting for '
                                      f'{what}:\n{self.graph.log_tail(name)}')
            if time.monotonic() > deadline:
                raise TimeoutError(f'deploy stage: no {what} within {timeout_wall_s:.0f} s; '
                                   f'logs in {self.graph.log_dir}')
            self.executor.spin_once(timeout_sec=0.02)
            for event in self.monitor.drain():
                self.say(f'      [{event.level}] {event.text}')

    def wait_sim(self, seconds: float) -> None:
        """Spin for `seconds` of simulated time."""
        end = self.node.now() + seconds
        self.spin_until(lambda: self.node.now() >= end, seconds * 10.0 + 30.0,
                        'simulated time to pass')

    def call(self, name: str, timeout_wall_s: float = 20.0) -> Trigger.Response:
        """Call one of the supervisor's Trigger services while the graph keeps running."""
        client = self.node.clients_[name]
        self.spin_until(client.service_is_ready, timeout_wall_s, f'service {client.srv_name}')
        future = client.call_async(Trigger.Request())
        self.spin_until(future.done, timeout_wall_s, f'an answer from {client.srv_name}')
        result = future.result()
        if result is None:
            raise VisuomotorError(f'{client.srv_name} did not answer')
        return result


class _Video:
    """Both cameras side by side, enlarged, with the episode's status written on."""

    def __init__(self, path: Path, scene: SceneConfig, zoom: int = 3) -> None:
        self.scene, self.zoom = scene, zoom
        self.width = sum(c.width for c in scene.cameras) * zoom
        self.height = max(c.height for c in scene.cameras) * zoom
        self.encoder = VideoEncoder(path, self.width, self.height, 10.0, VideoSettings('h264'))
        self.path = path
        self.status = ''
        self._last = -math.inf
        self.dropped = 0

    def add(self, stamp: float, frames: dict[str, tuple[float, npt.NDArray[np.uint8]]]) -> None:
        if abs(stamp - self._last) < 0.095 or len(frames) < len(self.scene.cameras):
            return
        self._last = stamp
        tiles = [cv2.resize(frames[c.name][1], None, fx=self.zoom, fy=self.zoom,
                            interpolation=cv2.INTER_NEAREST) for c in self.scene.cameras]
        canvas = np.ascontiguousarray(np.concatenate(tiles, axis=1), dtype=np.uint8)
        cv2.rectangle(canvas, (0, 0), (self.width, 22), (0, 0, 0), -1)
        cv2.putText(canvas, self.status, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1, cv2.LINE_AA)
        if not self.encoder.add(canvas):
            self.dropped += 1

    def close(self) -> None:
        self.encoder.close()


def run_deploy_stage(out_dir: Path, seeds: Sequence[int] = EVAL_SEEDS, model: str = NAME,
                     real_time_factor: float = 1.0, max_episode_s: float = 45.0,
                     hold_s: float = 1.0, report: Callable[[str], None] | None = None,
                     scene_name: str = DEMO_SCENE, calibration: str = '',
                     in_process: Evaluation | None = None,
                     decision_log: Path | None = None) -> DeployFigures:
    """Run the seeded episodes in-process and through the ROS graph (see the module doc).

    `calibration` is the rig calibration folder whose verification the policy node's gate
    checks (empty: the package's calibration/twin_fr3). `in_process`: the reference already
    rolled out on the same seeds (it is deterministic: simulated time stands still).
    `decision_log`: the safety bridge writes every decision there (JSON lines).
    """
    say = report or (lambda line: None)
    seeds = list(seeds)
    if seeds[0] < 1 or seeds != list(range(seeds[0], seeds[0] + len(seeds))):
        raise ValueError('seeds must be consecutive: the sim node moves to the next on reset')
    start = time.perf_counter()
    from visuomotor.ros.policy_node import resolve_model

    bundle = load_bundle(resolve_model(model))
    if in_process is None:
        say(f'  in-process reference (no ROS): {len(seeds)} episodes')
        in_process = evaluate(bundle, seeds, scene=scene_name)
        say(f'    {sum(r.success for r in in_process.results)}/{len(seeds)} successful '
            f'({in_process.wall_s:.0f} s)')
    nodes = deploy_graph({'robot': 'sim', 'scene': scene_name, 'policy': str(bundle.directory),
                          'real_time_factor': str(real_time_factor),
                          # every episode starts with a reset, the first one too
                          'seed': str(seeds[0] - 1),
                          'backend': 'onnxruntime,torch', 'calibration': calibration,
                          # armed at the first joint state of every episode, as in-process
                          'arm_on_start': 'true'})
    if decision_log is not None:
        nodes = [replace(n, parameters={**n.parameters, 'decision_log': str(decision_log)})
                 if n.executable == 'safety_bridge' else n for n in nodes]
    figures = DeployFigures(bundle.directory, [f'{n.name} ({n.executable})' for n in nodes],
                            in_process, real_time_factor=real_time_factor)
    scene = load_scene(scene_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    # A private domain on this host only unless ROS_DOMAIN_ID says otherwise: the twin's bridge
    # publishes to the same controller topics as a real arm's (runner.graph_domain).
    graph = GraphProcesses(nodes, out_dir / 'deploy_logs')
    context = Context()
    rclpy.init(args=[], context=context, domain_id=graph.domain.domain_id)
    supervisor = Supervisor(context, scene)
    video = _Video(out_dir / 'deploy_rollouts.mp4', scene)
    supervisor.on_scene_frame = lambda stamp: video.add(stamp, supervisor.frames)
    try:
        graph.start()
        say(f'  started {", ".join(figures.nodes)} as processes (logs: {graph.log_dir})')
        session = GraphSession(supervisor, graph, say)
        session.spin_until(lambda: supervisor.bridge_state != '' and supervisor.object_xyz
                           is not None, 180.0, 'the twin and the safety bridge')
        session.wait_sim(1.0)  # so that the first reset is told apart from the start
        for seed in seeds:
            outcome = _episode(session, video, seed, max_episode_s, hold_s)
            figures.episodes.append(outcome)
            say(f'    seed {seed}: {"success" if outcome.success else "FAILURE"} after '
                f'{outcome.sim_s:.1f} s simulated ({outcome.wall_s:.1f} s wall)'
                + (f' [{outcome.note}]' if outcome.note else ''))
        session.call('disarm')
        figures.faults = session.monitor.faults
        figures.twin = session.monitor.values.get('visuomotor sim: twin', {})
        session.close()
    finally:
        graph.close()
        video.close()
        supervisor.destroy_node()
        rclpy.shutdown(context=context)
    figures.video = video.path
    figures.latency = {k: [float(s[k]) for s in supervisor.latency if k in s] for k in STAGES}
    figures.plot = latency_plot(figures.latency, out_dir / 'deploy_latency.png')
    figures.wall_s = time.perf_counter() - start
    return figures


def _episode(session: GraphSession, video: _Video, seed: int, max_s: float, hold_s: float
             ) -> EpisodeOutcome:
    node = session.node
    wall = time.monotonic()
    if node.bridge_state.startswith('fault'):  # the episode ended in a fault: clear it
        for _ in range(50):
            answer = session.call('acknowledge')
            if answer.success:
                break
            session.wait_sim(0.2)  # the stop must finish first
        else:
            raise VisuomotorError('the safety bridge refused to acknowledge: '
                                  f'{answer.message}')
    answer = session.call('disarm')
    if not answer.success:
        raise VisuomotorError(f'the safety bridge refused to disarm: {answer.message}')
    session.spin_until(lambda: node.bridge_state.startswith('disarmed'), 30.0,
                       'the bridge to disarm')
    before = node.now()
    answer = session.call('reset')
    if f'seed {seed}' not in answer.message:
        raise VisuomotorError(f'/sim/reset answered {answer.message!r}, expected seed {seed}')
    node.object_xyz = node.target_xy = None  # the poses of the new episode only
    session.spin_until(lambda: node.now() < before - 0.5 and node.joint_stamp < before - 0.5
                       and node.object_xyz is not None, 30.0, 'the twin to restart')
    # The bridge (arm_on_start) arms itself at the first joint state of the episode, before
    # the policy's first chunk, as the in-process rollout arms it: it holds the measured pose
    # until a command stamped after the arming arrives (a stale plan of the last episode is
    # from another timeline: refused).
    session.spin_until(lambda: node.bridge_state in ('holding', 'armed'), 60.0,
                       'the bridge to arm at the start of the episode')
    start = node.now()
    since = math.nan

    def finished() -> bool:
        nonlocal since
        now = node.now()
        video.status = f'seed {seed}  t={now - start:5.1f} s  bridge {node.bridge_state}'
        if node.placed():
            since = now if math.isnan(since) else since
            if now - since >= hold_s:
                return True
        else:
            since = math.nan
        return now - start > max_s or node.bridge_state.startswith('fault')

    session.spin_until(finished, max_s / 0.2 + 60.0, f'the end of episode {seed}')
    success = not math.isnan(since) and node.now() - since >= hold_s
    note = node.bridge_state if node.bridge_state.startswith('fault') else ''
    return EpisodeOutcome(seed, success, node.now() - start, time.monotonic() - wall, note)


def latency_plot(latency: dict[str, list[float]], path: Path) -> Path:
    """Per-stage latency distributions (median, p5-p95 box, p99 whisker) as a PNG."""
    width, row, left = 900, 70, 230
    height = 60 + row * len(latency)
    canvas = np.full((height, width, 3), 255, np.uint8)
    top = max((float(np.percentile(v, 99)) for v in latency.values() if v), default=1.0)
    scale = (width - left - 40) / max(top * 1.1, 1e-6)
    cv2.putText(canvas, 'policy node latency per chunk (ms): red median, box p5-p95, line to '
                'p99', (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    for i, (stage, values) in enumerate(latency.items()):
        y = 60 + row * i + row // 2
        label = stage.removesuffix('_ms').replace('_', ' ')
        cv2.putText(canvas, label, (10, y + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1,
                    cv2.LINE_AA)
        if not values:
            continue
        p5, p50, p95, p99 = (float(np.percentile(values, q)) for q in (5, 50, 95, 99))

        def x(v: float) -> int:
            return int(left + v * scale)
        cv2.line(canvas, (x(p5), y), (x(p99), y), (90, 90, 90), 1)
        cv2.rectangle(canvas, (x(p5), y - 12), (x(p95), y + 12), (230, 160, 60), -1)
        cv2.line(canvas, (x(p50), y - 16), (x(p50), y + 16), (0, 0, 200), 2)
        cv2.putText(canvas, f'{p50:.1f} (p99 {p99:.1f})', (x(p99) + 8, y + 5),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(str(path), canvas)
    return path


def checks(figures: DeployFigures) -> list[Check]:
    """ROS success of at least 80%, within 5 points of the same policy in-process."""
    ros, ref = figures.success_rate, figures.in_process.success_rate
    return [Check('ROS success >= 80%', ros >= 0.8 - 1e-9),
            Check('ROS success within 5 points of in-process', abs(ros - ref) <= 0.05 + 1e-9)]


def summary_lines(figures: DeployFigures) -> list[str]:
    """The stage's report lines."""
    ros = figures.success_rate
    ref = figures.in_process.success_rate
    lines = [f'  graph: {", ".join(figures.nodes)}; sim at {figures.real_time_factor:g}x '
             'real time',
             f'  success through ROS: {sum(e.success for e in figures.episodes)}/'
             f'{len(figures.episodes)} ({ros:.0%}); in-process: '
             f'{sum(r.success for r in figures.in_process.results)}/'
             f'{len(figures.in_process.results)} ({ref:.0%}); difference '
             f'{(ros - ref) * 100:+.0f} points',
             '  policy node latency per chunk (median / p99 ms):']
    for stage, values in figures.latency.items():
        if values:
            unit = 'simulated time' if stage == 'observation_to_chunk_ms' else 'wall clock'
            lines.append(f'    {stage.removesuffix("_ms"):<22} {np.median(values):7.2f} / '
                         f'{np.percentile(values, 99):7.2f}   ({unit})')
    lines += [f'  wrote: {figures.video}', f'         {figures.plot}',
              f'  stage time: {figures.wall_s:.0f} s']
    return lines
