"""Camera rig files (config/cameras/<rig>.yaml): every camera of a rig, one parameter file.

    rig: lab_fr3
    cameras:
      - name: scene_camera        # topics: /scene_camera/image_raw, /scene_camera/camera_info
        backend: opencv           # opencv | realsense | fake | folder | topic
        device: /dev/video0       # opencv: index, /dev/videoN, a video file or a URL
        width: 640
        height: 480
        fps: 30
        fourcc: MJPG              # opencv: optional
        exposure: 150             # optional; manual exposure in the driver's units
        encoding: rgb8            # opencv: rgb8 or bgr8 (as delivered, no conversion)
        camera_info: calibration/lab_fr3/scene_camera.yaml   # optional intrinsics
      - name: wrist_camera
        backend: topic            # frames from a driver node (realsense2_camera, usb_cam)
        topic: /camera/wrist/color/image_raw
        info_topic: /camera/wrist/color/camera_info

Backends: `realsense` takes `serial`; `folder` takes `folder` (looped images); `fake` renders
the synthetic scene; `sim` cameras are published by the MuJoCo twin's node itself (the
capture node leaves them alone; recorder and policy read them like any other). Relative paths
are relative to the share directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from visuomotor.cameras.camera import Camera, CameraError, Clock
from visuomotor.config_fields import FieldReader, config_path, read_yaml
from visuomotor.errors import FieldError
from visuomotor.paths import share_dir

BACKENDS = ('opencv', 'realsense', 'fake', 'folder', 'topic', 'sim')


class RigError(FieldError):
    """A camera rig file is invalid."""


@dataclass(frozen=True)
class CameraConfig:
    """One camera of a rig (see the module docstring for the fields)."""

    name: str
    backend: str
    width: int
    height: int
    fps: float
    device: str = ''
    serial: str = ''
    fourcc: str = ''
    exposure: float | None = None
    encoding: str = 'rgb8'
    folder: str = ''
    topic: str = ''
    info_topic: str = ''
    camera_info: str = ''

    @property
    def image_topic(self) -> str:
        """Where the stack reads this camera."""
        return f'/{self.name}/image_raw'

    @property
    def camera_info_topic(self) -> str:
        """Where its calibration is published."""
        return f'/{self.name}/camera_info'


@dataclass(frozen=True)
class CameraRig:
    """A rig: its name, its cameras and the file it came from."""

    name: str
    cameras: tuple[CameraConfig, ...]
    source: Path


_FIELDS = {'name', 'backend', 'device', 'serial', 'width', 'height', 'fps', 'fourcc',
           'exposure', 'encoding', 'folder', 'topic', 'info_topic', 'camera_info'}


def _camera(r: FieldReader) -> CameraConfig:
    r.unknown(_FIELDS)
    backend = r.text('backend', choices=BACKENDS)
    name = r.text('name')
    if not re.fullmatch(r'[A-Za-z][A-Za-z0-9_]*', name) or '__' in name or name.endswith('_'):
        raise r.fail('name', f'{name!r} must start with an ASCII letter and contain only '
                     'letters, digits and single underscores (it becomes a topic name)')
    config = CameraConfig(
        name=name, backend=backend, width=r.integer('width', 640), height=r.integer('height', 480),
        fps=r.number('fps', 30.0, positive=True, maximum=1000.0),
        device=str(r.raw('device')) if r.has('device') else '',
        serial=str(r.raw('serial')) if r.has('serial') else '',
        fourcc=r.text('fourcc', '') if r.has('fourcc') else '',
        exposure=r.number('exposure') if r.has('exposure') else None,
        encoding=r.text('encoding', 'rgb8', choices=('rgb8', 'bgr8')),
        folder=r.text('folder') if r.has('folder') else '',
        topic=r.text('topic') if r.has('topic') else '',
        info_topic=r.text('info_topic') if r.has('info_topic') else '',
        camera_info=r.text('camera_info') if r.has('camera_info') else '')
    needs = {'opencv': 'device', 'folder': 'folder', 'topic': 'topic'}
    if backend in needs and not getattr(config, needs[backend]):
        raise r.fail(needs[backend], f'is required for backend {backend!r}')
    if config.fourcc and len(config.fourcc) != 4:
        raise r.fail('fourcc', f'must be 4 characters (e.g. MJPG, YUYV), got {config.fourcc!r}')
    return config


def load_rig(name_or_path: str | Path) -> CameraRig:
    """Read a rig by name (config/cameras/<name>.yaml) or path.

    Raises:
        RigError: naming the field, e.g. `cameras[1].device: is required for backend 'opencv'`.
    """
    path = config_path(name_or_path, share_dir() / 'config' / 'cameras', 'camera rig', RigError)
    top = FieldReader(read_yaml(path, RigError, 'camera rig'), '', RigError)
    top.unknown({'rig', 'cameras'})
    cameras = tuple(_camera(c) for c in top.children('cameras'))
    if not cameras:
        raise top.fail('cameras', 'is empty')
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise top.fail('cameras', f'camera names repeat: {names}')
    return CameraRig(top.text('rig', path.stem), cameras, path)


def resolve_path(text: str) -> Path:
    """A path from a rig file: absolute, or relative to the share directory."""
    path = Path(text)
    return path if path.is_absolute() else share_dir() / path


def make_camera(config: CameraConfig, clock: Clock) -> Camera:
    """The backend for one camera (not for `topic`, which a node subscribes to)."""
    if config.backend == 'opencv':
        from visuomotor.cameras.opencv_camera import OpenCVCamera
        device = config.device
        if not device.isdigit() and not device.startswith(('/dev/', 'rtsp:', 'http')):
            device = str(resolve_path(device))
        return OpenCVCamera(config.name, device, width=config.width, height=config.height,
                            fps=config.fps, fourcc=config.fourcc or None,
                            exposure=config.exposure, encoding=config.encoding, clock=clock)
    if config.backend == 'realsense':
        from visuomotor.cameras.realsense_camera import RealSenseCamera
        return RealSenseCamera(config.name, config.serial, width=config.width,
                               height=config.height, fps=config.fps, exposure=config.exposure,
                               clock=clock)
    if config.backend == 'fake':
        from visuomotor.cameras.fake_camera import FakeCamera
        return FakeCamera(config.name, width=config.width, height=config.height,
                          fps=config.fps, clock=clock)
    if config.backend == 'folder':
        from visuomotor.cameras.fake_camera import FolderCamera
        return FolderCamera(config.name, resolve_path(config.folder), fps=config.fps,
                            clock=clock)
    raise CameraError(f'camera {config.name!r}: backend {config.backend!r} has no capture '
                      'object (topic cameras are relayed by the capture node, sim cameras '
                      'published by the twin)')
