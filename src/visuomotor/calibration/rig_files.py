"""A rig's calibration folder, `calibration/<rig>/`: what is stored and how it is read.

    <camera>.yaml              intrinsics: ROS camera_info YAML + camera_serial, RMS, time
    <camera>_extrinsics.yaml   where the camera sits: parent frame (base or flange) and pose
    board.yaml                 the ChArUco board used for checks and where it sits: on a
                               fixture in the cell (pose in the base frame) or on the gripper
                               (pose in the flange frame)
    verification.yaml          optional: per-rig thresholds (see `visuomotor.calibration.verify`)
    verification/              records written by each verification (see `verify`, `gate`)

Poses are stored as `xyz_m` and `quaternion_xyzw` (ROS's order, as tf2's static transform
publisher takes them), of the child frame in the parent frame. Every reader raises
`CalibrationFileError` naming the file, the field and the fix; a crash while writing never
leaves half a file (write to a temporary name, then rename).
"""

from __future__ import annotations

import datetime
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import visuomotor
from visuomotor.calibration.charuco import CalibrationError
from visuomotor.cameras.intrinsics import CameraIntrinsics
from visuomotor.config_fields import FieldReader
from visuomotor.errors import CameraInfoError, FieldError
from visuomotor.paths import share_dir
from visuomotor.robots.transforms import Matrix, matrix_from_quat, quat_from_matrix
from visuomotor.sim.config import BoardConfig

PARENTS = ('base', 'flange')
PLACEMENTS = ('fixture', 'gripper')
RECORDS = 'verification'


class CalibrationFileError(CalibrationError, FieldError):
    """A calibration file is missing, unreadable or invalid (the field names the file)."""


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write `data` (text as UTF-8) to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_bytes(data.encode('utf-8') if isinstance(data, str) else data)
    tmp.replace(path)
    return path


def pose_fields(pose: Matrix) -> dict[str, list[float]]:
    """`xyz_m` and `quaternion_xyzw` of a 4x4 pose."""
    w, x, y, z = quat_from_matrix(pose)
    return {'xyz_m': [round(float(v), 9) for v in pose[:3, 3]],
            'quaternion_xyzw': [round(float(v), 12) for v in (x, y, z, w)]}


def _pose(reader: FieldReader) -> Matrix:
    x, y, z, w = reader.numbers('quaternion_xyzw', 4)
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if abs(norm - 1.0) > 1e-3:
        raise reader.fail('quaternion_xyzw', f'must be a unit quaternion, its norm is '
                          f'{norm:.4f}')
    pose = np.eye(4)
    pose[:3, :3] = matrix_from_quat((w, x, y, z))
    pose[:3, 3] = reader.numbers('xyz_m', 3)
    return pose


def _read(path: Path, what: str) -> FieldReader:
    fix = {'intrinsics': 'visuomotor calibrate intrinsics',
           'extrinsics': 'visuomotor calibrate handeye',
           'board': 'visuomotor calibrate handeye (or write the fixture you measured)'}
    if not path.is_file():
        raise CalibrationFileError(str(path), f'no {what} file; create it with '
                                   f'`{fix.get(what, "visuomotor calibrate")}`')
    try:
        data = yaml.safe_load(path.read_text(encoding='utf-8'))
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationFileError(str(path), f'cannot be read ({exc})') from None
    except yaml.YAMLError as exc:
        where = ' '.join(str(exc).split())
        raise CalibrationFileError(str(path), f'is not valid YAML ({where}); restore it from '
                                   'version control or recalibrate') from None
    return FieldReader(data, str(path), CalibrationFileError)


def _stamp(now: datetime.datetime | None) -> str:
    return (now or datetime.datetime.now(datetime.UTC)).isoformat(timespec='seconds')


@dataclass(frozen=True)
class CameraExtrinsics:
    """Where a camera's optical frame sits.

    Attributes:
        camera: camera name.
        parent: `flange` (a wrist camera, moves with the arm) or `base` (fixed in the cell).
        pose: parent_T_camera optical frame (z forward, x right, y down).
        method: how it was found (`eye_in_hand`, `eye_to_hand`, `fixture`, `measured`).
        views: views it was solved from (0: entered by hand).
        residual_mm, residual_deg: median per-view consistency of the solve.
        calibrated_at: ISO time.
    """

    camera: str
    parent: str
    pose: Matrix
    method: str = 'measured'
    views: int = 0
    residual_mm: float = 0.0
    residual_deg: float = 0.0
    calibrated_at: str = ''


@dataclass(frozen=True)
class BoardPlacement:
    """The verification board and where it sits.

    Attributes:
        board: its geometry (squares, sizes, aruco dictionary).
        placement: `fixture` (pose = base_T_board) or `gripper` (pose = flange_T_board).
        pose: the board frame in the base or flange frame.
        measured_by: how the pose was found (a calibration, or a hand measurement).
    """

    board: BoardConfig
    placement: str
    pose: Matrix
    measured_by: str = ''


def extrinsics_path(folder: Path, camera: str) -> Path:
    """Where a camera's extrinsics live in a rig folder."""
    return folder / f'{camera}_extrinsics.yaml'


def save_extrinsics(extrinsics: CameraExtrinsics, folder: str | Path, *,
                    now: datetime.datetime | None = None) -> Path:
    """Write `<camera>_extrinsics.yaml`."""
    if extrinsics.parent not in PARENTS:
        raise CalibrationError(f'extrinsics parent {extrinsics.parent!r} is not one of '
                               f'{list(PARENTS)}')
    data: dict[str, Any] = {'camera': extrinsics.camera, 'parent_frame': extrinsics.parent,
                            **pose_fields(extrinsics.pose), 'method': extrinsics.method,
                            'views': extrinsics.views,
                            'residual_mm': round(extrinsics.residual_mm, 4),
                            'residual_deg': round(extrinsics.residual_deg, 5),
                            'calibrated_at': extrinsics.calibrated_at or _stamp(now),
                            'software': f'visuomotor {visuomotor.__version__}'}
    return write_atomic(extrinsics_path(Path(folder), extrinsics.camera),
                        yaml.safe_dump(data, sort_keys=False))


def load_extrinsics(folder: str | Path, camera: str) -> CameraExtrinsics:
    """Read `<camera>_extrinsics.yaml`."""
    reader = _read(extrinsics_path(Path(folder), camera), 'extrinsics')
    reader.unknown({'camera', 'parent_frame', 'xyz_m', 'quaternion_xyzw', 'method', 'views',
                    'residual_mm', 'residual_deg', 'calibrated_at', 'software'})
    name = reader.text('camera')
    if name != camera:
        raise reader.fail('camera', f'is {name!r}, but the file is for {camera!r}: rename '
                          'the file or fix the name')
    return CameraExtrinsics(
        camera, reader.text('parent_frame', choices=PARENTS), _pose(reader),
        reader.text('method', 'measured'), reader.integer('views', 0, minimum=0),
        reader.number('residual_mm', 0.0, minimum=0.0),
        reader.number('residual_deg', 0.0, minimum=0.0), reader.text('calibrated_at', '-'))


def save_board(placement: BoardPlacement, folder: str | Path) -> Path:
    """Write `board.yaml`."""
    if placement.placement not in PLACEMENTS:
        raise CalibrationError(f'board placement {placement.placement!r} is not one of '
                               f'{list(PLACEMENTS)}')
    board = placement.board
    data: dict[str, Any] = {
        'squares': list(board.squares), 'square_m': board.square_m,
        'marker_m': board.marker_m, 'dictionary': board.dictionary,
        'placement': placement.placement, **pose_fields(placement.pose),
        'measured_by': placement.measured_by or 'hand measurement'}
    return write_atomic(Path(folder) / 'board.yaml', yaml.safe_dump(data, sort_keys=False))


def load_board(folder: str | Path) -> BoardPlacement:
    """Read `board.yaml`."""
    reader = _read(Path(folder) / 'board.yaml', 'board')
    reader.unknown({'squares', 'square_m', 'marker_m', 'dictionary', 'placement', 'xyz_m',
                    'quaternion_xyzw', 'measured_by'})
    squares = reader.numbers('squares', 2)
    if any(s != int(s) or s < 3 for s in squares):
        raise reader.fail('squares', f'must be two integers >= 3, got {list(squares)}')
    square, marker = reader.number('square_m', positive=True), \
        reader.number('marker_m', positive=True)
    if marker >= square:
        raise reader.fail('marker_m', f'must be smaller than square_m ({marker} >= {square})')
    board = BoardConfig(squares=(int(squares[0]), int(squares[1])), square_m=square,
                        marker_m=marker, dictionary=reader.text('dictionary'))
    return BoardPlacement(board, reader.text('placement', choices=PLACEMENTS), _pose(reader),
                          reader.text('measured_by', '-'))


@dataclass(frozen=True)
class CameraCalibration:
    """One camera's stored calibration."""

    name: str
    intrinsics: CameraIntrinsics
    serial: str
    rms_px: float
    extrinsics: CameraExtrinsics


@dataclass(frozen=True)
class RigCalibration:
    """Everything stored for a rig: cameras, board, and the hash of every file read."""

    rig: str
    folder: Path
    cameras: dict[str, CameraCalibration]
    board: BoardPlacement
    files: dict[str, str]

    @property
    def records(self) -> Path:
        """Where verification records are written."""
        return self.folder / RECORDS


def calibration_folder(name_or_path: str | Path) -> Path:
    """A rig calibration folder: a path, or a rig name under the share's calibration/."""
    text = str(name_or_path)
    if not text:
        raise CalibrationError('no rig calibration given: name the rig (a folder under '
                               'calibration/) or give its path')
    path = Path(text).expanduser()
    if path.is_dir() or '/' in text:
        return path
    return share_dir() / 'calibration' / text


def _intrinsics(folder: Path, camera: str) -> tuple[CameraIntrinsics, str, float]:
    path = folder / f'{camera}.yaml'
    reader = _read(path, 'intrinsics')
    try:
        intrinsics = CameraIntrinsics.from_yaml_dict(reader.data, source=str(path))
    except CameraInfoError as exc:
        raise CalibrationFileError(exc.field, str(exc).split(': ', 1)[-1] + '; recalibrate '
                                   'with `visuomotor calibrate intrinsics`') from None
    serial = reader.data.get('camera_serial')
    return (intrinsics, str(serial) if serial else '',
            reader.number('reprojection_rms_px', 0.0, minimum=0.0))


def file_hash(path: Path) -> str:
    """sha256 of a file's bytes (first 16 hex digits)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def load_rig_calibration(name_or_path: str | Path, cameras: list[str] | None = None
                         ) -> RigCalibration:
    """Read a rig's calibration folder.

    Args:
        name_or_path: the folder, or a rig name under calibration/.
        cameras: the cameras to read; None reads every `<camera>_extrinsics.yaml` present.

    Raises:
        CalibrationFileError: a missing or invalid file, named with the fix.
    """
    folder = calibration_folder(name_or_path)
    if not folder.is_dir():
        raise CalibrationFileError(str(folder), 'no such calibration folder: calibrate the '
                                   'rig first (`visuomotor calibrate intrinsics|handeye`)')
    names = cameras if cameras is not None else sorted(
        p.name[:-len('_extrinsics.yaml')] for p in folder.glob('*_extrinsics.yaml'))
    if not names:
        raise CalibrationFileError(str(folder), 'holds no <camera>_extrinsics.yaml: run '
                                   '`visuomotor calibrate handeye` for each camera')
    result: dict[str, CameraCalibration] = {}
    files: dict[str, str] = {}
    for name in names:
        intrinsics, serial, rms = _intrinsics(folder, name)
        result[name] = CameraCalibration(name, intrinsics, serial, rms,
                                         load_extrinsics(folder, name))
        for path in (folder / f'{name}.yaml', extrinsics_path(folder, name)):
            files[path.name] = file_hash(path)
    board = load_board(folder)
    files['board.yaml'] = file_hash(folder / 'board.yaml')
    return RigCalibration(folder.resolve().name, folder, result, board, files)
