"""The capture node over DDS: rig cameras out stamped at capture, topic relay, diagnostics."""

from __future__ import annotations

import gc
import threading
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from support import spin_until
from visuomotor.cameras.camera import CameraError
from visuomotor.cameras.fake_camera import FakeCamera
from visuomotor.cameras.intrinsics import CameraIntrinsics, save_camera_info
from visuomotor.ros.capture_node import CaptureNode
from visuomotor.ros.capture_node import main as capture_main
from visuomotor.ros.image_conversion import image_to_numpy, numpy_to_image
from visuomotor.ros.stamps import ns_to_stamp, stamp_to_ns

DIAGNOSTIC_KEYS = {'rate_hz', 'nominal_hz', 'dropped', 'frozen', 'age_ms', 'skew_ms',
                   'capture_to_publish_ms'}


class Listener(Node):
    """Records images (with the reception time), camera_info and camera diagnostics.

    With `size`, only messages of that (width, height) count: other graphs on the same DDS
    domain (another test process running the twin, 96x96) cannot pollute the record.
    """

    def __init__(self, context, cameras, size=None):
        super().__init__('capture_listener', context=context)
        self.size = size
        self.images: dict[str, list[tuple[float, Image]]] = defaultdict(list)
        self.infos: dict[str, list[CameraInfo]] = defaultdict(list)
        self.status: dict[str, list[DiagnosticStatus]] = defaultdict(list)
        for camera in cameras:
            self.create_subscription(Image, f'/{camera}/image_raw', self._on_image(camera),
                                     qos_profile_sensor_data)
            self.create_subscription(CameraInfo, f'/{camera}/camera_info',
                                     self._on_info(camera), 10)
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def _wanted(self, msg):
        return self.size is None or (msg.width, msg.height) == self.size

    def now(self):
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_image(self, camera):
        def on_image(msg):
            if self._wanted(msg):
                self.images[camera].append((self.now(), msg))
        return on_image

    def _on_info(self, camera):
        def on_info(msg):
            if self._wanted(msg):
                self.infos[camera].append(msg)
        return on_info

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.name.startswith('visuomotor: camera '):
                self.status[status.name.removeprefix('visuomotor: camera ')].append(status)

    def stamps(self, camera):
        return [stamp_to_ns(m.header.stamp) for _, m in self.images[camera]]

    def last_status(self, camera):
        return self.status[camera][-1] if self.status[camera] else None

    def level(self, camera):
        status = self.last_status(camera)
        return None if status is None else status.level


class Driver(Node):
    """A camera driver: publishes 64x48 rgb8 frames on /drv/image_raw with chosen stamps."""

    def __init__(self, context):
        super().__init__('fake_driver', context=context)
        self.image_pub = self.create_publisher(Image, '/drv/image_raw', 10)
        self.info_pub = self.create_publisher(CameraInfo, '/drv/camera_info', 10)
        self.rng = np.random.default_rng(0)
        self.mode = 'good'
        self.sent: dict[str, set[int]] = defaultdict(set)
        self.create_timer(1 / 30, self._publish)

    def _publish(self):
        # A stamp 50 ms in the past, with a marker in the low digits: a relay that re-stamped
        # at reception could not reproduce it.
        ns = (self.get_clock().now().nanoseconds - 50_000_000) // 1000 * 1000 + 777
        stamp = ns_to_stamp(ns)
        if self.mode == 'good':
            msg = numpy_to_image(self.rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
                                 'rgb8', stamp=stamp, frame_id='drv_optical')
        elif self.mode == 'wrong_size':
            msg = numpy_to_image(self.rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
                                 'rgb8', stamp=stamp)
        else:  # malformed: the header says 64x48 rgb8, the data is half of that
            msg = numpy_to_image(np.zeros((48, 64, 3), np.uint8), 'rgb8', stamp=stamp)
            msg.data = msg.data[:len(msg.data) // 2]
        self.sent[self.mode].add(ns)
        self.image_pub.publish(msg)
        info = CameraInfo(width=64, height=48)
        info.header.stamp = stamp
        self.info_pub.publish(info)


def _capture_node(context, **params):
    return CaptureNode(context=context,
                       parameter_overrides=[Parameter(k, value=v) for k, v in params.items()])


def _executor(context, *nodes):
    executor = SingleThreadedExecutor(context=context)
    for node in nodes:
        executor.add_node(node)
    return executor


def _close(executor, *nodes):
    executor.shutdown()
    for node in nodes:
        node.destroy_node()


def _write_rig(tmp_path: Path, body: str) -> str:
    path = tmp_path / 'rig.yaml'
    path.write_text(body)
    return str(path)


def test_fake_rig_publishes_both_cameras_stamped_at_capture(ros_context) -> None:
    cameras = ('scene_camera', 'wrist_camera')
    capture = _capture_node(ros_context, rig='fake_two')
    listener = Listener(ros_context, cameras, size=(640, 480))
    executor = _executor(ros_context, capture, listener)
    try:
        assert spin_until(executor, lambda: all(
            len(listener.images[c]) >= 40 and listener.level(c) == DiagnosticStatus.OK
            for c in cameras), timeout_s=8.0), \
            {c: (len(listener.images[c]), listener.last_status(c)) for c in cameras}
        for camera in cameras:
            received = listener.images[camera]
            stamps = listener.stamps(camera)
            assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False)), camera
            rate = (len(stamps) - 1) / ((stamps[-1] - stamps[0]) * 1e-9)
            assert 20.0 < rate < 40.0, (camera, rate)
            ages = np.array([now - stamp_to_ns(m.header.stamp) * 1e-9 for now, m in received])
            assert (ages >= 0).all(), (camera, ages.min())  # same clock: never from the future
            assert np.median(ages) < 0.2, (camera, np.median(ages))
            last = received[-1][1]
            assert (last.width, last.height, last.encoding) == (640, 480, 'rgb8')
            assert last.header.frame_id == f'{camera}_optical_frame'
            assert image_to_numpy(last).shape == (480, 640, 3)
            # camera_info (reliable) with the stamp of its image (best effort, may drop).
            infos = listener.infos[camera]
            assert infos, camera
            assert (infos[-1].width, infos[-1].height) == (640, 480)
            assert infos[-1].header.frame_id == f'{camera}_optical_frame'
            info_stamps = {stamp_to_ns(i.header.stamp) for i in infos}
            after = [s for s in stamps if s >= min(info_stamps)]
            matched = sum(s in info_stamps for s in after)
            assert matched >= 0.9 * len(after), (camera, matched, len(after))
            status = listener.last_status(camera)
            assert status.hardware_id == 'fake'
            values = {v.key: v.value for v in status.values}
            assert set(values) >= DIAGNOSTIC_KEYS, values
            assert values['nominal_hz'] == '30'
            assert values['frozen'] == 'False'
            assert 20.0 < float(values['rate_hz']) < 40.0
            assert 0.0 <= float(values['age_ms']) < 1000.0
            assert abs(float(values['skew_ms'])) < 1000.0
        # The two cameras are in step: their newest stamps are within a few frame periods.
        newest = [listener.stamps(c)[-1] * 1e-9 for c in cameras]
        assert abs(newest[0] - newest[1]) < 0.2
    finally:
        _close(executor, capture, listener)


def test_topic_camera_is_relayed_with_the_driver_stamp(ros_context, tmp_path) -> None:
    rig = _write_rig(tmp_path, (
        'rig: relay\n'
        'cameras:\n'
        '  - name: relay_cam\n'
        '    backend: topic\n'
        '    topic: /drv/image_raw\n'
        '    info_topic: /drv/camera_info\n'
        '    width: 64\n'
        '    height: 48\n'
        '    fps: 30\n'))
    capture = _capture_node(ros_context, rig=rig)
    driver = Driver(ros_context)
    listener = Listener(ros_context, ['relay_cam'])
    executor = _executor(ros_context, capture, driver, listener)
    try:
        assert spin_until(executor, lambda: len(listener.images['relay_cam']) >= 10
                          and listener.level('relay_cam') == DiagnosticStatus.OK, 5.0), \
            (len(listener.images['relay_cam']), listener.last_status('relay_cam'))
        received = listener.stamps('relay_cam')
        assert set(received) <= driver.sent['good']  # the driver's stamps, unchanged
        last = listener.images['relay_cam'][-1][1]
        assert (last.width, last.height) == (64, 48)
        assert last.header.frame_id == 'drv_optical'  # the driver's frame is kept
        assert listener.infos['relay_cam']  # camera_info relayed too
        assert {stamp_to_ns(i.header.stamp) for i in listener.infos['relay_cam']} <= \
            driver.sent['good']
        values = {v.key: v.value for v in listener.last_status('relay_cam').values}
        assert values['nominal_hz'] == '30'
        assert 20.0 < float(values['rate_hz']) < 40.0
        assert listener.last_status('relay_cam').hardware_id == 'topic'

        # A driver sending another size: nothing relayed, the status says why.
        driver.mode = 'wrong_size'
        assert spin_until(executor, lambda: '32x24' in getattr(
            listener.last_status('relay_cam'), 'message', ''), 4.0), \
            listener.last_status('relay_cam')
        status = listener.last_status('relay_cam')
        assert status.level == DiagnosticStatus.ERROR
        assert '64x48' in status.message and '/drv/image_raw' in status.message
        assert driver.sent['wrong_size']
        assert not set(listener.stamps('relay_cam')) & driver.sent['wrong_size']

        # Malformed images (data shorter than height * step): dropped with an error.
        driver.mode = 'malformed'
        assert spin_until(executor, lambda: 'malformed' in getattr(
            listener.last_status('relay_cam'), 'message', ''), 4.0), \
            listener.last_status('relay_cam')
        assert listener.last_status('relay_cam').level == DiagnosticStatus.ERROR
        assert driver.sent['malformed']
        assert not set(listener.stamps('relay_cam')) & driver.sent['malformed']
    finally:
        _close(executor, capture, driver, listener)


def test_folder_camera_with_calibration_and_a_frozen_picture(ros_context, tmp_path) -> None:
    images = tmp_path / 'images'
    images.mkdir()
    cv2.imwrite(str(images / 'only.png'), np.full((24, 32, 3), 128, np.uint8))
    calibration = tmp_path / 'still_cam.yaml'
    save_camera_info(CameraIntrinsics.from_pinhole(32, 24, 30.0, 31.0, 16.0, 12.0),
                     calibration)
    rig = _write_rig(tmp_path, (
        'cameras:\n'
        f'  - {{name: still_cam, backend: folder, folder: {images}, width: 32, height: 24,'
        f' fps: 30, camera_info: {calibration}}}\n'))
    capture = _capture_node(ros_context, rig=rig, frozen_repeats=3)
    listener = Listener(ros_context, ['still_cam'])
    executor = _executor(ros_context, capture, listener)
    try:
        assert spin_until(executor, lambda: listener.last_status('still_cam') is not None
                          and len(listener.infos['still_cam']) >= 5, 4.0)
        status = listener.last_status('still_cam')
        assert status.level == DiagnosticStatus.ERROR
        assert 'frozen' in status.message
        assert {v.key: v.value for v in status.values}['frozen'] == 'True'
        info = listener.infos['still_cam'][-1]
        assert (info.width, info.height) == (32, 24)
        assert list(info.k) == [30.0, 0.0, 16.0, 0.0, 31.0, 12.0, 0.0, 0.0, 1.0]
        assert info.header.frame_id == 'still_cam_optical_frame'
        image_stamps = set(listener.stamps('still_cam'))
        assert image_stamps & {stamp_to_ns(i.header.stamp) for i in listener.infos['still_cam']}
    finally:
        _close(executor, capture, listener)


def test_calibration_of_another_size_is_refused(ros_context, tmp_path) -> None:
    calibration = tmp_path / 'cam.yaml'
    save_camera_info(CameraIntrinsics.from_pinhole(640, 480, 500.0, 500.0, 320.0, 240.0),
                     calibration)
    rig = _write_rig(tmp_path, (
        'cameras:\n'
        f'  - {{name: cam, backend: fake, width: 320, height: 240, camera_info: {calibration}}}'
        '\n'))
    with pytest.raises(CameraError, match='640x480') as info:
        _capture_node(ros_context, rig=rig)
    assert '320x240' in str(info.value)


def test_missing_camera_device_fails_construction(ros_context, tmp_path) -> None:
    missing = tmp_path / 'no_camera.avi'
    rig = _write_rig(tmp_path, (
        'cameras:\n'
        f'  - {{name: gone_cam, backend: opencv, device: {missing}}}\n'))
    with pytest.raises(CameraError, match='cannot open') as info:
        _capture_node(ros_context, rig=rig)
    assert "'gone_cam'" in str(info.value) and str(missing) in str(info.value)


def test_unknown_rig_fails_construction(ros_context) -> None:
    with pytest.raises(ValueError, match='no_such_rig'):
        _capture_node(ros_context, rig='no_such_rig')


def _two_camera_rig_whose_second_camera_is_missing(tmp_path: Path) -> str:
    return _write_rig(tmp_path, (
        'cameras:\n'
        '  - {name: leaky_cam, backend: fake, width: 32, height: 32, fps: 5}\n'
        f'  - {{name: gone_cam, backend: opencv, device: {tmp_path / "none.avi"}}}\n'))


def _release_half_built_nodes(rig: str) -> None:
    """Belt and braces: release anything a CaptureNode that failed in __init__ left behind
    (the node stops its cameras itself; this keeps a regression from leaking into other
    tests)."""
    for obj in gc.get_objects():
        if isinstance(obj, CaptureNode) and str(obj.rig.source) == rig:
            obj._threads.clear()  # never started: destroy_node could not join them
        elif isinstance(obj, FakeCamera) and obj.name == 'leaky_cam':
            obj.stop()


def test_a_failed_construction_releases_cameras_already_started(ros_context, tmp_path) -> None:
    rig = _two_camera_rig_whose_second_camera_is_missing(tmp_path)
    try:
        with pytest.raises(CameraError, match='gone_cam'):
            _capture_node(ros_context, rig=rig)
        alive = [t.name for t in threading.enumerate() if t.name == 'camera-leaky_cam']
        assert alive == []
    finally:
        _release_half_built_nodes(rig)


def test_a_later_missing_camera_refuses_to_start_cleanly(tmp_path, capsys) -> None:
    import rclpy
    rig = _two_camera_rig_whose_second_camera_is_missing(tmp_path)
    try:
        code = capture_main(['capture_node', '--ros-args', '-p', f'rig:={rig}'])
        assert code == 2
        error = capsys.readouterr().err
        assert 'refusing to start' in error and 'gone_cam' in error
    finally:
        _release_half_built_nodes(rig)
        rclpy.try_shutdown()  # the default context, left initialised by the failed shutdown


def test_a_single_missing_camera_refuses_to_start(tmp_path, capsys) -> None:
    rig = _write_rig(tmp_path, (
        'cameras:\n'
        f'  - {{name: gone_cam, backend: opencv, device: {tmp_path / "none.avi"}}}\n'))
    assert capture_main(['capture_node', '--ros-args', '-p', f'rig:={rig}']) == 2
    error = capsys.readouterr().err
    assert 'capture_node: refusing to start' in error and 'cannot open' in error
