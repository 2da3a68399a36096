"""Verification before a session (pure): is every camera still where it was calibrated?

For each camera, a few views of the board (at its fixture, or on the gripper) with the
robot's joint positions at each view:

1. resolution: the image size must be the calibrated one;
2. identity: the camera's serial (when the driver reports one) must be the calibrated one;
3. intrinsics: the board pose fitted with the stored intrinsics must reproject the detected
   corners within `reprojection_rms_px` (a refocused lens or another camera mode fails here);
4. extrinsics: the board pose the stored extrinsics predict (forward kinematics of the
   measured joints, camera and board poses from the rig's files) against the observed one:
   the board centre's offset in the camera frame (mm) and the rotation between the two
   (degrees), medians over the views, against `translation_mm` / `rotation_deg`.

A camera moved by 3 mm offsets the board by 3 mm; one turned by 0.5 degrees offsets a board
35 cm away by 3 mm and turns it by 0.5 degrees: both fail the default limits (2 mm, 0.5 deg,
the wrist camera's figure in the issue; a scene camera far from the board may need a looser
translation limit, set per camera in `verification.yaml`). The failure names the camera and
the amount, and the camera's apparent shift (how far it seems to have moved and turned).

Limits: defaults here, per rig and per camera in `calibration/<rig>/verification.yaml`:

    max_age_h: 12                 # the gate's age limit for a record
    translation_mm: 2.0           # defaults for every camera of the rig
    rotation_deg: 0.5
    cameras:
      scene_camera: {translation_mm: 3.0}
    poses_rad:                    # joint positions the views are captured from (taught once)
      - [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]
"""

from __future__ import annotations

import datetime
import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import yaml

import visuomotor
from visuomotor.calibration.charuco import BoardView, CalibrationError, detect_board
from visuomotor.calibration.handeye import board_pose
from visuomotor.calibration.rig_files import (
    BoardPlacement,
    CalibrationFileError,
    CameraCalibration,
    RigCalibration,
)
from visuomotor.config_fields import FieldReader
from visuomotor.robots.transforms import Matrix, invert, rotation_vector

Image = npt.NDArray[np.uint8]
LIMIT_KEYS = ('translation_mm', 'rotation_deg', 'reprojection_rms_px', 'min_views',
              'min_corners')


@dataclass(frozen=True)
class VerifyLimits:
    """What a camera must meet to pass (see the module docstring)."""

    translation_mm: float = 2.0
    rotation_deg: float = 0.5
    reprojection_rms_px: float = 1.0
    min_views: int = 2
    min_corners: int = 12


@dataclass(frozen=True)
class VerifySettings:
    """A rig's verification settings: per-camera limits and the gate's age limit."""

    defaults: VerifyLimits = VerifyLimits()
    cameras: Mapping[str, VerifyLimits] = field(default_factory=dict)
    max_age_h: float = 12.0
    poses_rad: tuple[tuple[float, ...], ...] = ()

    def limits(self, camera: str) -> VerifyLimits:
        """The limits of one camera."""
        return self.cameras.get(camera, self.defaults)


def _limits(reader: FieldReader, base: VerifyLimits) -> VerifyLimits:
    values: dict[str, Any] = {}
    for key in LIMIT_KEYS:
        if reader.has(key):
            values[key] = reader.integer(key) if key.startswith('min_') else \
                reader.number(key, positive=True)
    return replace(base, **values)


def load_settings(folder: Path) -> VerifySettings:
    """`verification.yaml` of a rig folder (defaults when absent)."""
    path = folder / 'verification.yaml'
    if not path.is_file():
        return VerifySettings()
    try:
        data = yaml.safe_load(path.read_text(encoding='utf-8'))
    except (OSError, yaml.YAMLError) as exc:
        raise CalibrationFileError(str(path), f'is not readable YAML ({exc})') from None
    reader = FieldReader(data, str(path), CalibrationFileError)
    reader.unknown({'max_age_h', 'cameras', 'poses_rad', *LIMIT_KEYS})
    defaults = _limits(reader, VerifyLimits())
    cameras = {}
    if reader.has('cameras'):
        child = reader.child('cameras')
        for name in child.data:
            cameras[str(name)] = _limits(child.child(str(name)), defaults)
    poses = []
    if reader.has('poses_rad'):
        raw = reader.raw('poses_rad')
        if not isinstance(raw, list) or not all(isinstance(p, list) for p in raw):
            raise reader.fail('poses_rad', 'must be a list of joint position lists (rad)')
        rows = FieldReader({f'[{i}]': p for i, p in enumerate(raw)}, reader.field('poses_rad'),
                           CalibrationFileError)
        poses = [rows.numbers(f'[{i}]', len(p)) for i, p in enumerate(raw)]
    return VerifySettings(defaults, cameras, reader.number('max_age_h', 12.0, positive=True),
                          tuple(poses))


@dataclass(frozen=True)
class CameraView:
    """One captured image of a camera and where the flange was (FK of the joints)."""

    image: Image
    flange_in_base: Matrix
    encoding: str = 'rgb8'


@dataclass(frozen=True)
class ViewResult:
    """One view's figures (None where the board was not found)."""

    corners: int
    rms_px: float
    translation_mm: float
    rotation_deg: float
    corner_error_px: float
    shift_mm: float
    turn_deg: float


@dataclass(frozen=True)
class CameraCheck:
    """The verdict on one camera, with the figures behind it."""

    camera: str
    passed: bool
    problems: tuple[str, ...]
    views: int
    views_used: int
    resolution: tuple[int, int] | None
    calibrated_resolution: tuple[int, int]
    serial: str
    calibrated_serial: str
    rms_px: float | None
    translation_mm: float | None
    rotation_deg: float | None
    corner_error_px: float | None
    shift_mm: float | None
    turn_deg: float | None
    limits: VerifyLimits
    overlay: str = ''

    def summary(self) -> str:
        """One line: PASS/FAIL with the figures."""
        figures = ('no board seen' if self.translation_mm is None else
                   f'board {self.translation_mm:.2f} mm / {self.rotation_deg:.3f} deg from the '
                   f'prediction (limits {self.limits.translation_mm:g} mm / '
                   f'{self.limits.rotation_deg:g} deg), reprojection {self.rms_px:.2f} px, '
                   f'{self.views_used}/{self.views} views')
        verdict = 'PASS' if self.passed else 'FAIL'
        return f'{self.camera}: {verdict}: {figures}' + \
            ('' if self.passed else ': ' + '; '.join(self.problems))


def predicted_board(calibration: CameraCalibration, board: BoardPlacement,
                    flange_in_base: Matrix) -> Matrix:
    """camera_T_board the stored calibration predicts with the flange at `flange_in_base`."""
    camera = calibration.extrinsics.pose
    if calibration.extrinsics.parent == 'flange':
        camera = flange_in_base @ camera
    board_in_base = board.pose if board.placement == 'fixture' else flange_in_base @ board.pose
    return invert(camera) @ board_in_base


def _angle_deg(a: Matrix, b: Matrix) -> float:
    return math.degrees(float(np.linalg.norm(rotation_vector(a[:3, :3].T @ b[:3, :3]))))


def measure_view(view: BoardView, calibration: CameraCalibration, board: BoardPlacement,
                 flange_in_base: Matrix) -> tuple[ViewResult, Matrix, npt.NDArray[np.float64]]:
    """A view's figures, the observed camera_T_board and the predicted corner pixels."""
    intrinsics = calibration.intrinsics
    observed = board_pose(view, intrinsics)
    k, d = intrinsics.camera_matrix(), intrinsics.distortion()
    reprojected, _ = cv2.projectPoints(view.object_points, observed[:3, :3], observed[:3, 3],
                                       k, d)
    rms = float(np.sqrt(np.mean(np.sum((reprojected.reshape(-1, 2) - view.pixels) ** 2, 1))))
    predicted = predicted_board(calibration, board, flange_in_base)
    centre = np.append(view.object_points.mean(axis=0), 1.0)
    offset_m = np.linalg.norm((predicted @ centre)[:3] - (observed @ centre)[:3])
    corners, _ = cv2.projectPoints(view.object_points, predicted[:3, :3], predicted[:3, 3],
                                   k, d)
    predicted_px = np.asarray(corners, dtype=np.float64).reshape(-1, 2)
    corner_error = float(np.mean(np.linalg.norm(predicted_px - view.pixels, axis=1)))
    # The camera's apparent move in its own frame: actual = stored @ apparent, so
    # observed = inv(apparent) @ predicted.
    apparent = predicted @ invert(observed)
    result = ViewResult(len(view), rms, float(offset_m * 1e3), _angle_deg(predicted, observed),
                        corner_error, float(np.linalg.norm(apparent[:3, 3]) * 1e3),
                        _angle_deg(np.eye(4), apparent))
    return result, observed, predicted_px


Drawn = list[tuple[Image, BoardView | None, npt.NDArray[np.float64] | None]]
FIGURES = ('rms_px', 'translation_mm', 'rotation_deg', 'corner_error_px', 'shift_mm',
           'turn_deg')


def verify_camera(calibration: CameraCalibration, board: BoardPlacement,
                  views: Sequence[CameraView], limits: VerifyLimits, *,
                  serial: str = '') -> tuple[CameraCheck, Drawn]:
    """Check one camera.

    Also returns, per view, (image, detection, predicted corners) for the overlay. `serial`
    is the live camera's serial ('' when the driver reports none).
    """
    stored = calibration.intrinsics
    calibrated = (stored.width, stored.height)
    problems: list[str] = []
    if serial and calibration.serial and serial != calibration.serial:
        problems.append(f'camera serial {serial} is not the calibrated {calibration.serial}: '
                        'another camera is plugged in here; swap it back or recalibrate')
    resolution: tuple[int, int] | None = None
    results: list[ViewResult] = []
    drawn: Drawn = []
    for view in views:
        image = np.asarray(view.image)
        resolution = (int(image.shape[1]), int(image.shape[0]))
        if resolution != calibrated:
            drawn.append((image, None, None))
            continue
        found = detect_board(image, board.board, encoding=view.encoding,
                             min_corners=limits.min_corners, source=calibration.name)
        if found is None:
            drawn.append((image, None, None))
            continue
        result, _, corners = measure_view(found, calibration, board, view.flange_in_base)
        results.append(result)
        drawn.append((image, found, corners))
    if resolution is not None and resolution != calibrated:
        problems.append(f'images are {resolution[0]}x{resolution[1]}, the calibration is for '
                        f'{calibrated[0]}x{calibrated[1]}: set the camera mode back or '
                        'recalibrate the intrinsics')
    figures = {key: float(np.median([getattr(r, key) for r in results])) for key in FIGURES
               } if results else {}
    if not views:
        problems.append(f'no images captured from {calibration.name}: is its topic '
                        'publishing?')
    elif len(results) < limits.min_views and resolution == calibrated:
        problems.append(f'the board was found in {len(results)} of {len(views)} views (at '
                        f'least {limits.min_views} with {limits.min_corners} corners needed): '
                        f'is the board at its {board.placement} and in view, lit, in focus?')
    if figures:
        rms, offset, turn = (figures['rms_px'], figures['translation_mm'],
                             figures['rotation_deg'])
        if rms > limits.reprojection_rms_px:
            problems.append(f'reprojection error {rms:.2f} px with the stored intrinsics '
                            f'(limit {limits.reprojection_rms_px:g} px): the lens or camera '
                            'mode changed; recalibrate the intrinsics')
        if offset > limits.translation_mm or turn > limits.rotation_deg:
            problems.append(
                f'the board is {offset:.1f} mm / {turn:.2f} deg from where the stored '
                f'calibration predicts it (limits {limits.translation_mm:g} mm / '
                f'{limits.rotation_deg:g} deg): the camera seems to have moved '
                f'{figures["shift_mm"]:.1f} mm and turned {figures["turn_deg"]:.2f} deg since '
                f'{calibration.extrinsics.calibrated_at} (or the board is off its '
                f'{board.placement}); put it back or recalibrate with `visuomotor calibrate '
                'handeye`')
    check = CameraCheck(
        calibration.name, not problems, tuple(problems), len(views), len(results), resolution,
        calibrated, serial, calibration.serial, rms_px=figures.get('rms_px'),
        translation_mm=figures.get('translation_mm'), rotation_deg=figures.get('rotation_deg'),
        corner_error_px=figures.get('corner_error_px'), shift_mm=figures.get('shift_mm'),
        turn_deg=figures.get('turn_deg'), limits=limits)
    return check, drawn


@dataclass(frozen=True)
class VerificationRecord:
    """What one verification found; saved as JSON beside the rig's calibration.

    Attributes:
        id: `<rig>-<UTC time>`, unique per rig folder.
        rig: rig name (the calibration folder's name).
        created_at: ISO time (UTC).
        passed: every camera passed.
        cameras: per camera, its check.
        calibration_files: hash of every calibration file used (the gate refuses a record
            when these files changed after it).
        software, host: who wrote it.
    """

    id: str
    rig: str
    created_at: str
    passed: bool
    cameras: tuple[CameraCheck, ...]
    calibration_files: Mapping[str, str]
    software: str
    host: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out['cameras'] = {c.camera: asdict(c) for c in self.cameras}
        return out

    def failures(self) -> list[str]:
        """`camera: problem` for every failing camera."""
        return [f'{c.camera}: {p}' for c in self.cameras for p in c.problems]


def new_record(rig: RigCalibration, checks: Sequence[CameraCheck],
               now: datetime.datetime) -> VerificationRecord:
    """A record of `checks` at `now` (aware UTC time)."""
    if now.tzinfo is None:
        raise CalibrationError('the verification time must be timezone-aware (UTC)')
    stamp = now.astimezone(datetime.UTC)
    record_id = f'{rig.rig}-{stamp.strftime("%Y%m%dT%H%M%S")}Z'
    suffix = 1
    while (rig.records / f'{record_id}.json').exists():
        suffix += 1
        record_id = f'{rig.rig}-{stamp.strftime("%Y%m%dT%H%M%S")}Z-{suffix}'
    return VerificationRecord(record_id, rig.rig, stamp.isoformat(timespec='milliseconds'),
                              bool(checks) and all(c.passed for c in checks), tuple(checks),
                              dict(rig.files), f'visuomotor {visuomotor.__version__}',
                              platform.node())


def verify_rig(rig: RigCalibration, views: Mapping[str, Sequence[CameraView]],
               now: datetime.datetime, *, settings: VerifySettings | None = None,
               serials: Mapping[str, str] | None = None
               ) -> tuple[VerificationRecord, dict[str, Drawn]]:
    """Check every calibrated camera of the rig on its views; a camera without views fails.

    Returns the record (not yet written: `report.write_record`) and, per camera, what to
    draw on its overlay.
    """
    settings = settings or load_settings(rig.folder)
    checks, drawn = [], {}
    for name, calibration in rig.cameras.items():
        check, pictures = verify_camera(calibration, rig.board, list(views.get(name, ())),
                                        settings.limits(name),
                                        serial=(serials or {}).get(name, ''))
        checks.append(check)
        drawn[name] = pictures
    return new_record(rig, checks, now), drawn
