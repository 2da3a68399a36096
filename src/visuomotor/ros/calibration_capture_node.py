"""The calibration capture helper: takes the views a verification (or a calibration) needs.

robot mode: moves the arm through the poses of the rig's verification.yaml, through the
safety bridge (chunks toward each pose, re-sent every 0.1 s so the bridge's watchdog sees a
live command stream; its limits apply), waits `settle_s` at each pose, then takes the next
frame of every camera and the joint positions. operator mode: the same capture each time
`~/capture` (std_srvs/Trigger) is called, with the operator having put the arm or the board
in place; the reply says how many views are taken. Progress is logged at every view.

After each view the log says, per camera, how many board corners it found and which image
regions and board tilts the views so far still miss (coverage guidance for a calibration).
Every view goes to a capture folder (visuomotor.calibration.captures) as it is taken. With
`verify` set, the views are checked against the rig's calibration after the last one and the
record, overlays and report are written (visuomotor.calibration.verify); the process exits 0
when every camera passed, 1 when not, 2 when it could not start.

Subscribes: /<camera>/image_raw of every calibrated camera, /joint_states.
Publishes: the move commands (trajectory_msgs/JointTrajectory, default
/safety_bridge/command), ~/progress (std_msgs/String).
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from visuomotor.calibration.captures import CaptureWriter, camera_views, load_captures
from visuomotor.calibration.charuco import detect_board
from visuomotor.calibration.intrinsics import Coverage
from visuomotor.calibration.node_schema import CALIBRATION_CAPTURE_PARAMS
from visuomotor.calibration.report import write_record
from visuomotor.calibration.rig_files import load_rig_calibration
from visuomotor.calibration.verify import load_settings, verify_rig
from visuomotor.errors import ImageConversionError, VisuomotorError
from visuomotor.robots.description import load_robot
from visuomotor.ros.image_conversion import image_to_numpy
from visuomotor.ros.lockstep import LockstepReporter
from visuomotor.ros.node_main import run_node
from visuomotor.ros.parameters import declare_parameters
from visuomotor.ros.stamps import stamp_to_ns
from visuomotor.ros.trajectory_conversion import trajectory_to_msg
from visuomotor.trajectory import JointTrajectoryCommand

Frame = npt.NDArray[np.uint8]
STEP_S = 0.1
HORIZON = 5


class CalibrationCaptureNode(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__('calibration_capture', **kwargs)  # type: ignore[arg-type]
        params = declare_parameters(self, CALIBRATION_CAPTURE_PARAMS)
        self.rig = load_rig_calibration(str(params['calibration']))
        self.settings = load_settings(self.rig.folder)
        self.robot = load_robot(str(params['robot']))
        self.mode = str(params['mode'])
        self.verify = bool(params['verify'])
        self.poses = [np.asarray(p, dtype=np.float64) for p in self.settings.poses_rad]
        if self.mode == 'robot' and not self.poses:
            raise VisuomotorError(f'{self.rig.folder / "verification.yaml"} lists no poses_rad:'
                                  ' teach the verification poses, or use mode:=operator')
        for pose in self.poses:
            if len(pose) != len(self.robot.joint_names) or not self.robot.within_limits(pose):
                raise VisuomotorError(f'verification pose {list(pose)} is not a pose of '
                                      f'{self.robot.name} (within its joint limits)')
        stamp = datetime.datetime.now(datetime.UTC).strftime('%Y%m%dT%H%M%SZ')
        out = Path(str(params['out']) or self.rig.folder / 'captures' / stamp)
        self.cameras = list(self.rig.cameras)
        self.writer = CaptureWriter(out, self.robot.name, self.robot.joint_names, self.cameras,
                                    purpose='verification')
        self.speed = float(params['max_speed_rad_s'])
        self.settle_s = float(params['settle_s'])
        self.tolerance = float(params['tolerance_rad'])
        self.pose_timeout_s = float(params['pose_timeout_s'])
        self.frames: dict[str, tuple[int, Frame]] = {}
        self.coverage: dict[str, Coverage] = {}
        self.joints: np.ndarray | None = None
        self.index = 0
        self.phase = 'moving'
        self.phase_since = 0.0
        self.wanted_after_ns = 0
        self.finished = False
        self.exit_code = 0
        self.command_pub = self.create_publisher(JointTrajectory, str(params['command_topic']),
                                                 10)
        self.progress_pub = self.create_publisher(String, '~/progress', 10)
        for camera in self.cameras:
            self.create_subscription(Image, f'/{camera}/image_raw', self._frame_handler(camera),
                                     qos_profile_sensor_data)
        self.create_subscription(JointState, '/joint_states', self._on_joint_state, 50)
        self.create_service(Trigger, '~/capture', self._on_capture)
        tick_timer = self.create_timer(STEP_S, self._tick)
        self.lockstep = LockstepReporter(self, bool(params['lockstep']))
        self.lockstep.follow(tick_timer)
        what = (f'{len(self.poses)} poses through {params["command_topic"]}'
                if self.mode == 'robot' else 'operator views (call ~/capture for each)')
        self._say(f'capturing {self.cameras} of rig {self.rig.rig}: {what}; into '
                  f'{self.writer.folder}')

    # -- inputs -----------------------------------------------------------------------------

    def _frame_handler(self, camera: str):  # type: ignore[no-untyped-def]
        def handle(msg: Image) -> None:
            try:
                self.frames[camera] = (stamp_to_ns(msg.header.stamp),
                                       image_to_numpy(msg, copy=True))
            except ImageConversionError as exc:
                self.get_logger().error(f'{camera}: malformed image dropped: {exc}',
                                        throttle_duration_sec=2.0)
        return handle

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            self.joints = np.array([msg.position[msg.name.index(n)]
                                    for n in self.robot.joint_names])
        except (ValueError, IndexError):
            self.get_logger().error(f'/joint_states lacks joints of {self.robot.name}',
                                    throttle_duration_sec=5.0)

    def _on_capture(self, _: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        if self.mode != 'operator' or self.finished:
            response.success, response.message = False, 'not in operator mode, or finished'
            return response
        self.phase, self.wanted_after_ns = 'grab', self._now_ns()
        response.success = True
        response.message = f'taking view {self.writer.count + 1}'
        return response

    # -- the loop -------------------------------------------------------------------------

    def _now_ns(self) -> int:
        return int(self.get_clock().now().nanoseconds)

    def _say(self, text: str) -> None:
        self.get_logger().info(text)
        self.progress_pub.publish(String(data=text))

    def _send(self, target: np.ndarray) -> None:
        if self.joints is None:
            return
        start = self.joints
        step = np.clip(target - start, -self.speed * STEP_S, self.speed * STEP_S)
        points = []
        for k in range(HORIZON):
            position = start + np.clip(step * (k + 1), -np.abs(target - start),
                                       np.abs(target - start))
            points.append(((k + 1) * STEP_S, tuple(float(v) for v in position), (), ()))
        self.command_pub.publish(trajectory_to_msg(JointTrajectoryCommand(
            tuple(self.robot.joint_names), tuple(points), self._now_ns() * 1e-9)))

    def _tick(self) -> None:
        if self.finished or self.joints is None:
            return
        now = self._now_ns()
        if self.mode == 'robot':
            target = self.poses[self.index]
            self._send(target)
            if self.phase == 'moving':
                if self.phase_since == 0.0:
                    self.phase_since = now * 1e-9
                if np.max(np.abs(self.joints - target)) <= self.tolerance:
                    self.phase, self.wanted_after_ns = 'grab', now + int(self.settle_s * 1e9)
                elif now * 1e-9 - self.phase_since > self.pose_timeout_s:
                    self._finish(2, f'pose {self.index + 1} not reached in '
                                 f'{self.pose_timeout_s:g} s (worst joint '
                                 f'{np.max(np.abs(self.joints - target)):.3f} rad away): is '
                                 'the safety bridge armed?')
                return
        if self.phase != 'grab' or now < self.wanted_after_ns:
            return
        if any(self.frames.get(c, (0, None))[0] < self.wanted_after_ns for c in self.cameras):
            return  # wait for a frame of every camera taken after the arm settled
        images = {c: self.frames[c][1] for c in self.cameras}
        stamps = {c: self.frames[c][0] for c in self.cameras}
        view = self.writer.add([float(v) for v in self.joints], images, stamps_ns=stamps)
        total = len(self.poses) if self.mode == 'robot' else '?'
        self._say(f'view {view}/{total} taken; ' + '; '.join(
            self._coverage(c, images[c]) for c in self.cameras))
        self.index += 1
        self.phase, self.phase_since = ('moving', 0.0) if self.mode == 'robot' else ('idle', 0.0)
        if self.mode == 'robot' and self.index == len(self.poses):
            self._conclude()

    def _coverage(self, camera: str, image: Frame) -> str:
        """Board corners found in this view, and what the views so far still miss."""
        intrinsics = self.rig.cameras[camera].intrinsics
        coverage = self.coverage.setdefault(camera, Coverage(
            int(image.shape[1]), int(image.shape[0]),
            camera_matrix=intrinsics.camera_matrix()
            if (intrinsics.width, intrinsics.height) == (image.shape[1], image.shape[0])
            else None))
        found = detect_board(image, self.rig.board.board, source=camera)
        if found is None:
            return f'{camera}: no board'
        coverage.add(found)
        return f'{camera}: {len(found)} corners, {coverage.describe()}'

    def _conclude(self) -> None:
        if not self.verify:
            self._finish(0, f'{self.writer.count} views in {self.writer.folder}')
            return
        views = camera_views(load_captures(self.writer.folder), self.robot)
        record, drawn = verify_rig(self.rig, views, datetime.datetime.now(datetime.UTC),
                                   settings=self.settings)
        record = write_record(record, self.rig.records, drawn)
        for check in record.cameras:
            self._say(check.summary())
        verdict = 'PASSED' if record.passed else 'FAILED'
        self._finish(0 if record.passed else 1, f'verification {verdict}: record {record.id} '
                     f'(report {self.rig.records / (record.id + ".html")})')

    def _finish(self, code: int, text: str) -> None:
        (self.get_logger().error if code else self.get_logger().info)(text)
        self.progress_pub.publish(String(data=text))
        self.exit_code, self.finished = code, True


def main(args: list[str] | None = None) -> int:
    """Entry point of the `calibration_capture_node` executable (exit code: see the docs)."""
    outcome: list[int] = []

    def spin(node: CalibrationCaptureNode, executor: SingleThreadedExecutor) -> None:
        while rclpy.ok(context=node.context) and not node.finished:
            executor.spin_once(timeout_sec=0.1)
        deadline = time.monotonic() + 0.5  # let the last progress message out
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        outcome.append(node.exit_code)

    code = run_node('calibration_capture_node', CalibrationCaptureNode, args, spin)
    return code or (outcome[0] if outcome else 0)


if __name__ == '__main__':
    raise SystemExit(main())
