"""Hand-eye calibration: against the twin's ground truth (the robot moves through IK poses,
MuJoCo renders the ChArUco board, OpenCV finds it, and the solver must put the wrist camera
where the scene file mounted it, within 1 mm and 0.2 degrees), and exactly on noise-free
synthetic views for both set-ups."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from visuomotor.calibration.charuco import CalibrationError, detect_board
from visuomotor.calibration.handeye import board_pose, calibrate_hand_eye, solve_ax_xb
from visuomotor.robots.ik import solve_ik
from visuomotor.robots.kinematics import flange_pose
from visuomotor.robots.transforms import (
    invert,
    rot_x,
    rot_y,
    rot_z,
    rotation_from_vector,
)
from visuomotor.sim.board import board_size_m
from visuomotor.sim.calibrate_twin import pose_error
from visuomotor.sim.config import BoardConfig, load_scene
from visuomotor.sim.twin import Twin

Matrix = np.ndarray
TABLE_BOARD = BoardConfig(xyz_m=(0.45, 0.1, 0.002), squares=(5, 7), square_m=0.04,
                          marker_m=0.03)


def eye_in_hand_views(twin: Twin, count: int, seed: int) -> tuple[list[Matrix], list[Matrix]]:
    """Hand poses above the table board, tilted up to ~30 degrees, the wrist camera on it."""
    intrinsics = twin.camera_intrinsics('wrist_camera')
    pose = twin.body_pose('board')
    width, height = board_size_m(TABLE_BOARD)
    centre = invert(twin.base_pose) @ (pose @ np.array([width / 2, height / 2, 0.0, 1.0]))
    rng = np.random.default_rng(seed)
    q = np.array(twin.robot.home_rad)
    flanges, boards = [], []
    for _ in range(count):
        target = rot_z(rng.uniform(-0.6, 0.6)) @ rot_x(math.pi) @ \
            rot_x(rng.uniform(-0.5, 0.5)) @ rot_y(rng.uniform(-0.5, 0.5))
        target[:3, 3] = centre[:3] + (rng.uniform(-0.12, 0.0), rng.uniform(-0.08, 0.08),
                                      rng.uniform(0.25, 0.38))
        result = solve_ik(twin.robot, target, q)
        if not result.converged:
            continue
        twin.reset(arm_positions=result.q)
        twin.set_object_pose(0.05, 0.5, 0.0)
        view = detect_board(twin.render(['wrist_camera'])['wrist_camera'], TABLE_BOARD)
        if view is not None and len(view) >= 12:
            flanges.append(flange_pose(twin.robot, twin.arm_positions()))
            boards.append(board_pose(view, intrinsics))
    return flanges, boards


@pytest.fixture(scope='module')
def wrist() -> tuple[Matrix, list[Matrix], list[Matrix]]:
    """(true flange_T_camera, robot poses, board poses) of the FR3 wrist camera."""
    scene = dataclasses.replace(load_scene('fr3').with_resolution(640, 480), board=TABLE_BOARD)
    with Twin(scene) as twin:
        flanges, boards = eye_in_hand_views(twin, 24, seed=1)
        truth = twin.camera_pose_nominal('wrist_camera')
    assert len(flanges) >= 20
    return truth, flanges, boards


def test_eye_in_hand_recovers_the_wrist_camera(
        wrist: tuple[Matrix, list[Matrix], list[Matrix]]) -> None:
    truth, flanges, boards = wrist
    result = calibrate_hand_eye('eye_in_hand', flanges, boards)
    millimetres, degrees = pose_error(result.camera, truth)
    assert millimetres < 1.0 and degrees < 0.2, result.describe()
    assert np.median(result.translation_mm) < 1.0 and np.median(result.rotation_deg) < 0.2
    assert result.views == len(flanges)


def random_pose(rng: np.random.Generator, spread: float = 1.0) -> Matrix:
    pose = np.eye(4)
    pose[:3, :3] = rotation_from_vector(rng.uniform(-spread, spread, 3))
    pose[:3, 3] = rng.uniform(-0.3, 0.3, 3)
    return pose


@pytest.mark.parametrize('kind', ['eye_in_hand', 'eye_to_hand'])
def test_both_set_ups_are_exact_on_noise_free_views(kind: str) -> None:
    """Eye-in-hand: board fixed in the base, camera on the flange. Eye-to-hand: camera fixed
    in the base, board on the flange. The solver returns the camera and the board."""
    rng = np.random.default_rng(5)
    camera, board = random_pose(rng), random_pose(rng)
    flanges = [random_pose(rng, 0.6) for _ in range(8)]
    if kind == 'eye_in_hand':  # base_T_board = flange @ camera @ camera_T_board
        seen = [invert(f @ camera) @ board for f in flanges]
    else:  # base_T_camera @ camera_T_board = flange @ flange_T_board
        seen = [invert(camera) @ f @ board for f in flanges]
    result = calibrate_hand_eye(kind, flanges, seen)
    np.testing.assert_allclose(result.camera, camera, atol=1e-9)
    np.testing.assert_allclose(result.board, board, atol=1e-9)
    assert max(result.translation_mm) < 1e-6 and max(result.rotation_deg) < 1e-6


def test_the_solver_is_exact_on_noise_free_motions() -> None:
    rng = np.random.default_rng(0)
    x = rot_z(0.3) @ rot_x(-0.7)
    x[:3, 3] = (0.05, -0.02, 0.1)
    a, b = [], []
    for _ in range(6):
        motion = np.eye(4)
        motion[:3, :3] = rotation_from_vector(rng.uniform(-1.0, 1.0, 3))
        motion[:3, 3] = rng.uniform(-0.2, 0.2, 3)
        a.append(motion)
        b.append(invert(x) @ motion @ x)
    np.testing.assert_allclose(solve_ax_xb(a, b), x, atol=1e-9)


def test_bad_hand_eye_inputs_are_refused_by_name(
        wrist: tuple[Matrix, list[Matrix], list[Matrix]]) -> None:
    _, flanges, boards = wrist
    with pytest.raises(CalibrationError, match="kind 'eye_on_hand' is not one of"):
        calibrate_hand_eye('eye_on_hand', flanges, boards)
    with pytest.raises(CalibrationError, match='robot poses for'):
        calibrate_hand_eye('eye_in_hand', flanges[:5], boards[:6])
    with pytest.raises(CalibrationError, match='3 views; at least 5 are needed'):
        calibrate_hand_eye('eye_in_hand', flanges[:3], boards[:3])
    still = [flanges[0]] * 6
    with pytest.raises(CalibrationError, match='tilt the hand by 15-30 degrees'):
        calibrate_hand_eye('eye_in_hand', still, boards[:6])
