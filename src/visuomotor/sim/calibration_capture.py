"""Calibration views from the twin, and verification of a rig calibration on it.

The same scene and cameras as the demo, at a resolution fit for calibration, with the
ChArUco board where a rig's board.yaml says it is.

The twin's cameras render at the policy's 96x96 in the deploy graph; a real camera streams
at 640x480 (or more) and the preprocessing shrinks it. Calibration and verification run at
the camera's streaming resolution, so the twin renders them at `CALIBRATION_RESOLUTION`,
with the intrinsics scaled (`SceneConfig.with_resolution`).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from visuomotor.calibration.charuco import CalibrationError
from visuomotor.calibration.report import write_record
from visuomotor.calibration.rig_files import BoardPlacement, load_rig_calibration
from visuomotor.calibration.verify import (
    CameraView,
    VerificationRecord,
    load_settings,
    verify_rig,
)
from visuomotor.robots.kinematics import flange_pose
from visuomotor.robots.transforms import rpy_from_matrix
from visuomotor.sim.config import BoardConfig, SceneConfig, load_scene
from visuomotor.sim.twin import Twin

CALIBRATION_RESOLUTION = (640, 480)
#: Where the cube waits while the board is looked at (off the board, out of the way).
CUBE_PARKED_XY = (0.05, 0.5)


def with_board(scene: SceneConfig, placement: BoardPlacement,
               resolution: tuple[int, int] | None = CALIBRATION_RESOLUTION) -> SceneConfig:
    """`scene` at `resolution` (None: as it is) with the board placed as `placement` says.

    A fixture pose is in the robot base frame, a gripper pose in the flange frame.
    """
    pose = placement.pose
    mount = 'hand' if placement.placement == 'gripper' else 'world'
    if mount == 'world':
        pose = scene.base_pose() @ pose
    board = BoardConfig(mount=mount, xyz_m=tuple(float(v) for v in pose[:3, 3]),  # type: ignore[arg-type]
                        rpy_deg=tuple(math.degrees(a) for a in rpy_from_matrix(pose)),  # type: ignore[arg-type]
                        squares=placement.board.squares, square_m=placement.board.square_m,
                        marker_m=placement.board.marker_m,
                        dictionary=placement.board.dictionary)
    resized = scene if resolution is None else scene.with_resolution(*resolution)
    return dataclasses.replace(resized, board=board)


def capture(twin: Twin, poses: Sequence[npt.ArrayLike], cameras: Sequence[str]
            ) -> dict[str, list[CameraView]]:
    """Views of `cameras` from each joint pose.

    The arm is put there at rest, every camera renders, and each image is paired with the
    flange pose from forward kinematics of the joints as measured.
    """
    views: dict[str, list[CameraView]] = {name: [] for name in cameras}
    for q in poses:
        twin.reset(arm_positions=[float(v) for v in np.asarray(q, dtype=np.float64)])
        twin.set_object_pose(*CUBE_PARKED_XY, 0.0)
        flange = flange_pose(twin.robot, twin.arm_positions())
        for name, image in twin.render(list(cameras)).items():
            views[name].append(CameraView(image, flange))
    return views


def twin_serial(robot: str, camera: str) -> str:
    """The serial a twin camera reports (calibrations store it, verification compares it).

    Every twin scene of a robot has the same cameras, so the serial names the robot.
    """
    return f'twin:{robot}:{camera}'


def verify_on_twin(calibration: str | Path, scene_name: str, now: datetime.datetime, *,
                   moves: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None
                   ) -> VerificationRecord:
    """Verify a rig calibration of the twin of `scene_name` and write its record.

    Args:
        calibration: the rig folder (or a name under calibration/).
        scene_name: the twin scene whose cameras are checked.
        now: the record's time (aware).
        moves: camera -> (shift_m, rotate_deg) in its optical frame: knock a camera out of
            place before the check (`Twin.perturb_camera`), as a bumped camera would be.
    """
    rig = load_rig_calibration(calibration)
    settings = load_settings(rig.folder)
    if not settings.poses_rad:
        raise CalibrationError(f'{rig.folder / "verification.yaml"} lists no poses_rad: add '
                               'the joint positions to capture the verification views from '
                               '(`visuomotor calibrate twin` writes them for the twin)')
    scene = with_board(load_scene(scene_name), rig.board)
    with Twin(scene) as twin:
        for camera, (shift, rotate) in (moves or {}).items():
            twin.perturb_camera(camera, shift, rotate)
        views = capture(twin, [np.array(p) for p in settings.poses_rad], list(rig.cameras))
    serials = {name: twin_serial(scene.robot.name, name) for name in rig.cameras}
    record, drawn = verify_rig(rig, views, now, settings=settings, serials=serials)
    return write_record(record, rig.records, drawn)
