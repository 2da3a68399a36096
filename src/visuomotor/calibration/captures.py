"""A capture folder: calibration views as taken, before anything is solved from them.

    <folder>/capture.yaml          robot, joint names, cameras, when
    <folder>/0001.yaml             the joint positions at that view, camera serials, stamps
    <folder>/0001_<camera>.png     the image of each camera (lossless, RGB stored as PNG)

Written by the capture helper (visuomotor.ros.calibration_capture_node) view by view, each
view's YAML last, so a crash leaves only complete views; read back by the solvers, so a
calibration can be re-solved, audited or compared later from exactly the same pixels.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import yaml

from visuomotor.calibration.rig_files import CalibrationFileError, write_atomic
from visuomotor.calibration.verify import CameraView
from visuomotor.config_fields import FieldReader, read_yaml
from visuomotor.preprocessing.image_files import ImageFileError, read_image
from visuomotor.robots.description import RobotDescription
from visuomotor.robots.kinematics import flange_pose

Image = npt.NDArray[np.uint8]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaptureView:
    """One view: per camera an image, and the joint positions when they were taken."""

    index: int
    joint_positions: npt.NDArray[np.float64]
    images: Mapping[str, Image]
    serials: Mapping[str, str]


class CaptureWriter:
    """Writes a capture folder, one view at a time."""

    def __init__(self, folder: str | Path, robot: str, joint_names: Sequence[str],
                 cameras: Sequence[str], *, purpose: str = '') -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.cameras = list(cameras)
        self.count = len(list(self.folder.glob('[0-9][0-9][0-9][0-9].yaml')))
        write_atomic(self.folder / 'capture.yaml', yaml.safe_dump({
            'robot': robot, 'joint_names': list(joint_names), 'cameras': self.cameras,
            'purpose': purpose,
            'started_at': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')},
            sort_keys=False))

    def add(self, joint_positions: Sequence[float], images: Mapping[str, Image], *,
            serials: Mapping[str, str] | None = None,
            stamps_ns: Mapping[str, int] | None = None) -> int:
        """Write one view (images first, its YAML last); returns its index."""
        index = self.count + 1
        for camera, image in images.items():
            array = np.asarray(image)
            bgr = array[:, :, ::-1] if array.ndim == 3 else array
            ok, png = cv2.imencode('.png', np.ascontiguousarray(bgr))
            if not ok:
                raise CalibrationFileError(camera, 'the image could not be encoded as PNG')
            (self.folder / f'{index:04d}_{camera}.png').write_bytes(png.tobytes())
        write_atomic(self.folder / f'{index:04d}.yaml', yaml.safe_dump({
            'joint_positions_rad': [float(v) for v in joint_positions],
            'cameras': sorted(images), 'serials': dict(serials or {}),
            'stamps_ns': {k: int(v) for k, v in (stamps_ns or {}).items()}}, sort_keys=False))
        self.count = index
        return index


@dataclass(frozen=True)
class Captures:
    """A capture folder read back."""

    folder: Path
    robot: str
    joint_names: tuple[str, ...]
    cameras: tuple[str, ...]
    views: tuple[CaptureView, ...]


def load_captures(folder: str | Path) -> Captures:
    """Read a capture folder (every complete view).

    Raises:
        CalibrationFileError: no capture.yaml, or a view file that does not parse.
    """
    root = Path(folder)
    header = root / 'capture.yaml'
    if not header.is_file():
        raise CalibrationFileError(str(root), 'is not a capture folder (no capture.yaml): '
                                   'capture views with `visuomotor launch calibrate`')
    info = FieldReader(read_yaml(header, CalibrationFileError, str(header)), str(header),
                       CalibrationFileError)
    names = info.raw('joint_names')
    cameras = info.raw('cameras')
    views = []
    for path in sorted(root.glob('[0-9][0-9][0-9][0-9].yaml')):
        reader = FieldReader(read_yaml(path, CalibrationFileError, str(path)), str(path),
                             CalibrationFileError)
        q = reader.numbers('joint_positions_rad', len(names))
        images = {}
        for camera in reader.raw('cameras'):
            file = root / f'{path.stem}_{camera}.png'
            try:
                loaded = read_image(file)
            except ImageFileError as error:
                raise CalibrationFileError(str(file), f'{str(error).split(": ", 1)[1]}; or '
                                           f're-capture this view (or delete {path.name} to '
                                           'leave it out)') from None
            if loaded.conversions:
                _log.warning(loaded.note(str(file)))
            images[str(camera)] = np.ascontiguousarray(loaded.image[:, :, ::-1],
                                                       dtype=np.uint8)
        serials = reader.raw('serials') if reader.has('serials') else {}
        views.append(CaptureView(int(path.stem), np.asarray(q), images,
                                 {str(k): str(v) for k, v in dict(serials).items()}))
    return Captures(root, info.text('robot'), tuple(str(n) for n in names),
                    tuple(str(c) for c in cameras), tuple(views))


def camera_views(captures: Captures, robot: RobotDescription) -> dict[str, list[CameraView]]:
    """Per camera, its images paired with the flange pose (FK of the captured joints)."""
    views: dict[str, list[CameraView]] = {camera: [] for camera in captures.cameras}
    for view in captures.views:
        flange = flange_pose(robot, view.joint_positions)
        for camera, image in view.images.items():
            views.setdefault(camera, []).append(CameraView(image, flange))
    return views
