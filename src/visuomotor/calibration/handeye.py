"""Hand-eye calibration (pure): where a camera sits, from robot poses and board views.

Eye-in-hand (a wrist camera, the board fixed in the cell): the unknown is the camera's
optical frame in the flange frame, X = flange_T_camera; the board's pose in the robot base,
base_T_flange(i) @ X @ camera_T_board(i), is the same in every view.
Eye-to-hand (a scene camera, the board on the gripper): the unknown is the camera in the
robot base, X = base_T_camera; the board's pose in the flange,
inv(base_T_flange(i)) @ X @ camera_T_board(i), is the same in every view.

Both are A X = X B over pairs of views (Tsai and Lenz's formulation). The solver is Park and
Martin's (1994): the rotation from the rotation vectors of every pair by orthogonal
Procrustes, then the translation by linear least squares. OpenCV's `calibrateHandEye`
implements the same method, but the OpenCV 5.0.0 Python package installed here does not
expose it (opencv/opencv#29565, fixed after that release), so it is written out here.

Residuals: the constant pose computed from each view separately, against their mean (mm and
degrees): a camera that slipped, a bad view or wrong FK show up here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from visuomotor.calibration.charuco import BoardView, CalibrationError
from visuomotor.cameras.intrinsics import CameraIntrinsics
from visuomotor.robots.transforms import invert, rotation_vector

Matrix = npt.NDArray[np.float64]
KINDS = ('eye_in_hand', 'eye_to_hand')


def board_pose(view: BoardView, intrinsics: CameraIntrinsics) -> Matrix:
    """camera_T_board (4x4) from one view and the camera's intrinsics.

    Raises:
        CalibrationError: the view's resolution differs from the intrinsics', or no pose.
    """
    if view.image_size != (intrinsics.width, intrinsics.height):
        raise CalibrationError(f'a {view.image_size[0]}x{view.image_size[1]} view with '
                               f'{intrinsics.width}x{intrinsics.height} intrinsics: capture '
                               'at the calibrated resolution')
    ok, rvec, tvec = cv2.solvePnP(view.object_points, view.pixels, intrinsics.camera_matrix(),
                                  intrinsics.distortion(), flags=cv2.SOLVEPNP_IPPE)
    if not ok:
        raise CalibrationError('the board pose could not be solved from the view')
    pose = np.eye(4)
    pose[:3, :3] = cv2.Rodrigues(rvec)[0]
    pose[:3, 3] = np.asarray(tvec, dtype=np.float64).ravel()
    return pose


def solve_ax_xb(a: Sequence[Matrix], b: Sequence[Matrix]) -> Matrix:
    """X with A_k X = X B_k for every pair k (Park and Martin)."""
    alphas = np.array([rotation_vector(m[:3, :3]) for m in a])
    betas = np.array([rotation_vector(m[:3, :3]) for m in b])
    u, _, vt = np.linalg.svd(betas.T @ alphas)  # R_X beta ~ alpha (Kabsch)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    lhs = np.concatenate([m[:3, :3] - np.eye(3) for m in a])
    rhs = np.concatenate([rotation @ n[:3, 3] - m[:3, 3] for m, n in zip(a, b, strict=True)])
    t, *_ = np.linalg.lstsq(lhs, rhs, rcond=None)
    x = np.eye(4)
    x[:3, :3], x[:3, 3] = rotation, t
    return x


def _mean_pose(poses: Sequence[Matrix]) -> Matrix:
    u, _, vt = np.linalg.svd(sum(p[:3, :3] for p in poses))
    mean = np.eye(4)
    mean[:3, :3] = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
    mean[:3, 3] = np.mean([p[:3, 3] for p in poses], axis=0)
    return mean


@dataclass(frozen=True)
class HandEyeCalibration:
    """A solved camera pose and how consistent the views are with it.

    Attributes:
        kind: `eye_in_hand` (camera = flange_T_camera) or `eye_to_hand` (base_T_camera).
        camera: the camera's optical frame in the flange (eye-in-hand) or base frame.
        board: the board in the base (eye-in-hand) or flange frame (eye-to-hand).
        translation_mm, rotation_deg: per view, the board pose it implies against the mean.
    """

    kind: str
    camera: Matrix
    board: Matrix
    translation_mm: tuple[float, ...]
    rotation_deg: tuple[float, ...]

    @property
    def views(self) -> int:
        """Views used."""
        return len(self.translation_mm)

    def describe(self) -> str:
        """One line of residual statistics."""
        t, r = np.array(self.translation_mm), np.array(self.rotation_deg)
        return (f'{self.kind}, {self.views} views: board consistency median {np.median(t):.2f} '
                f'mm / {np.median(r):.3f} deg, worst {t.max():.2f} mm / {r.max():.3f} deg')


def calibrate_hand_eye(kind: str, flange_poses: Sequence[Matrix],
                       board_poses: Sequence[Matrix], *, min_views: int = 5
                       ) -> HandEyeCalibration:
    """Solve where the camera sits.

    Args:
        kind: `eye_in_hand` or `eye_to_hand`.
        flange_poses: base_T_flange of each view (forward kinematics of the measured joints).
        board_poses: camera_T_board of each view (`board_pose`).
        min_views: fewer views are refused.

    Raises:
        CalibrationError: an unknown kind, too few or mismatched views, or robot poses that
            barely rotate (the rotation is then unobservable).
    """
    if kind not in KINDS:
        raise CalibrationError(f'hand-eye kind {kind!r} is not one of {list(KINDS)}')
    if len(flange_poses) != len(board_poses):
        raise CalibrationError(f'{len(flange_poses)} robot poses for {len(board_poses)} board '
                               'views: give one robot pose per view')
    if len(board_poses) < min_views:
        raise CalibrationError(f'{len(board_poses)} views; at least {min_views} are needed, '
                               'from robot poses that differ in rotation about several axes')
    robot = [np.asarray(p, dtype=np.float64) for p in flange_poses]
    if kind == 'eye_to_hand':
        robot = [invert(p) for p in robot]  # the same equation with flange_T_base
    seen = [np.asarray(p, dtype=np.float64) for p in board_poses]
    a, b = [], []
    for i, j in itertools.combinations(range(len(robot)), 2):
        a.append(invert(robot[j]) @ robot[i])
        b.append(seen[j] @ invert(seen[i]))
    spread = max(np.linalg.norm(rotation_vector(m[:3, :3])) for m in a)
    if spread < math.radians(5.0):
        raise CalibrationError(f'the robot poses differ by at most {math.degrees(spread):.1f} '
                               'degrees of rotation: tilt the hand by 15-30 degrees about '
                               'different axes between views')
    x = solve_ax_xb(a, b)
    implied = [r @ x @ s for r, s in zip(robot, seen, strict=True)]
    board = _mean_pose(implied)
    translation = tuple(float(np.linalg.norm(p[:3, 3] - board[:3, 3]) * 1e3) for p in implied)
    rotation = tuple(float(np.degrees(np.linalg.norm(rotation_vector(
        board[:3, :3].T @ p[:3, :3])))) for p in implied)
    return HandEyeCalibration(kind, x, board, translation, rotation)


def calibrate_fixed_camera(board_in_base: Matrix, board_poses: Sequence[Matrix], *,
                           min_views: int = 1) -> HandEyeCalibration:
    """A camera fixed in the cell, from views of a board at a measured fixture.

    Every view gives base_T_camera = board_in_base @ inv(camera_T_board); the result is their
    mean, with each view's deviation from it as the residuals. The board pose usually comes
    from an eye-in-hand calibration (its `board`) or from measuring the fixture.
    """
    if len(board_poses) < min_views:
        raise CalibrationError(f'{len(board_poses)} views of the fixture board; at least '
                               f'{min_views} are needed')
    implied = [np.asarray(board_in_base) @ invert(np.asarray(p)) for p in board_poses]
    camera = _mean_pose(implied)
    translation = tuple(float(np.linalg.norm(p[:3, 3] - camera[:3, 3]) * 1e3) for p in implied)
    rotation = tuple(float(np.degrees(np.linalg.norm(rotation_vector(
        camera[:3, :3].T @ p[:3, :3])))) for p in implied)
    return HandEyeCalibration('fixture', camera, np.asarray(board_in_base), translation,
                              rotation)
