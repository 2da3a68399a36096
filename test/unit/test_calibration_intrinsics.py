"""Intrinsic calibration against the twin's ground truth: ChArUco views rendered by MuJoCo
from camera poses around the board, detected by OpenCV, fitted, saved as camera_info."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from visuomotor.calibration.charuco import BoardView, CalibrationError, detect_board
from visuomotor.calibration.intrinsics import Coverage, calibrate_intrinsics, save_intrinsics
from visuomotor.cameras.intrinsics import CameraIntrinsics, load_camera_info
from visuomotor.robots.transforms import invert
from visuomotor.sim.board import board_size_m
from visuomotor.sim.config import BoardConfig, load_scene, look_at
from visuomotor.sim.twin import Twin

BOARD = BoardConfig(xyz_m=(0.45, 0.1, 0.002), squares=(5, 7), square_m=0.06, marker_m=0.045)
CAMERA = 'scene_camera'
TILTS_DEG = (0, 25, 25, 25, 25, 35, 35, 35, 35, 10, 10, 10, 10, 20, 20, 20)


@pytest.fixture(scope='module')
def captured() -> Iterator[tuple[CameraIntrinsics, list[BoardView], list[np.ndarray]]]:
    """16 views of the table board from camera poses around it, as an operator would hold
    the board at different tilts and places in the image; and the camera's true intrinsics."""
    scene = dataclasses.replace(load_scene('fr3').with_resolution(640, 480), board=BOARD)
    with Twin(scene) as twin:
        twin.set_object_pose(0.05, 0.5, 0.0)  # the cube off the board
        truth = twin.camera_intrinsics(CAMERA)
        pose = twin.body_pose('board')
        width, height = board_size_m(BOARD)
        centre = pose[:3, :3] @ np.array([width / 2, height / 2, 0.0]) + pose[:3, 3]
        rng = np.random.default_rng(0)
        views, images = [], []
        for tilt_deg in TILTS_DEG:
            tilt, azimuth = math.radians(tilt_deg), rng.uniform(0, 2 * math.pi)
            eye = centre + rng.uniform(0.55, 0.8) * np.array(
                [math.sin(tilt) * math.cos(azimuth), math.sin(tilt) * math.sin(azimuth),
                 math.cos(tilt)])
            aim = centre + np.array([rng.uniform(-0.12, 0.12), rng.uniform(-0.1, 0.1), 0.0])
            up = (math.cos(azimuth + 1.0), math.sin(azimuth + 1.0), 0.0)
            delta = invert(twin.camera_pose_nominal(CAMERA)) @ look_at(tuple(eye), tuple(aim), up)
            rvec, _ = cv2.Rodrigues(delta[:3, :3])
            twin.perturb_camera(CAMERA, tuple(delta[:3, 3]), tuple(np.degrees(rvec.ravel())))
            image = twin.render([CAMERA])[CAMERA]
            view = detect_board(image, BOARD)
            assert view is not None, f'no board in the view tilted {tilt_deg} deg'
            views.append(view)
            images.append(image)
    yield truth, views, images


def test_intrinsics_are_recovered_from_the_views(
        captured: tuple[CameraIntrinsics, list[BoardView], list[np.ndarray]]) -> None:
    truth, views, _ = captured
    result = calibrate_intrinsics(views, camera_name=CAMERA)
    fit = result.intrinsics
    assert abs(fit.fx - truth.fx) / truth.fx < 0.005  # 0.5% of the focal length
    assert abs(fit.fy - truth.fy) / truth.fy < 0.005
    assert abs(fit.cx - truth.cx) < 1.0 and abs(fit.cy - truth.cy) < 1.0  # 1 px
    assert result.rms_px < 0.3 and max(result.view_rms_px) < 0.5
    assert result.views == 16 and result.corners == sum(len(v) for v in views)
    assert fit.distortion_model == 'plumb_bob' and len(fit.d) == 5
    assert (fit.width, fit.height) == (640, 480)


def test_the_rational_model_fits_eight_coefficients(
        captured: tuple[CameraIntrinsics, list[BoardView], list[np.ndarray]]) -> None:
    truth, views, _ = captured
    fit = calibrate_intrinsics(views, model='rational_polynomial').intrinsics
    assert fit.distortion_model == 'rational_polynomial' and len(fit.d) == 8
    assert abs(fit.fx - truth.fx) / truth.fx < 0.01


def test_coverage_says_what_is_still_missing(
        captured: tuple[CameraIntrinsics, list[BoardView], list[np.ndarray]]) -> None:
    truth, views, _ = captured
    coverage = Coverage(640, 480, truth.camera_matrix())
    assert coverage.missing()[0].startswith('board corners in the top-left, top, top-right')
    coverage.add(views[0])  # straight above the board
    first = coverage.missing()
    assert 'frontal' in coverage.tilts and not any('frontal' in m for m in first)
    assert any('tilted right' in m for m in first)
    for view in views[1:]:
        coverage.add(view)
    assert {'frontal', 'tilted right', 'tilted up'} <= coverage.tilts
    assert coverage.corners.sum() == sum(len(v) for v in views)
    assert coverage.describe().startswith('16 views; still missing: board corners in the ')
    with pytest.raises(CalibrationError, match='one camera mode per calibration'):
        coverage.add(dataclasses.replace(views[0], image_size=(1280, 720)))


def test_the_calibration_is_saved_as_camera_info_with_serial_and_rms(
        captured: tuple[CameraIntrinsics, list[BoardView], list[np.ndarray]],
        tmp_path: Path) -> None:
    _, views, _ = captured
    result = calibrate_intrinsics(views, camera_name=CAMERA)
    path = save_intrinsics(result, tmp_path / 'twin_fr3' / f'{CAMERA}.yaml', serial='TWIN-0001')
    assert load_camera_info(path) == result.intrinsics
    data = yaml.safe_load(path.read_text())
    assert data['camera_serial'] == 'TWIN-0001' and data['views'] == 16
    assert data['reprojection_rms_px'] == pytest.approx(result.rms_px, abs=1e-6)
    assert (data['image_width'], data['image_height']) == (640, 480)
    with pytest.raises(CalibrationError, match='the camera serial is empty'):
        save_intrinsics(result, path, serial='')


def test_too_few_views_and_mixed_resolutions_are_refused_by_name(
        captured: tuple[CameraIntrinsics, list[BoardView], list[np.ndarray]]) -> None:
    _, views, _ = captured
    with pytest.raises(CalibrationError, match='3 usable board views; at least 6 are needed'):
        calibrate_intrinsics(views[:3])
    mixed = [*views[:5], dataclasses.replace(views[5], image_size=(1280, 720))]
    with pytest.raises(CalibrationError, match='calibrate one camera mode at a time'):
        calibrate_intrinsics(mixed)
    with pytest.raises(CalibrationError, match="distortion model 'fisheye' is not one of"):
        calibrate_intrinsics(views, model='fisheye')


def test_detection_finds_nothing_on_a_blank_image_and_refuses_a_wrong_array(
        captured: tuple[CameraIntrinsics, list[BoardView], list[np.ndarray]]) -> None:
    _, views, images = captured
    assert detect_board(np.full((480, 640, 3), 128, np.uint8), BOARD) is None
    gray = cv2.cvtColor(images[0], cv2.COLOR_RGB2GRAY)
    view = detect_board(gray, BOARD)  # the same corners from the mono image
    assert view is not None and view.ids.tolist() == views[0].ids.tolist()
    np.testing.assert_allclose(view.pixels, views[0].pixels, atol=0.05)
    with pytest.raises(CalibrationError, match=r'scene: expected an 8-bit mono or rgb8 image'):
        detect_board(images[0].astype(np.float32), BOARD, source='scene')
