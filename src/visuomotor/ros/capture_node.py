"""The capture node: N cameras from one rig file, each frame stamped at capture.

For every camera of the rig (parameter `rig`: a name in config/cameras or a YAML path) it
publishes `/<camera>/image_raw` (sensor_msgs/Image, header.stamp = capture time on the ROS
clock) and `/<camera>/camera_info` with the same stamp (the rig's calibration file, or an
uncalibrated CameraInfo with only the size, and a warning).

Backends opencv, realsense, fake and folder are captured here, one grab thread and one
publishing thread per camera, so a slow camera never delays another. Backend `topic`
subscribes to a driver's topics (realsense2_camera, usb_cam, ...) and republishes them under
the rig's names, checked and monitored like the others: the rest of the stack does not care
where frames come from.

/diagnostics, once a second, one status per camera: measured rate, age of the newest frame,
skew to the other cameras (newest stamps), dropped frames (sequence gaps), frozen content,
capture-to-publish latency (median, p99), errors.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from visuomotor.cameras.camera import Camera, CameraError, Frame
from visuomotor.cameras.intrinsics import load_camera_info
from visuomotor.cameras.node_schema import CAPTURE_NODE_PARAMS
from visuomotor.cameras.rig import CameraConfig, load_rig, make_camera, resolve_path
from visuomotor.cameras.sync import Sample, StreamBuffer, SyncConfig
from visuomotor.errors import ImageConversionError
from visuomotor.ros.image_conversion import (
    image_to_numpy,
    intrinsics_to_camera_info,
    numpy_to_image,
)
from visuomotor.ros.node_main import run_node
from visuomotor.ros.parameters import declare_parameters
from visuomotor.ros.qos import image_qos
from visuomotor.ros.stamps import ns_to_stamp, stamp_to_ns


class CameraChannel:
    """One camera's publishers, statistics and (for captured backends) its thread."""

    def __init__(self, node: CaptureNode, config: CameraConfig, frozen_repeats: int) -> None:
        self.node, self.config = node, config
        self.frame_id = f'{config.name}_optical_frame'
        self.image_pub = node.create_publisher(Image, config.image_topic,
                                               image_qos(True, depth=5))
        self.info_pub = node.create_publisher(CameraInfo, config.camera_info_topic, 10)
        self.stats: StreamBuffer[np.ndarray] = StreamBuffer(
            config.name, SyncConfig(frozen_repeats=frozen_repeats), check_content=True)
        self.latency_ms: deque[float] = deque(maxlen=300)
        self.error = ''
        self.lock = threading.Lock()
        self.info: CameraInfo | None = None
        if config.camera_info:
            intrinsics = load_camera_info(resolve_path(config.camera_info))
            if (intrinsics.width, intrinsics.height) != (config.width, config.height):
                raise CameraError(f'camera {config.name!r}: calibration {config.camera_info} '
                                  f'is for {intrinsics.width}x{intrinsics.height}, the rig runs '
                                  f'{config.width}x{config.height}; recalibrate or fix the rig')
            self.info = intrinsics_to_camera_info(intrinsics, frame_id=self.frame_id)
        elif config.backend != 'topic':
            node.get_logger().warning(f'camera {config.name}: no camera_info file in the rig; '
                                      'publishing an uncalibrated CameraInfo (size only)')
            self.info = CameraInfo(width=config.width, height=config.height)
            self.info.header.frame_id = self.frame_id
        self._out: Image | None = None

    def record(self, stamp_s: float, seq: int | None, image: np.ndarray, published_s: float,
               ) -> None:
        """Statistics of one published frame."""
        with self.lock:
            self.stats.push(Sample(stamp_s, image, seq))
            self.latency_ms.append((published_s - stamp_s) * 1e3)

    def publish_frame(self, frame: Frame) -> None:
        """Publish a captured frame and its camera_info with the capture stamp."""
        stamp = ns_to_stamp(int(round(frame.stamp_s * 1e9)))
        self._out = numpy_to_image(frame.image, frame.encoding, stamp=stamp,
                                   frame_id=self.frame_id, out=self._out)
        self.image_pub.publish(self._out)
        if self.info is not None:
            self.info.header.stamp = stamp
            self.info_pub.publish(self.info)
        self.record(frame.stamp_s, frame.seq, frame.image, self.node.now())


class CaptureNode(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__('capture', **kwargs)  # type: ignore[arg-type]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._cameras: list[Camera] = []
        params = declare_parameters(self, CAPTURE_NODE_PARAMS)
        self.rig = load_rig(str(params['rig']))
        self.read_timeout_s = float(params['read_timeout_s'])
        self.channels = {c.name: CameraChannel(self, c, int(params['frozen_repeats']))
                         for c in self.rig.cameras}
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        try:
            self._start_cameras()
        except BaseException:
            for camera in self._cameras:  # release the devices already opened
                camera.stop()
            self._cameras.clear()
            self._threads.clear()
            raise
        for thread in self._threads:
            thread.start()
        self.create_timer(1.0, self._publish_diagnostics)

    def _start_cameras(self) -> None:
        for config in self.rig.cameras:
            channel = self.channels[config.name]
            if config.backend == 'sim':
                self.get_logger().info(f'camera {config.name}: published by the twin')
                continue
            if config.backend == 'topic':
                self.create_subscription(Image, config.topic, self._relay(channel),
                                         qos_profile_sensor_data)
                if config.info_topic:
                    self.create_subscription(CameraInfo, config.info_topic,
                                             channel.info_pub.publish, 10)
                self.get_logger().info(f'camera {config.name}: relaying {config.topic} -> '
                                       f'{config.image_topic}')
                continue
            camera = make_camera(config, self.now)
            camera.start()
            self._cameras.append(camera)
            thread = threading.Thread(target=self._capture, args=(camera, channel),
                                      name=f'publish-{config.name}', daemon=True)
            self._threads.append(thread)
            self.get_logger().info(f'camera {config.name}: {config.backend} '
                                   f'{config.width}x{config.height}@{config.fps:g} -> '
                                   f'{config.image_topic}')

    def now(self) -> float:
        """The node's ROS clock, seconds (every capture stamp is on it)."""
        return float(self.get_clock().now().nanoseconds) * 1e-9

    def _capture(self, camera: Camera, channel: CameraChannel) -> None:
        while not self._stop.is_set():
            try:
                frame = camera.read(self.read_timeout_s)
            except CameraError as exc:
                channel.error = str(exc)
                self.get_logger().error(str(exc), throttle_duration_sec=5.0)
                if self._stop.wait(0.5):
                    return
                continue
            channel.error = ''
            channel.publish_frame(frame)

    def _relay(self, channel: CameraChannel):  # type: ignore[no-untyped-def]
        config = channel.config

        def relay(msg: Image) -> None:
            try:
                image = image_to_numpy(msg)
            except ImageConversionError as exc:
                channel.error = f'{config.topic}: malformed image dropped: {exc}'
                self.get_logger().error(channel.error, throttle_duration_sec=5.0)
                return
            if (msg.width, msg.height, msg.encoding) != (config.width, config.height,
                                                         config.encoding):
                channel.error = (f'{config.topic} sends {msg.encoding} {msg.width}x'
                                 f'{msg.height}, the rig says {config.encoding} '
                                 f'{config.width}x{config.height}; frames dropped')
                self.get_logger().error(channel.error, throttle_duration_sec=5.0)
                return
            channel.error = ''
            msg.header.frame_id = msg.header.frame_id or channel.frame_id
            channel.image_pub.publish(msg)
            channel.record(stamp_to_ns(msg.header.stamp) * 1e-9, None, image, self.now())
        return relay

    def _publish_diagnostics(self) -> None:
        now = self.now()
        newest = {n: c.stats.newest_stamp() for n, c in self.channels.items()}
        known = [s for s in newest.values() if s is not None]
        reference = min(known) if known else None
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        for name, channel in self.channels.items():
            status = DiagnosticStatus(name=f'visuomotor: camera {name}',
                                      hardware_id=channel.config.backend)
            with channel.lock:
                stats = channel.stats.stats
                latency = list(channel.latency_ms)
                stamp = newest[name]
            values = [KeyValue(key='rate_hz', value=f'{stats.rate_hz:.2f}'),
                      KeyValue(key='nominal_hz', value=f'{channel.config.fps:g}'),
                      KeyValue(key='dropped', value=str(stats.dropped)),
                      KeyValue(key='frozen', value=str(stats.frozen))]
            if stamp is not None and reference is not None:
                values += [KeyValue(key='age_ms', value=f'{(now - stamp) * 1e3:.1f}'),
                           KeyValue(key='skew_ms', value=f'{(stamp - reference) * 1e3:.1f}')]
            if latency:
                values.append(KeyValue(key='capture_to_publish_ms', value=(
                    f'median {np.median(latency):.2f}, p99 {np.percentile(latency, 99):.2f}')))
            if channel.error:
                status.level, status.message = DiagnosticStatus.ERROR, channel.error
            elif stamp is None:
                status.level, status.message = DiagnosticStatus.ERROR, 'no frame yet'
            elif stats.frozen:
                status.level, status.message = DiagnosticStatus.ERROR, 'frozen (identical frames)'
            elif now - stamp > self.read_timeout_s:
                status.level = DiagnosticStatus.ERROR
                status.message = f'stale: newest frame {now - stamp:.2f} s old'
            elif stats.rate_hz < 0.9 * channel.config.fps:
                status.level = DiagnosticStatus.WARN
                status.message = (f'{stats.rate_hz:.1f} Hz, below the nominal '
                                  f'{channel.config.fps:g} Hz')
            else:
                status.level, status.message = DiagnosticStatus.OK, f'{stats.rate_hz:.1f} Hz'
            status.values = values
            array.status.append(status)
        self.diagnostics_pub.publish(array)

    def destroy_node(self) -> None:
        """Stop the threads and release the cameras."""
        self._stop.set()
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(timeout=2.0)
        for camera in self._cameras:
            camera.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Entry point of the `capture_node` executable."""
    return run_node('capture_node', CaptureNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
