"""Intrinsic calibration from ChArUco views (pure: OpenCV's calibrateCamera).

While capturing, `Coverage` says which parts of the image and which board tilts are still
missing (the guidance ROS camera_calibration gives with its X/Y/size/skew bars, as named
regions here). `calibrate_intrinsics` fits a pinhole camera with plumb_bob (k1 k2 p1 p2 k3)
or rational_polynomial (k1..k6 + p1 p2) distortion and reports the RMS reprojection error
over all views and per view. `save_intrinsics` writes a ROS camera_info YAML (the
camera_calibration_parsers format) with the camera serial, resolution and RMS beside it.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import yaml

import visuomotor
from visuomotor.calibration.charuco import BoardView, CalibrationError
from visuomotor.calibration.rig_files import write_atomic
from visuomotor.cameras.intrinsics import CameraIntrinsics

MODELS = ('plumb_bob', 'rational_polynomial')
#: Board tilts a good calibration sees (degrees of the board normal from the optical axis,
#: towards each image side), besides frontal views.
TILT_DEG = 15.0
REGIONS = ('top-left', 'top', 'top-right', 'left', 'centre', 'right', 'bottom-left', 'bottom',
           'bottom-right')


@dataclass
class Coverage:
    """Which image regions (a 3x3 grid) and board tilts the views so far cover.

    Tilts are judged from each view's board pose under a nominal camera: `camera_matrix`
    (the driver's factory camera_info, or the previous calibration) or, without one, a focal
    length of the image width and a centred principal point; good enough to tell 20 degrees
    from frontal when the pixels are square.
    """

    width: int
    height: int
    camera_matrix: npt.NDArray[np.float64] | None = None
    min_corners_per_region: int = 10
    corners: npt.NDArray[np.int64] = field(init=False)
    tilts: set[str] = field(default_factory=set)
    views: int = 0

    def __post_init__(self) -> None:
        self.corners = np.zeros(9, dtype=np.int64)

    def add(self, view: BoardView) -> None:
        """Count one view's corners and tilt."""
        if view.image_size != (self.width, self.height):
            raise CalibrationError(f'view of {view.image_size[0]}x{view.image_size[1]} added '
                                   f'to a {self.width}x{self.height} calibration: one camera '
                                   'mode per calibration')
        col = np.clip((view.pixels[:, 0] * 3 / self.width).astype(int), 0, 2)
        row = np.clip((view.pixels[:, 1] * 3 / self.height).astype(int), 0, 2)
        np.add.at(self.corners, row * 3 + col, 1)
        self.tilts.add(_tilt(view, self.camera_matrix))
        self.views += 1

    def missing(self) -> list[str]:
        """What to capture next, in words (empty: coverage is complete)."""
        regions = [REGIONS[i] for i in range(9)
                   if self.corners[i] < self.min_corners_per_region]
        out = [f'board corners in the {", ".join(regions)} of the image'] if regions else []
        tilts = [t for t in ('tilted left', 'tilted right', 'tilted up', 'tilted down')
                 if t not in self.tilts]
        if tilts:
            out.append(f'board views {", ".join(tilts)} (by more than {TILT_DEG:g} degrees)')
        if 'frontal' not in self.tilts:
            out.append('a frontal board view')
        return out

    def describe(self) -> str:
        """One progress line."""
        missing = self.missing()
        return f'{self.views} views; ' + ('coverage complete' if not missing else
                                          'still missing: ' + '; '.join(missing))


def _tilt(view: BoardView, camera_matrix: npt.NDArray[np.float64] | None) -> str:
    """'frontal' or the direction the board is tilted by more than TILT_DEG."""
    width, height = view.image_size
    k = camera_matrix if camera_matrix is not None else np.array(
        [[width, 0.0, width / 2], [0.0, width, height / 2], [0.0, 0.0, 1.0]])
    ok, rvec, _ = cv2.solvePnP(view.object_points, view.pixels, k, np.zeros(5))
    if not ok:
        return 'unknown'
    rotation, _ = cv2.Rodrigues(rvec)
    normal = rotation[:, 2]  # the board's z axis in the camera frame
    if normal[2] < 0:
        normal = -normal
    x = math.degrees(math.atan2(normal[0], normal[2]))
    y = math.degrees(math.atan2(normal[1], normal[2]))
    if max(abs(x), abs(y)) < TILT_DEG:
        return 'frontal'
    if abs(x) >= abs(y):
        return 'tilted right' if x > 0 else 'tilted left'
    return 'tilted down' if y > 0 else 'tilted up'


@dataclass(frozen=True)
class IntrinsicCalibration:
    """A fitted camera and how well it explains the views.

    Attributes:
        intrinsics: the camera (camera_info).
        rms_px: RMS reprojection error over every corner of every view.
        view_rms_px: the RMS of each view, in the order given.
        views: number of views used.
        corners: number of corners used.
    """

    intrinsics: CameraIntrinsics
    rms_px: float
    view_rms_px: tuple[float, ...]
    views: int
    corners: int


def calibrate_intrinsics(views: Sequence[BoardView], *, model: str = 'plumb_bob',
                         camera_name: str = '', min_views: int = 6) -> IntrinsicCalibration:
    """Fit the camera to the views (all from one camera at one resolution).

    Raises:
        CalibrationError: too few views, mixed resolutions, an unknown model, or a fit that
            did not converge to a plausible camera.
    """
    if model not in MODELS:
        raise CalibrationError(f'distortion model {model!r} is not one of {list(MODELS)}')
    if len(views) < min_views:
        raise CalibrationError(f'{len(views)} usable board views; at least {min_views} are '
                               'needed: capture more, covering the whole image and tilting '
                               'the board')
    sizes = {v.image_size for v in views}
    if len(sizes) != 1:
        raise CalibrationError(f'views of several resolutions {sorted(sizes)}: calibrate one '
                               'camera mode at a time')
    (width, height), = sizes
    flags = cv2.CALIB_RATIONAL_MODEL if model == 'rational_polynomial' else 0
    objects = [v.object_points.astype(np.float32) for v in views]
    pixels = [v.pixels.astype(np.float32).reshape(-1, 1, 2) for v in views]
    rms, k, d, rvecs, tvecs = cv2.calibrateCamera(objects, pixels, (width, height), None, None,
                                                  flags=flags)
    coefficients = np.asarray(d, dtype=np.float64).ravel()
    count = 8 if model == 'rational_polynomial' else 5
    coefficients = np.concatenate([coefficients, np.zeros(max(0, count - len(coefficients)))])
    fx, fy, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
    if not all(math.isfinite(v) for v in (rms, fx, fy, cx, cy)) or fx <= 0 or fy <= 0 or \
            not (0 <= cx < width and 0 <= cy < height):
        raise CalibrationError(f'the fit did not converge to a plausible camera (fx {fx:.1f}, '
                               f'fy {fy:.1f}, cx {cx:.1f}, cy {cy:.1f}, RMS {rms:.2f} px): '
                               'capture more varied views')
    per_view = []
    for obj, pix, rvec, tvec in zip(objects, pixels, rvecs, tvecs, strict=True):
        projected, _ = cv2.projectPoints(obj, rvec, tvec, k, d)
        error = projected.reshape(-1, 2) - pix.reshape(-1, 2)
        per_view.append(float(np.sqrt(np.mean(np.sum(error ** 2, axis=1)))))
    intrinsics = CameraIntrinsics(
        width=width, height=height, k=(fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0),
        distortion_model=model, d=tuple(float(c) for c in coefficients[:count]),
        camera_name=camera_name)
    return IntrinsicCalibration(intrinsics, float(rms), tuple(per_view), len(views),
                                sum(len(v) for v in views))


def save_intrinsics(result: IntrinsicCalibration, path: str | Path, *, serial: str,
                    now: datetime.datetime | None = None) -> Path:
    """Write camera_info YAML plus the camera serial, RMS, view count, time and version.

    The extra keys sit beside the camera_info ones; camera_calibration_parsers and
    `load_camera_info` ignore them.
    """
    if not serial:
        raise CalibrationError('the camera serial is empty: give the serial (e.g. the '
                               "RealSense's) so verification can tell cameras apart")
    data: dict[str, Any] = result.intrinsics.to_yaml_dict()
    data.update({
        'camera_serial': serial,
        'reprojection_rms_px': round(result.rms_px, 6),
        'views': result.views,
        'corners': result.corners,
        'calibrated_at': (now or datetime.datetime.now(datetime.UTC)).isoformat(),
        'software': f'visuomotor {visuomotor.__version__}',
    })
    # A crash never leaves half a calibration.
    return write_atomic(Path(path), yaml.safe_dump(data, sort_keys=False))
