"""The policy node: cameras and joint states in, time-parameterised chunks to the safety bridge.

Startup refuses (exit 2, a message saying why and what to run) without a passing, recent
verification record of the rig's cameras (the calibration gate, visuomotor.calibration.gate;
`calibration_override:=<reason>` starts anyway, logged loudly and shown on /diagnostics).
It refuses (exit 2, a message naming both values) when the bundle's contract does not
match the rig: camera names, joint names, control rate; then the chosen backend must
reproduce the bundle's golden outputs, and is warmed up before the node reports ready.

Subscribes: each model camera's image topic (sensor_msgs/Image, header.stamp = capture
time), /joint_states.
Publishes:
    ~command (trajectory_msgs/JointTrajectory, default /safety_bridge/command): every control
        tick, and as soon as a new chunk exists, the planned rows still to come. header.stamp
        is the time the plan was issued at, points' time_from_start are relative to it; each
        row's absolute time comes from its observation's capture time (latency compensation).
        The plan is re-sent each tick (the bridge's watchdog expects commands at its rate) and
        stops when no fresh chunk exists, so a stalled policy or a bad camera stops the arm.
        The plan comes from visuomotor.policy.loop, the loop the in-process rollout runs too.
    gripper widths (std_msgs/Float64, default /safety_bridge/gripper) when the model has one.
    ~/latency (std_msgs/String, JSON): per chunk, the stage times (preprocess, inference,
        postprocess, ms wall clock) and the observation-to-chunk time (ms, ROS clock).
    ~/debug/<camera> (sensor_msgs/Image, rgb8), with debug_rate_hz > 0: what the network
        sees with its spatial-softmax feature points (and, with debug_saliency, a FullGrad
        map), drawn on a low-priority thread from inferences the loop makes anyway
        (visuomotor.ros.debug_overlays; bench/overlays.py measures the control loop with
        and without them).
    /diagnostics: backend, per-stage latency (observation age, preprocess, inference,
        postprocess, publish; median and p99), per-camera rate/skew/drops, refusals.
Inference runs on a worker thread, off the ROS callback thread.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, String
from trajectory_msgs.msg import JointTrajectory

from visuomotor.calibration.gate import override_banner, require_gate
from visuomotor.errors import ImageConversionError, VisuomotorError
from visuomotor.paths import share_dir
from visuomotor.policy.backends import open_backend
from visuomotor.policy.bundle import load_bundle
from visuomotor.policy.contract import CameraStream, LiveRig, check_rig
from visuomotor.policy.loop import PolicyCommand, PolicyLoop
from visuomotor.policy.node_schema import (
    POLICY_NODE_PARAMS,
    backend_options,
    backend_order,
    camera_topics,
    overlay_settings,
    scheduler_config,
    sync_config,
)
from visuomotor.policy.runtime import Observation, PolicyRuntime
from visuomotor.robots.description import load_robot
from visuomotor.ros.debug_overlays import DebugOverlays
from visuomotor.ros.image_conversion import image_to_numpy
from visuomotor.ros.lockstep import LockstepReporter
from visuomotor.ros.node_main import run_node
from visuomotor.ros.parameters import declare_parameters
from visuomotor.ros.pending import take_pending
from visuomotor.ros.stamps import stamp_to_ns
from visuomotor.ros.trajectory_conversion import trajectory_to_msg


def resolve_model(text: str) -> Path:
    """A bundle path, or a name under models/."""
    if not text:
        raise VisuomotorError('model: no policy bundle given; set model:=<bundle directory> '
                              '(e.g. models/<name>)')
    path = Path(text)
    if path.exists() or '/' in text:
        return path
    return share_dir() / 'models' / text


class PolicyNode(Node):
    """Thin ROS wrapper of PolicyLoop + PolicyRuntime (see the module docstring)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__('policy', **kwargs)  # type: ignore[arg-type]
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        params = declare_parameters(self, POLICY_NODE_PARAMS)
        log = self.get_logger()
        self.calibration = require_gate(
            str(params['calibration']), float(params['calibration_max_age_h']),
            str(params['calibration_override']), datetime.datetime.now(datetime.UTC))
        if self.calibration.override:
            log.error(override_banner(self.calibration))
        else:
            log.info(f'calibration gate: {self.calibration.message}')
        bundle = load_bundle(resolve_model(str(params['model'])))
        spec = bundle.spec
        robot = load_robot(str(params['robot']))
        rate = float(params['control_rate_hz']) or spec.control_rate_hz
        topics = camera_topics(str(params['camera_topics']), spec.camera_names)
        check_rig(spec, LiveRig({n: CameraStream(t) for n, t in topics.items()},
                                robot.joint_names, rate, robot.name,
                                robot.gripper.joint_names))
        log.info(spec.describe())
        backend, report = open_backend(bundle, backend_order(params), backend_options(params))
        for kind, reason in report.skipped:
            log.warning(f'backend {kind} skipped: {reason}')
        golden = report.golden
        log.info(f'backend: {backend.name}; golden outputs reproduced (max |error| '
                 f'{golden.max_abs_error if golden else float("nan"):.2e}); warm-up '
                 f'{", ".join(f"{t:.1f}" for t in report.warmup_ms)} ms')
        self.backend_name = backend.name
        self.runtime = PolicyRuntime(bundle, backend, robot=robot, seed=int(params['seed']))
        scheduler = scheduler_config(params, spec.chunk_length, spec.control_period_s,
                                     spec.execution)
        self.loop = PolicyLoop(spec, sync_config(params), scheduler)
        self._lock = threading.Lock()
        self._pending: Observation | None = None
        self._fallback: PolicyCommand | None = None
        self._worker = threading.Thread(target=self._infer_forever, name='policy-inference',
                                        daemon=True)
        self.command_pub = self.create_publisher(JointTrajectory, str(params['command_topic']),
                                                 10)
        self.gripper_pub = self.create_publisher(Float64, str(params['gripper_topic']), 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.latency_pub = self.create_publisher(String, '~/latency', 50)
        self._inputs = []  # handled first at each tick: decide on what has arrived
        for name, topic in topics.items():
            handler = self._frame_handler(name)
            self._inputs.append((self.create_subscription(Image, topic, handler,
                                                          qos_profile_sensor_data), handler))
            log.info(f'camera {name!r} <- {topic}')
        self._inputs.append((self.create_subscription(JointState, '/joint_states',
                                                      self._on_joint_state, 50),
                             self._on_joint_state))
        # On the twin in lockstep, simulated time waits while an inference runs (as it does
        # in the in-process rollout), within the sim node's max_lead_s.
        self.lockstep = LockstepReporter(self, bool(params['lockstep']))
        self._refusal_logged = ''
        self._next_diagnostics = 0.0
        self._publish_ms = 0.0
        self.overlays: DebugOverlays | None = None
        overlays = overlay_settings(params)
        if overlays is not None:
            self.overlays = DebugOverlays(
                self, bundle, overlays, self._now,
                network_points=bool(self.runtime.feature_point_outputs),
                torch_threads=0 if backend.name.startswith('torch') else 1)
            log.info(f'live overlays on ~/debug/<camera> at <= {overlays.rate_hz:g} Hz: '
                     + self._overlay_source(overlays.saliency))
        self._worker.start()
        self.lockstep.follow(self.create_timer(spec.control_period_s, self._tick))
        log.info(f'ready: {spec.name} at {rate:g} Hz, {self.loop.scheduler.config.mode}, '
                 f'commands -> {params["command_topic"]}')

    def _now(self) -> float:
        return float(self.get_clock().now().nanoseconds) * 1e-9

    def _overlay_source(self, saliency: bool) -> str:
        views = self.overlays.views if self.overlays is not None else None
        if self.runtime.feature_point_outputs:
            points = f"feature points from the network's own outputs ({self.backend_name})"
        elif views is not None and views.has_points:
            points = 'feature points from the PyTorch twin (a second pass, overlay thread)'
        else:
            points = ('no feature points (the encoder has no spatial softmax, or the bundle '
                      'has neither feature-point outputs nor torch weights)')
        return points + ('; FullGrad saliency from the PyTorch twin' if saliency else '')

    # -- inputs -----------------------------------------------------------------------------

    def _frame_handler(self, camera: str):  # type: ignore[no-untyped-def]
        def handle(msg: Image) -> None:
            try:
                image = image_to_numpy(msg, copy=True)
            except ImageConversionError as exc:
                self.loop.counters[f'{camera}_malformed'] += 1
                self.get_logger().error(f'camera {camera}: malformed image dropped: {exc}',
                                        throttle_duration_sec=2.0)
                return
            with self._lock:
                self._check_clock()
                error = self.loop.on_frame(camera, stamp_to_ns(msg.header.stamp) * 1e-9, image,
                                           encoding=msg.encoding)
            if error is not None and error.startswith('camera '):
                self.get_logger().error(error, throttle_duration_sec=2.0)
        return handle

    def _check_clock(self) -> None:
        """Clear the buffers when the clock went back (a reset twin), before new data lands.

        So the first frames of the new timeline are kept. Call with the lock held.
        """
        if self.loop.check_clock(self._now()):
            self.get_logger().warning('the clock went backwards (a sim reset?): buffers and '
                                      'chunks cleared')

    def _on_joint_state(self, msg: JointState) -> None:
        with self._lock:
            self._check_clock()
            reason = self.loop.on_joint_state(stamp_to_ns(msg.header.stamp) * 1e-9,
                                              list(msg.name), list(msg.position))
        if reason is not None and 'older' not in reason and 'repeated' not in reason:
            self.get_logger().error(f'/joint_states: {reason}', throttle_duration_sec=2.0)

    # -- inference (worker thread) ----------------------------------------------------------

    def _infer_forever(self) -> None:
        while not self._stop.is_set():
            if not self._wake.wait(0.1):
                continue
            self._wake.clear()
            with self._lock:
                obs, self._pending = self._pending, None
            if obs is None:
                continue
            chunk, error = None, 'the inference thread stopped'
            overlay = self.overlays is not None and self.overlays.due(self._now())
            try:
                chunk = self.runtime(obs, extras=overlay)
                error = ''
            except Exception as exc:  # noqa: BLE001 - any failure drops this chunk, loudly
                error = f'{type(exc).__name__}: {exc}'
                self.get_logger().error(f'inference failed, chunk dropped: {error}',
                                        throttle_duration_sec=2.0)
            finally:
                now = self._now()
                with self._lock:  # always, so the loop never waits for a result forever
                    self.loop.on_chunk(chunk, now, self.runtime.last_times, error)
                    command = self.loop.command(now) if chunk is not None else None
                    command, self._fallback = command or self._fallback, None
                if command is not None:
                    self._publish(command)  # the new chunk now, not one period later
                self.lockstep.release(obs.stamp_s)
            if chunk is not None and overlay and self.overlays is not None:
                self.overlays.hand_over(obs.stamp_s, now, self.runtime.last_inputs,
                                        self.runtime.last_extras)
            if chunk is not None:
                t = self.runtime.last_times
                self.latency_pub.publish(String(data=json.dumps({
                    'stamp_s': obs.stamp_s, 'observation_to_chunk_ms': (now - obs.stamp_s) * 1e3,
                    'preprocess_ms': t.preprocess_ms, 'inference_ms': t.inference_ms,
                    'postprocess_ms': t.postprocess_ms, 'publish_ms': self._publish_ms})))

    # -- the tick ---------------------------------------------------------------------------

    def _tick(self) -> None:
        for subscription, handle in self._inputs:
            take_pending(subscription, handle)
        now = self._now()
        with self._lock:
            self._check_clock()
            command = self.loop.command(now)
            obs = self.loop.next_observation(now)
            refusal = self.loop.last_refusal
            if obs is not None:
                self._pending = obs
        if obs is not None:
            self.lockstep.hold(obs.stamp_s)
            if self.lockstep.enabled:
                # Simulated time stands still while the network runs: the new chunk's plan
                # goes out at this same instant, so this one would only be superseded (and
                # the bridge drops a second command of the same stamp). As in-process, it is
                # sent only if the inference fails.
                with self._lock:
                    self._fallback, command = command, None
            self._wake.set()
        key = f'{refusal.stream}:{refusal.reason}' if refusal is not None else ''
        if refusal is not None and key != self._refusal_logged:
            self.get_logger().warning(f'no observation: {refusal}; no new chunk, and the bridge '
                                      'stops the arm when the current plan runs out')
        self._refusal_logged = key
        if command is not None:
            start = time.perf_counter()
            self._publish(command)
            self._publish_ms = (time.perf_counter() - start) * 1e3
            with self._lock:
                self.loop.latency.add('publish', self._publish_ms)
        if now >= self._next_diagnostics:
            self._next_diagnostics = now + 1.0
            self._publish_diagnostics(now)

    def _publish(self, command: PolicyCommand) -> None:
        self.command_pub.publish(trajectory_to_msg(command.trajectory))
        if command.gripper_m is not None:
            self.gripper_pub.publish(Float64(data=command.gripper_m))

    def _publish_diagnostics(self, now: float) -> None:
        with self._lock:
            summary = self.loop.latency.summary()
            counters = dict(self.loop.counters)
            problem = self.loop.problem()
            cameras = {n: b.stats for n, b in self.loop.sync.cameras.items()}
            newest = self.loop.scheduler.newest_stamp_s
        status = DiagnosticStatus(name='visuomotor: policy', hardware_id=self.backend_name)
        if self._worker is not None and not self._worker.is_alive():
            status.level = DiagnosticStatus.ERROR
            status.message = 'the inference thread died; restart the node'
        elif problem:
            status.level, status.message = DiagnosticStatus.ERROR, f'refusing: {problem}'
        elif self.calibration.override:
            status.level = DiagnosticStatus.WARN
            status.message = f'WITHOUT a verified calibration ({self.calibration.override})'
        elif newest is None:
            status.level, status.message = DiagnosticStatus.WARN, 'waiting for the first chunk'
        else:
            status.level, status.message = DiagnosticStatus.OK, 'running'
        values = [KeyValue(key='backend', value=self.backend_name),
                  KeyValue(key='calibration', value=self.calibration.message)]
        for stage, (median, p99) in sorted(summary.items()):
            values.append(KeyValue(key=f'{stage}_ms', value=f'median {median:.2f}, p99 '
                                   f'{p99:.2f}'))
        values += [KeyValue(key=k, value=str(v)) for k, v in sorted(counters.items())]
        for name, stats in cameras.items():
            values.append(KeyValue(key=f'camera {name}', value=(
                f'{stats.rate_hz:.1f} Hz, skew {stats.last_skew_s * 1e3:.1f} ms, dropped '
                f'{stats.dropped}, frozen {stats.frozen}')))
        if newest is not None:
            values.append(KeyValue(key='newest_observation_age_s', value=f'{now - newest:.3f}'))
        status.values = values
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def destroy_node(self) -> None:
        """Stop the inference thread, then the node."""
        self._stop.set()
        self._wake.set()
        if self._worker is not None and self._worker.is_alive():
            self._worker.join(timeout=2.0)
        if getattr(self, 'overlays', None) is not None:
            self.overlays.close()  # type: ignore[union-attr]
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point of the `policy_node` executable."""
    return run_node('policy_node', PolicyNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
