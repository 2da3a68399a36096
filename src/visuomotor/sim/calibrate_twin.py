"""Calibrate the twin's cameras the way a real rig is calibrated, and write the rig folder.

1. A ChArUco board is fixed on the table (`TWIN_BOARD`, its true pose known only to the sim).
2. The robot moves the wrist camera through poses above it (`poses_above`); those views
   give the wrist camera's intrinsics, then its hand-eye calibration (eye-in-hand), which
   also measures where the board sits in the robot base: the fixture pose.
3. The scene camera's intrinsics come from views of the board at many places and tilts (an
   operator walking a board through the image: here the twin moves the camera instead, the
   same geometry), its extrinsics from views of the fixture board with the arm out of the way.
4. Every file is written with the real writers: camera_info YAMLs, extrinsics, board.yaml.

The results are compared with the twin's ground truth by `truth_errors` (what the tests
and `visuomotor calibrate twin` report).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from visuomotor.calibration.charuco import BoardView, CalibrationError, detect_board
from visuomotor.calibration.handeye import (
    HandEyeCalibration,
    board_pose,
    calibrate_fixed_camera,
    calibrate_hand_eye,
)
from visuomotor.calibration.intrinsics import (
    IntrinsicCalibration,
    calibrate_intrinsics,
    save_intrinsics,
)
from visuomotor.calibration.poses import poses_above
from visuomotor.calibration.rig_files import (
    BoardPlacement,
    CameraExtrinsics,
    save_board,
    save_extrinsics,
    write_atomic,
)
from visuomotor.robots.description import RobotDescription
from visuomotor.robots.kinematics import flange_pose
from visuomotor.robots.transforms import Matrix, invert, rotation_vector
from visuomotor.sim.board import board_size_m
from visuomotor.sim.calibration_capture import (
    CALIBRATION_RESOLUTION,
    CUBE_PARKED_XY,
    twin_serial,
)
from visuomotor.sim.config import BoardConfig, load_scene, look_at
from visuomotor.sim.twin import Twin

#: The board on the twin's table: 5x7 squares of 6 cm (an A3 print), left of the cube's
#: spawn area; the scene camera sees it at a grazing 35 degrees, so the squares are large.
TWIN_BOARD = BoardConfig(xyz_m=(0.45, 0.1, 0.002), squares=(5, 7), square_m=0.06,
                         marker_m=0.045)
SCENE_TILTS_DEG = (0, 25, 25, 25, 25, 35, 35, 35, 35, 10, 10, 10, 10, 20, 20, 20)


@dataclass(frozen=True)
class TwinCalibration:
    """What calibrating the twin produced, and the truth to compare it with."""

    intrinsics: dict[str, IntrinsicCalibration]
    extrinsics: dict[str, HandEyeCalibration]
    truth: dict[str, Matrix]
    board_truth: Matrix
    files: list[Path]


def pose_error(solved: Matrix, truth: Matrix) -> tuple[float, float]:
    """(mm, degrees) between two poses."""
    return (float(np.linalg.norm(solved[:3, 3] - truth[:3, 3]) * 1e3),
            math.degrees(float(np.linalg.norm(rotation_vector(truth[:3, :3].T
                                                              @ solved[:3, :3])))))


def _board_centre(twin: Twin) -> Matrix:
    pose = twin.world_to_base(twin.body_pose('board'))
    width, height = board_size_m(twin.config.board or TWIN_BOARD)
    return np.asarray(pose @ np.array([width / 2, height / 2, 0.0, 1.0]))[:3]


def _operator_views(twin: Twin, camera: str, seed: int) -> list[BoardView]:
    """Views of the board from camera poses all around it (an operator moving the board)."""
    board = twin.config.board or TWIN_BOARD
    centre = twin.base_pose @ np.append(_board_centre(twin), 1.0)
    rng = np.random.default_rng(seed)
    twin.clear_perturbations()
    mounted = twin.camera_pose_world(camera)
    views = []
    for tilt_deg in SCENE_TILTS_DEG:
        tilt, azimuth = math.radians(tilt_deg), rng.uniform(0, 2 * math.pi)
        eye = centre[:3] + rng.uniform(0.55, 0.8) * np.array(
            [math.sin(tilt) * math.cos(azimuth), math.sin(tilt) * math.sin(azimuth),
             math.cos(tilt)])
        aim = centre[:3] + np.array([rng.uniform(-0.12, 0.12), rng.uniform(-0.1, 0.1), 0.0])
        up = (math.cos(azimuth + 1.0), math.sin(azimuth + 1.0), 0.0)
        delta = invert(mounted) @ look_at(tuple(eye), tuple(aim), up)
        rvec, _ = cv2.Rodrigues(delta[:3, :3])
        twin.perturb_camera(camera, tuple(delta[:3, 3]), tuple(np.degrees(rvec.ravel())))
        view = detect_board(twin.render([camera])[camera], board)
        if view is not None:
            views.append(view)
    twin.clear_perturbations()
    return views


def verification_yaml(robot: RobotDescription, board_in_base: Matrix, *, seed: int = 0) -> str:
    """A verification.yaml for a rig with a fixture board.

    Default limits and five poses: home (where a scene camera sees the board past the arm)
    and four above the board.
    """
    width, height = board_size_m(TWIN_BOARD)
    centre = board_in_base @ np.array([width / 2, height / 2, 0.0, 1.0])
    poses = [np.asarray(robot.home_rad)] + poses_above(
        robot, centre[:3], 4, seed=seed + 3, tilt_rad=0.25, spread_m=(0.05, 0.05))
    rows = '\n'.join(f'  - [{", ".join(f"{v:.4f}" for v in q)}]' for q in poses)
    return ('# Verification limits and views of this rig (visuomotor.calibration.verify).\n'
            '# The gate refuses a session whose newest record is older than max_age_h.\n'
            'max_age_h: 12\ntranslation_mm: 2.0\nrotation_deg: 0.5\n'
            'reprojection_rms_px: 1.0\n'
            '# Joint positions of the verification views: home (the scene camera sees the\n'
            '# board past the arm), then four above the board for the wrist camera.\n'
            f'poses_rad:\n{rows}\n')


def calibrate_twin(scene_name: str, out: Path, *, rig: str = '', seed: int = 0,
                   wrist: str = 'wrist_camera', scene_camera: str = 'scene_camera',
                   report: Callable[[str], None] = lambda _: None,
                   now: datetime.datetime | None = None) -> TwinCalibration:
    """Calibrate the twin of `scene_name` and write the rig folder `out`."""
    scene = dataclasses.replace(load_scene(scene_name).with_resolution(*CALIBRATION_RESOLUTION),
                                board=TWIN_BOARD)
    rig = rig or out.name
    files: list[Path] = []
    with Twin(scene) as twin:
        twin.set_object_pose(*CUBE_PARKED_XY, 0.0)
        board_truth = twin.world_to_base(twin.body_pose('board'))
        truth = {wrist: twin.camera_pose_nominal(wrist),
                 scene_camera: twin.world_to_base(twin.camera_pose_world(scene_camera))}
        # 1. The wrist camera: the robot moves it over the board.
        poses = poses_above(twin.robot, _board_centre(twin), 28, seed=seed,
                            spread_m=(0.1, 0.1), tilt_rad=0.45)
        flanges, views = [], []
        for q in poses:
            twin.reset(arm_positions=[float(v) for v in q])
            twin.set_object_pose(*CUBE_PARKED_XY, 0.0)
            view = detect_board(twin.render([wrist])[wrist], TWIN_BOARD)
            if view is not None and len(view) >= 12:
                flanges.append(flange_pose(twin.robot, twin.arm_positions()))
                views.append(view)
        report(f'{wrist}: board found in {len(views)} of {len(poses)} robot poses')
        intrinsics = {wrist: calibrate_intrinsics(views, camera_name=wrist)}
        wrist_solve = calibrate_hand_eye('eye_in_hand', flanges, [
            board_pose(v, intrinsics[wrist].intrinsics) for v in views])
        # 2. The scene camera: intrinsics from an operator's board views, then the fixture.
        scene_views = _operator_views(twin, scene_camera, seed)
        report(f'{scene_camera}: {len(scene_views)} operator views')
        intrinsics[scene_camera] = calibrate_intrinsics(scene_views, camera_name=scene_camera)
        twin.reset()  # the arm at home, clear of the board
        twin.set_object_pose(*CUBE_PARKED_XY, 0.0)
        seen = detect_board(twin.render([scene_camera])[scene_camera], TWIN_BOARD)
        if seen is None:
            raise CalibrationError(f'{scene_camera} does not see the fixture board')
        # One view: the twin renders the same image every time (a real camera: average a few).
        fixed = calibrate_fixed_camera(wrist_solve.board, [
            board_pose(seen, intrinsics[scene_camera].intrinsics)])
    stamp = (now or datetime.datetime.now(datetime.UTC))
    for name, result in intrinsics.items():
        files.append(save_intrinsics(result, out / f'{name}.yaml',
                                     serial=twin_serial(scene.robot.name, name), now=stamp))
    extrinsics = {wrist: wrist_solve, scene_camera: fixed}
    for name, solve in extrinsics.items():
        files.append(save_extrinsics(CameraExtrinsics(
            name, 'flange' if solve.kind == 'eye_in_hand' else 'base', solve.camera,
            solve.kind, solve.views, float(np.median(solve.translation_mm)),
            float(np.median(solve.rotation_deg))), out, now=stamp))
    files.append(save_board(BoardPlacement(TWIN_BOARD, 'fixture', wrist_solve.board,
                                           f'{wrist} eye-in-hand calibration, '
                                           f'{wrist_solve.views} views'), out))
    settings = out / 'verification.yaml'
    if not settings.exists():
        files.append(write_atomic(settings, verification_yaml(
            scene.robot, wrist_solve.board, seed=seed)))
    return TwinCalibration(intrinsics, extrinsics, truth, board_truth, files)
