"""The recorder node: synchronised, crash-safe episodes in the LeRobot v3 layout.

Subscribes: every camera of the rig (`/<camera>/image_raw`, header.stamp = capture time),
/joint_states, the safety bridge's `~/limited` (the command it actually sent), its `~/state`
(latched: disarmed | holding | armed | stopping | fault), its `~/command` input (the raw
policy/teleop target) and `~/gripper` input (the commanded opening width).
Services (std_srvs/Trigger): `~/start`, `~/stop` (commits the episode), `~/discard`.
Topic `~/task` (std_msgs/String): the task of the next episode (default: parameter `task`).
Publishes `~/state` (latched String: idle | recording <index> | committing <index> |
refused <index>: <why>, then idle) and /diagnostics (rows, flagged rows, refused ticks, marks,
last commit, the bridge state).

Rows recorded while the bridge is not armed (disarmed, stopping, fault; `holding` is armed),
before its state arrived, or without a finite command from it are flagged (`quality.flags`,
recording/episode.py) and counted in the episode's marks. An episode without one usable row
is refused at `~/stop`: not committed, the service answers why, the state topic says
`refused <index>: <why>` and the log has an error naming the episode.

Every committed episode carries its provenance: rig and robot, the calibration gate's
decision (the verification record id and time, or the override and its reason), the
preprocessing spec hash, the software version, the measured rates. Like the policy node, the
recorder refuses to start without a passing, recent verification of the rig's cameras unless
`calibration_override` gives a reason (visuomotor.calibration.gate).
"""

from __future__ import annotations

import datetime
import threading
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

import visuomotor
from visuomotor.calibration.gate import override_banner, require_gate
from visuomotor.cameras.rig import load_rig
from visuomotor.cameras.sync import SyncConfig
from visuomotor.errors import ImageConversionError, VisuomotorError
from visuomotor.paths import share_dir
from visuomotor.preprocessing import SpecError, load_spec
from visuomotor.recording.episode import ARMED_STATES, CameraFormat
from visuomotor.recording.errors import EpisodeRefusedError
from visuomotor.recording.lerobot_v3 import DatasetFeatures, LeRobotWriter
from visuomotor.recording.node_schema import RECORDER_NODE_PARAMS
from visuomotor.recording.recorder import Recorder, RecorderConfig
from visuomotor.recording.video import VideoSettings
from visuomotor.robots.description import load_robot
from visuomotor.ros.image_conversion import image_to_numpy
from visuomotor.ros.lockstep import LockstepReporter
from visuomotor.ros.node_main import run_node
from visuomotor.ros.parameters import declare_parameters
from visuomotor.ros.qos import image_qos
from visuomotor.ros.stamps import stamp_to_ns
from visuomotor.ros.trajectory_conversion import trajectory_from_msg
from visuomotor.safety.commands import CommandRejectedError, validate_chunk


class RecorderNode(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__('recorder', **kwargs)  # type: ignore[arg-type]
        self._committing: threading.Thread | None = None
        params = declare_parameters(self, RECORDER_NODE_PARAMS)
        if not params['dataset']:
            raise VisuomotorError('dataset: no dataset path given; set dataset:=/data/<name>')
        gate = require_gate(str(params['calibration']), float(params['calibration_max_age_h']),
                            str(params['calibration_override']),
                            datetime.datetime.now(datetime.UTC))
        if gate.override:
            self.get_logger().error(override_banner(gate) + ' (stored with every episode)')
        else:
            self.get_logger().info(f'calibration gate: {gate.message}')
        rig = load_rig(str(params['rig']))
        robot = load_robot(str(params['robot']))
        video = VideoSettings(str(params['codec']))
        cameras = tuple(CameraFormat(c.name, c.width, c.height, c.encoding)
                        for c in rig.cameras)
        config = RecorderConfig(
            float(params['fps']), cameras, tuple(robot.joint_names),
            tuple(robot.gripper.joint_names),
            SyncConfig(max_skew_s=float(params['max_skew_s']),
                       max_age_s=float(params['max_age_s'])), video, follow_bridge_state=True)
        self.writer = LeRobotWriter(Path(str(params['dataset'])), DatasetFeatures(
            config.fps, cameras, tuple(config.state_names), robot.name, video))
        if self.writer.converted:
            self.get_logger().warning(f'dataset: {self.writer.converted}')
        for removed in self.writer.recovered:
            self.get_logger().warning(f'dataset recovery: removed {removed}')
        self.recorder = Recorder(config, self.writer.begin)
        self.robot = robot
        self.task = str(params['task'])
        self._lock = threading.Lock()
        self.last_commit = ''
        self.provenance: dict[str, Any] = {
            'rig': rig.name, 'rig_file': str(rig.source), 'robot': robot.name,
            'calibration': gate.provenance(),
            'preprocessing_spec_hash': _spec_hash(str(params['preprocessing_spec'])),
            'software': f'visuomotor {visuomotor.__version__}',
            'fps': config.fps, 'codec': video.codec,
            'sync': {'max_skew_s': config.sync.max_skew_s, 'max_age_s': config.sync.max_age_s}}
        for camera in cameras:
            self.create_subscription(Image, f'/{camera.name}/image_raw',
                                     self._frame_handler(camera.name),
                                     image_qos(bool(params['reliable_images']), depth=10))
        self.create_subscription(JointState, '/joint_states', self._on_joint_state, 100)
        bridge = str(params['bridge']).rstrip('/')
        self.create_subscription(JointState, f'{bridge}/limited', self._on_limited, 100)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.bridge_state = ''
        self.create_subscription(String, f'{bridge}/state', self._on_bridge_state, latched)
        self.create_subscription(JointTrajectory, f'{bridge}/command', self._on_command, 20)
        self.create_subscription(Float64, f'{bridge}/gripper', self._on_gripper, 20)
        self.create_subscription(String, '~/task', self._on_task, 10)
        # The last few states stay latched: a refusal is followed at once by `idle`, and a
        # subscriber reading with a deeper history still sees both.
        self.state_pub = self.create_publisher(
            String, '~/state', QoSProfile(depth=5, durability=DurabilityPolicy.TRANSIENT_LOCAL))
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        for name, handler in (('start', self._start), ('stop', self._stop),
                              ('discard', self._discard)):
            self.create_service(Trigger, f'~/{name}', handler)
        # Rows follow new frames (recorder.py).
        tick_timer = self.create_timer(0.5 / config.fps, self._tick)
        self.create_timer(1.0, self._publish_diagnostics)
        self.lockstep = LockstepReporter(self, bool(params['lockstep']))
        self.lockstep.follow(tick_timer)
        self._publish_state('idle')
        self.get_logger().info(f'recording {[c.name for c in cameras]} + {robot.name} at '
                               f'{config.fps:g} Hz into {self.writer.path} '
                               f'({self.writer.episodes} episodes so far)')

    def _now(self) -> float:
        return float(self.get_clock().now().nanoseconds) * 1e-9

    def _publish_state(self, text: str) -> None:
        self.state_pub.publish(String(data=text))

    # -- inputs -----------------------------------------------------------------------------

    def _frame_handler(self, camera: str):  # type: ignore[no-untyped-def]
        def handle(msg: Image) -> None:
            try:
                image = image_to_numpy(msg, copy=True)
            except ImageConversionError as exc:
                error = f'camera {camera}: malformed image: {exc}'
                with self._lock:
                    self.recorder.counters[f'{camera}_malformed'] += 1
                    if self.recorder.episode is not None:
                        self.recorder.episode.mark(error)
                self.get_logger().error(error, throttle_duration_sec=2.0)
                return
            with self._lock:
                refused = self.recorder.on_frame(camera, stamp_to_ns(msg.header.stamp) * 1e-9,
                                                 image, msg.encoding)
            if refused is not None and refused.startswith('camera '):
                self.get_logger().error(refused, throttle_duration_sec=2.0)
        return handle

    def _on_joint_state(self, msg: JointState) -> None:
        with self._lock:
            self.recorder.on_joint_state(stamp_to_ns(msg.header.stamp) * 1e-9, list(msg.name),
                                         list(msg.position))

    def _on_limited(self, msg: JointState) -> None:
        with self._lock:
            self.recorder.on_command_sent(stamp_to_ns(msg.header.stamp) * 1e-9,
                                          list(msg.name), list(msg.position))

    def _on_bridge_state(self, msg: String) -> None:
        with self._lock:
            self.recorder.on_bridge_state(self._now(), msg.data)
            recording = self.recorder.episode is not None
        if msg.data != self.bridge_state:
            note = ' (rows recorded now are flagged, not to train on)' \
                if recording and msg.data not in ARMED_STATES else ''
            self.get_logger().info(f'safety bridge: {msg.data}{note}')
        self.bridge_state = msg.data

    def _on_command(self, msg: JointTrajectory) -> None:
        robot = self.robot
        try:
            chunk = validate_chunk(trajectory_from_msg(msg), robot.joint_names,
                                   robot.lower_rad, robot.upper_rad)
        except CommandRejectedError:
            return  # the bridge rejects it too (and says why); nothing was executed
        with self._lock:
            self.recorder.on_raw_target(chunk)

    def _on_gripper(self, msg: Float64) -> None:
        with self._lock:
            self.recorder.on_gripper_command(self._now(), float(msg.data))

    def _on_task(self, msg: String) -> None:
        self.task = msg.data or self.task

    # -- episodes ---------------------------------------------------------------------------

    def _start(self, request: Trigger.Request, response: Trigger.Response
               ) -> Trigger.Response:
        with self._lock:
            if self._committing is not None and self._committing.is_alive():
                response.success, response.message = False, 'still committing the last episode'
                return response
            try:
                index = self.recorder.start(self.task, dict(self.provenance), self._now())
            except RuntimeError as exc:
                response.success, response.message = False, str(exc)
                return response
        self._publish_state(f'recording {index}')
        response.success, response.message = True, f'recording episode {index}: {self.task}'
        return response

    def _stop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            episode = self.recorder.episode
            if episode is None:
                response.success, response.message = False, 'no episode is being recorded'
                return response
            if not episode.rows:
                self.recorder.discard()
                response.success = False
                response.message = (f'episode {episode.index} has no rows (streams never '
                                    'aligned: see /diagnostics); discarded')
                self._publish_state('idle')
                return response
            refused = episode.refusal()
            if refused is not None:
                self.recorder.discard()
                self.recorder.counters['episodes_refused'] += 1
            else:
                data_episode = self.recorder.detach()  # encoders flush on the commit thread
        if refused is not None:
            self.last_commit = refused
            self.get_logger().error(refused)
            self._publish_state(f'refused {episode.index}: {refused}')
            self._publish_state('idle')
            response.success, response.message = False, refused
            return response
        self._publish_state(f'committing {data_episode.index}')

        def commit() -> None:
            try:
                data = data_episode.finish()
                self.writer.commit(data)
                self.last_commit = (f'episode {data.index}: {data.length} rows'
                                    + (f', marked: {data.marks}' if data.marks else ''))
                self.get_logger().info(f'committed {self.last_commit}')
            except EpisodeRefusedError as exc:  # the writer's own check (as at ~/stop)
                self.last_commit = str(exc)
                self.get_logger().error(self.last_commit)
                self._publish_state(f'refused {data_episode.index}: {exc}')
            except Exception as exc:  # noqa: BLE001 - reported; the dataset is unchanged
                self.last_commit = f'episode {data_episode.index} NOT committed: {exc}'
                self.get_logger().error(self.last_commit)
            self._publish_state('idle')
        self._committing = threading.Thread(target=commit, name='commit', daemon=False)
        self._committing.start()
        response.success = True
        response.message = (f'committing episode {data_episode.index} '
                            f'({len(data_episode.rows)} rows)')
        return response

    def _discard(self, request: Trigger.Request, response: Trigger.Response
                 ) -> Trigger.Response:
        with self._lock:
            if self.recorder.episode is None:
                response.success, response.message = False, 'no episode is being recorded'
                return response
            index = self.recorder.discard()
        self._publish_state('idle')
        response.success, response.message = True, f'episode {index} discarded'
        return response

    def wait_for_commit(self, timeout_s: float = 60.0) -> None:
        """Block until the last commit finished (tests, shutdown)."""
        if self._committing is not None:
            self._committing.join(timeout_s)

    # -- the tick ---------------------------------------------------------------------------

    def _tick(self) -> None:
        with self._lock:
            refusal = self.recorder.tick(self._now())
        if refusal is not None:
            self.get_logger().warning(f'no row: {refusal}', throttle_duration_sec=2.0)

    def _publish_diagnostics(self) -> None:
        with self._lock:
            episode = self.recorder.episode
            counters = dict(self.recorder.counters)
            marks = list(episode.marks) if episode is not None else []
            rows = len(episode.rows) if episode is not None else 0
        status = DiagnosticStatus(name='visuomotor: recorder', hardware_id=str(self.writer.path))
        if marks:
            status.level = DiagnosticStatus.WARN
            status.message = f'recording, marked: {marks[0]}'
        elif episode is not None:
            status.level = DiagnosticStatus.OK
            status.message = f'recording episode {episode.index}'
        else:
            status.level, status.message = DiagnosticStatus.OK, 'idle'
        status.values = [KeyValue(key='rows', value=str(rows)),
                         KeyValue(key='episodes', value=str(self.writer.episodes)),
                         KeyValue(key='last_commit', value=self.last_commit),
                         KeyValue(key='bridge_state', value=self.bridge_state or 'unknown')]
        status.values += [KeyValue(key=k, value=str(v)) for k, v in sorted(counters.items())]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def destroy_node(self) -> None:
        """Finish a running commit before going (the dataset stays consistent either way)."""
        self.wait_for_commit()
        super().destroy_node()


def _spec_hash(name: str) -> str | None:
    """The hash of a preprocessing spec given by name or path (None: not given)."""
    if not name:
        return None
    path = Path(name) if name.endswith('.json') else \
        share_dir() / 'config' / 'preprocessing' / f'{name}.json'
    try:
        return load_spec(path).spec_hash()
    except (SpecError, FileNotFoundError) as exc:
        raise VisuomotorError(f'preprocessing_spec: {exc}') from None


def main(args: list[str] | None = None) -> int:
    """Entry point of the `recorder_node` executable."""
    return run_node('recorder_node', RecorderNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
