"""Camera backends, the threaded grab machinery and rig files (no ROS, no hardware)."""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from visuomotor.cameras.camera import CameraError, CameraTimeoutError, Frame, ThreadedCamera
from visuomotor.cameras.fake_camera import FakeCamera, FolderCamera
from visuomotor.cameras.opencv_camera import OpenCVCamera
from visuomotor.cameras.realsense_camera import RealSenseCamera
from visuomotor.cameras.rig import CameraConfig, RigError, load_rig, make_camera

# A clock far from time.time(): stamps on it prove the camera uses the injected clock.
OFFSET_S = 1000.0


def shifted_clock() -> float:
    return time.time() + OFFSET_S


@pytest.fixture
def started() -> Iterator[list]:
    """Cameras appended here are stopped after the test, whatever happens."""
    cameras: list = []
    yield cameras
    for camera in cameras:
        camera.stop()


def start(cameras: list, camera):
    camera.start()
    cameras.append(camera)
    return camera


def write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    """An MJPG .avi of BGR frames."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*'MJPG'), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def solid_bgr(width: int, height: int, bgr: tuple[int, int, int]) -> np.ndarray:
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:] = bgr
    return frame


# -- FakeCamera and the grab thread ---------------------------------------------------------


def test_fake_camera_frames_are_new_stamped_on_the_given_clock_and_paced(started) -> None:
    camera = start(started, FakeCamera('fake', fps=30.0, clock=shifted_clock))
    frames: list[Frame] = [camera.read(1.0)]
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        frames.append(camera.read(1.0))
    elapsed = time.monotonic() - t0
    seqs = [f.seq for f in frames]
    stamps = [f.stamp_s for f in frames]
    assert all(b > a for a, b in zip(seqs, seqs[1:], strict=False))
    assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False))
    for frame in frames:
        assert abs(frame.stamp_s - shifted_clock()) < 2.0
        assert frame.receive_s == frame.stamp_s  # no driver stamp: grab time on both
        assert frame.encoding == 'rgb8'
        assert frame.image.shape == (480, 640, 3)
        assert frame.image.dtype == np.uint8
    rate = (len(frames) - 1) / elapsed
    assert 20.0 < rate < 40.0, rate
    device_rate = (seqs[-1] - seqs[0]) / (stamps[-1] - stamps[0])
    assert 20.0 < device_rate < 40.0, device_rate


def test_fake_camera_frames_do_not_alias(started) -> None:
    camera = start(started, FakeCamera('fake', width=64, height=48, fps=60.0))
    first = camera.read(1.0)
    kept = first.image.copy()
    first.image[:] = 0  # a consumer scribbling on its frame
    # Frames loop over 30 pre-rendered images: read past a full loop so the first recurs.
    later = [camera.read(1.0)]
    while later[-1].seq < first.seq + 31:
        later.append(camera.read(1.0))
    for frame in later:
        assert not np.shares_memory(frame.image, first.image)
    assert not any(np.shares_memory(a.image, b.image)
                   for a, b in zip(later, later[1:], strict=False))
    again = [f for f in later if f.seq == first.seq + 30]  # the same scene image, re-sent
    for frame in again:
        assert np.array_equal(frame.image, kept)
    # Whether or not the reader caught that one, the source image is untouched.
    assert np.array_equal(camera._frames[first.seq % 30], kept)


def test_fake_camera_refuses_a_non_positive_rate() -> None:
    with pytest.raises(CameraError, match='fps must be > 0'):
        FakeCamera('fake', fps=0.0)


def test_a_slow_reader_sees_gaps_in_seq(started) -> None:
    camera = start(started, FakeCamera('fake', width=64, height=48, fps=60.0))
    first = camera.read(1.0)
    time.sleep(0.2)
    second = camera.read(1.0)
    assert second.seq - first.seq > 1
    # The reader gets the newest frame, not a backlog: the next one is again the next new one.
    third = camera.read(1.0)
    assert third.seq > second.seq


class BlockingCamera(ThreadedCamera):
    """A device that opens but never delivers a frame until released."""

    def __init__(self) -> None:
        super().__init__('stuck_cam')
        self.release = threading.Event()

    def _open(self) -> None:
        pass

    def _grab(self):
        self.release.wait(5.0)
        return np.zeros((2, 2, 3), np.uint8), None

    def _close(self) -> None:
        self.release.set()


class FailingCamera(ThreadedCamera):
    """A device whose grab fails after two frames."""

    def __init__(self) -> None:
        super().__init__('broken_cam')
        self.count = 0

    def _open(self) -> None:
        pass

    def _grab(self):
        self.count += 1
        if self.count > 2:
            raise OSError('USB link reset')
        time.sleep(0.01)
        return np.zeros((2, 2, 3), np.uint8), 123.0

    def _close(self) -> None:
        pass


def test_read_times_out_naming_the_camera(started) -> None:
    camera = start(started, BlockingCamera())
    t0 = time.monotonic()
    with pytest.raises(CameraTimeoutError, match="'stuck_cam'") as info:
        camera.read(0.2)
    elapsed = time.monotonic() - t0
    assert 0.15 < elapsed < 1.0
    assert isinstance(info.value, CameraError)
    assert '0.20 s' in str(info.value)
    camera.release.set()  # let the grab return, so stop() need not wait out its join


def test_a_grab_error_surfaces_on_read(started) -> None:
    camera = start(started, FailingCamera())
    with pytest.raises(CameraError, match='USB link reset') as info:
        for _ in range(10):
            frame = camera.read(1.0)
            assert frame.stamp_s == 123.0  # the driver stamp is used when given
    assert not isinstance(info.value, CameraTimeoutError)
    assert "'broken_cam'" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(CameraError, match='USB link reset'):  # and stays reported
        camera.read(0.1)


# -- OpenCVCamera on video files ------------------------------------------------------------


@pytest.fixture
def red_video(tmp_path) -> Path:
    """Ten 64x48 frames of pure red (BGR (0, 0, 255))."""
    return write_video(tmp_path / 'red.avi', [solid_bgr(64, 48, (0, 0, 255))] * 10)


def test_opencv_file_frames_have_the_file_size_and_bgr_order(started, red_video) -> None:
    camera = start(started, OpenCVCamera('file_cam', str(red_video), fps=100.0,
                                         clock=shifted_clock))
    frame = camera.read(1.0)
    assert frame.image.shape == (48, 64, 3)
    assert frame.image.dtype == np.uint8
    assert frame.encoding == 'bgr8'
    assert camera.width == 64 and camera.height == 48
    blue, green, red = frame.image.reshape(-1, 3).mean(axis=0)
    assert red > 200 and blue < 50 and green < 50
    assert abs(frame.stamp_s - shifted_clock()) < 2.0


def test_opencv_file_frames_in_rgb8(started, red_video) -> None:
    camera = start(started, OpenCVCamera('file_cam', str(red_video), fps=100.0,
                                         encoding='rgb8'))
    frame = camera.read(1.0)
    assert frame.encoding == 'rgb8'
    red, green, blue = frame.image.reshape(-1, 3).mean(axis=0)
    assert red > 200 and blue < 50 and green < 50


def test_opencv_refuses_other_encodings(red_video) -> None:
    with pytest.raises(CameraError, match='mono8'):
        OpenCVCamera('file_cam', str(red_video), encoding='mono8')


def test_opencv_refuses_a_size_the_device_does_not_deliver(red_video) -> None:
    camera = OpenCVCamera('file_cam', str(red_video), width=320, height=240)
    with pytest.raises(CameraError) as info:
        camera.start()
    message = str(info.value)
    assert '320x240' in message and '64x48' in message and "'file_cam'" in message


def test_opencv_accepts_the_size_the_file_has(started, red_video) -> None:
    camera = start(started, OpenCVCamera('file_cam', str(red_video), width=64, height=48,
                                         fps=100.0))
    assert camera.read(1.0).image.shape == (48, 64, 3)


def test_opencv_refuses_a_missing_device(tmp_path) -> None:
    missing = str(tmp_path / 'no_such_video.avi')
    with pytest.raises(CameraError, match='cannot open') as info:
        OpenCVCamera('gone_cam', missing).start()
    assert missing in str(info.value)
    assert "'gone_cam'" in str(info.value)


def test_opencv_file_loops_past_its_end(started, tmp_path) -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]  # B, G, R in BGR order
    video = write_video(tmp_path / 'three.avi', [solid_bgr(32, 32, c) for c in colours])
    camera = start(started, OpenCVCamera('loop_cam', str(video), fps=200.0))
    frames = [camera.read(1.0) for _ in range(10)]  # three times past the end
    seqs = [f.seq for f in frames]
    assert all(b > a for a, b in zip(seqs, seqs[1:], strict=False))
    dominant = [int(np.argmax(f.image.reshape(-1, 3).mean(axis=0))) for f in frames]
    # Frame i (no drops at this rate: each read follows the next grab) is colour i mod 3;
    # tolerate drops by checking that every colour recurs after the end of the file.
    assert set(dominant[3:]) == {0, 1, 2}


def test_opencv_file_without_loop_reports_the_end(started, tmp_path) -> None:
    video = write_video(tmp_path / 'short.avi', [solid_bgr(32, 32, (9, 9, 9))] * 2)
    camera = start(started, OpenCVCamera('once_cam', str(video), fps=200.0, loop=False))
    with pytest.raises(CameraError, match='stopped delivering'):
        for _ in range(10):
            camera.read(1.0)


def test_opencv_file_is_paced_at_the_requested_rate(started, red_video) -> None:
    camera = start(started, OpenCVCamera('file_cam', str(red_video), fps=30.0))
    first = camera.read(1.0)
    t0 = time.monotonic()
    count = 0
    while time.monotonic() - t0 < 0.5:
        last = camera.read(1.0)
        count += 1
    rate = (last.seq - first.seq) / (time.monotonic() - t0)
    assert 15.0 < rate < 45.0, rate
    assert count >= 5


# -- FolderCamera ---------------------------------------------------------------------------


def test_folder_camera_loops_in_name_order(started, tmp_path) -> None:
    # Written out of name order; values chosen so each image is recognisable after PNG.
    for name, value in (('b.png', 20), ('c.png', 30), ('a.png', 10)):
        cv2.imwrite(str(tmp_path / name), np.full((24, 32, 3), value, np.uint8))
    (tmp_path / 'notes.txt').write_text('not an image')
    camera = start(started, FolderCamera('folder_cam', tmp_path, fps=200.0))
    frames = [camera.read(1.0) for _ in range(7)]
    values = [int(f.image[0, 0, 0]) for f in frames]
    seqs = [f.seq for f in frames]
    # Reads may skip frames under load; map each value back through seq: image = seq mod 3.
    for seq, value in zip(seqs, values, strict=True):
        assert value == (10, 20, 30)[seq % 3]
    assert frames[0].image.shape == (24, 32, 3)
    assert frames[0].encoding == 'rgb8'


def test_folder_camera_converts_to_rgb(started, tmp_path) -> None:
    cv2.imwrite(str(tmp_path / 'red.png'), solid_bgr(16, 16, (0, 0, 255)))
    camera = start(started, FolderCamera('folder_cam', tmp_path, fps=100.0))
    assert tuple(camera.read(1.0).image[0, 0]) == (255, 0, 0)


def test_folder_camera_refuses_an_empty_folder(tmp_path) -> None:
    (tmp_path / 'readme.txt').write_text('no images here')
    with pytest.raises(CameraError, match='no images') as info:
        FolderCamera('folder_cam', tmp_path).start()
    assert str(tmp_path) in str(info.value)


def test_folder_camera_refuses_mixed_sizes(tmp_path) -> None:
    cv2.imwrite(str(tmp_path / 'a.png'), np.zeros((24, 32, 3), np.uint8))
    cv2.imwrite(str(tmp_path / 'b.png'), np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(CameraError, match='differ in size'):
        FolderCamera('folder_cam', tmp_path).start()


def test_folder_camera_refuses_an_unreadable_image(tmp_path) -> None:
    (tmp_path / 'broken.png').write_bytes(b'not a png')
    with pytest.raises(CameraError, match='cannot read'):
        FolderCamera('folder_cam', tmp_path).start()


# -- RealSense without pyrealsense2 ---------------------------------------------------------


def test_realsense_without_pyrealsense2_says_how_to_fix_it() -> None:
    if importlib.util.find_spec('pyrealsense2') is not None:
        pytest.skip('pyrealsense2 is installed here')
    camera = RealSenseCamera('wrist_camera', '123456')
    with pytest.raises(CameraError) as info:
        camera.start()
    message = str(info.value)
    assert 'pyrealsense2' in message and 'pip install' in message
    assert 'topic' in message
    assert "'wrist_camera'" in message


# -- TwinCamera -----------------------------------------------------------------------------


@pytest.fixture(scope='module')
def twin():
    from visuomotor.sim.config import load_scene
    from visuomotor.sim.twin import Twin
    twin = Twin(load_scene('fr3'))
    yield twin
    twin.close()


def test_twin_camera_renders_at_sim_time(twin) -> None:
    from visuomotor.cameras.twin_camera import TwinCamera
    twin.reset()
    camera = TwinCamera(twin, 'scene_camera')
    camera.start()
    first = camera.read()
    assert first.image.shape == (96, 96, 3)
    assert first.image.dtype == np.uint8
    assert first.encoding == 'rgb8'
    assert first.image.std() > 1.0  # a scene, not a blank buffer
    assert first.stamp_s == twin.time_s == first.receive_s
    kept = first.image.copy()
    twin.step(10 * twin.timestep_s)
    second = camera.read()
    assert second.seq == first.seq + 1
    assert second.stamp_s == twin.time_s > first.stamp_s
    assert np.array_equal(first.image, kept)  # rendering again did not overwrite it
    third = camera.read()  # no step: a new frame all the same, at the same time
    assert third.seq == second.seq + 1
    assert third.stamp_s == second.stamp_s
    camera.stop()


def test_twin_camera_refuses_an_unknown_camera(twin) -> None:
    from visuomotor.cameras.twin_camera import TwinCamera
    with pytest.raises(CameraError, match='top_camera') as info:
        TwinCamera(twin, 'top_camera')
    assert 'scene_camera' in str(info.value)  # lists the cameras it has


# -- rig files ------------------------------------------------------------------------------


def test_shipped_rigs_load() -> None:
    fake = load_rig('fake_two')
    assert fake.name == 'fake_two'
    assert [c.name for c in fake.cameras] == ['scene_camera', 'wrist_camera']
    assert all(c.backend == 'fake' and (c.width, c.height, c.fps) == (640, 480, 30.0)
               for c in fake.cameras)
    assert fake.cameras[0].image_topic == '/scene_camera/image_raw'
    assert fake.cameras[0].camera_info_topic == '/scene_camera/camera_info'
    lab = load_rig('example_lab')
    scene, wrist = lab.cameras
    assert (scene.backend, scene.device, scene.fourcc, scene.encoding) == \
        ('opencv', '/dev/video0', 'MJPG', 'rgb8')
    assert (wrist.backend, wrist.topic, wrist.info_topic) == \
        ('topic', '/camera/wrist/color/image_raw', '/camera/wrist/color/camera_info')
    assert load_rig(fake.source) == fake  # by path as well as by name


def test_unknown_rig_name_lists_the_available_ones() -> None:
    with pytest.raises(RigError, match='fake_two'):
        load_rig('no_such_rig')


def write_rig(tmp_path: Path, body: str) -> Path:
    path = tmp_path / 'rig.yaml'
    path.write_text(body)
    return path


@pytest.mark.parametrize(('body', 'field', 'words'), [
    ('cameras:\n  - {name: a, backend: fake, devise: /dev/video0}\n',
     'cameras[0]', ['devise']),
    ('cameras:\n  - {name: a, backend: fake}\n  - {name: b, backend: opencv}\n',
     'cameras[1].device', ['required', 'opencv']),
    ('cameras:\n  - {name: a, backend: folder}\n', 'cameras[0].folder', ['required']),
    ('cameras:\n  - {name: a, backend: topic}\n', 'cameras[0].topic', ['required']),
    ('cameras:\n  - {name: a, backend: opencv, device: 0, fourcc: MJPEG}\n',
     'cameras[0].fourcc', ['4 characters', 'MJPEG']),
    ('cameras:\n  - {name: a, backend: fake}\n  - {name: a, backend: fake}\n',
     'cameras', ['repeat']),
    ('cameras:\n  - {name: scene-camera, backend: fake}\n', 'cameras[0].name',
     ['scene-camera']),
    ('cameras:\n  - {name: scene camera, backend: fake}\n', 'cameras[0].name',
     ['scene camera']),
    ('cameras: []\n', 'cameras', ['empty']),
    ('cameras:\n  - {name: a, backend: webcam}\n', 'cameras[0].backend', ['webcam']),
    ('cameras:\n  - {name: a, backend: fake, fps: 0}\n', 'cameras[0].fps', ['> 0']),
    ('cameras:\n  - {name: a, backend: fake, width: -640}\n', 'cameras[0].width', ['-640']),
    ('cameras:\n  - {name: a, backend: fake, encoding: yuv422}\n', 'cameras[0].encoding',
     ['yuv422']),
    ('rig: x\ncamras: []\n', 'file', ['camras']),
], ids=['unknown-key', 'opencv-without-device', 'folder-without-folder', 'topic-without-topic',
        'fourcc-length', 'duplicate-names', 'dash-in-name', 'space-in-name', 'no-cameras',
        'unknown-backend', 'zero-fps', 'negative-width', 'bad-encoding', 'unknown-top-key'])
def test_rig_errors_name_the_field(tmp_path, body, field, words) -> None:
    with pytest.raises(RigError) as info:
        load_rig(write_rig(tmp_path, body))
    assert info.value.field == field
    message = str(info.value)
    assert message.startswith(f'{field}: ')
    for word in words:
        assert word in message


def test_rig_without_cameras_key_is_refused(tmp_path) -> None:
    with pytest.raises(RigError, match='cameras: is missing'):
        load_rig(write_rig(tmp_path, 'rig: x\n'))


def test_rig_that_is_not_yaml_is_refused(tmp_path) -> None:
    with pytest.raises(RigError, match='not valid YAML'):
        load_rig(write_rig(tmp_path, 'cameras: [\n'))


@pytest.mark.parametrize('name', ['2nd_camera', 'kamera_ä'])
def test_rig_refuses_names_that_are_not_topic_tokens(tmp_path, name) -> None:
    with pytest.raises(RigError, match='name'):
        load_rig(write_rig(tmp_path, f'cameras:\n  - {{name: {name}, backend: fake}}\n'))


def test_make_camera_builds_the_backend_of_each_camera(tmp_path, red_video) -> None:
    cases = {
        'opencv': (CameraConfig('a', 'opencv', 64, 48, 30.0, device=str(red_video)),
                   OpenCVCamera),
        'realsense': (CameraConfig('b', 'realsense', 640, 480, 30.0, serial='42'),
                      RealSenseCamera),
        'fake': (CameraConfig('c', 'fake', 320, 240, 15.0), FakeCamera),
        'folder': (CameraConfig('d', 'folder', 32, 24, 10.0, folder=str(tmp_path)),
                   FolderCamera),
    }
    for backend, (config, kind) in cases.items():
        camera = make_camera(config, shifted_clock)
        assert type(camera) is kind, backend
        assert camera.name == config.name
        assert camera.clock is shifted_clock
    opencv = make_camera(cases['opencv'][0], shifted_clock)
    assert (opencv.device, opencv.width, opencv.height, opencv.fps) == \
        (str(red_video), 64, 48, 30.0)
    fake = make_camera(cases['fake'][0], shifted_clock)
    assert (fake.width, fake.height, fake.fps) == (320, 240, 15.0)
    realsense = make_camera(cases['realsense'][0], shifted_clock)
    assert realsense.serial == '42'
    folder = make_camera(cases['folder'][0], shifted_clock)
    assert folder.folder == tmp_path


def test_make_camera_keeps_device_indices_and_dev_paths() -> None:
    for device in ('0', '/dev/video2', 'rtsp://cam.local/stream'):
        camera = make_camera(CameraConfig('a', 'opencv', 640, 480, 30.0, device=device),
                             shifted_clock)
        assert camera.device == device


def test_make_camera_resolves_relative_paths_against_the_share_dir() -> None:
    from visuomotor.paths import share_dir
    camera = make_camera(CameraConfig('a', 'opencv', 640, 480, 30.0, device='data/v.avi'),
                         shifted_clock)
    assert camera.device == str(share_dir() / 'data' / 'v.avi')


def test_make_camera_refuses_topic_cameras() -> None:
    config = CameraConfig('wrist_camera', 'topic', 640, 480, 30.0, topic='/drv/image_raw')
    with pytest.raises(CameraError, match='topic') as info:
        make_camera(config, shifted_clock)
    assert "'wrist_camera'" in str(info.value)


def test_a_rig_file_camera_captures_through_make_camera(started, tmp_path, red_video) -> None:
    rig = load_rig(write_rig(tmp_path, (
        'rig: files\n'
        'cameras:\n'
        f'  - {{name: file_cam, backend: opencv, device: {red_video}, width: 64, height: 48,'
        ' fps: 60, encoding: rgb8}\n')))
    camera = start(started, make_camera(rig.cameras[0], shifted_clock))
    frame = camera.read(1.0)
    assert frame.image.shape == (48, 64, 3)
    assert frame.encoding == 'rgb8'
    assert frame.image[..., 0].mean() > 200  # red first in rgb8
    assert abs(frame.stamp_s - shifted_clock()) < 2.0
