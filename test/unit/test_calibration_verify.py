"""Verification before a session, on the twin with ground truth: the committed twin rig
calibration passes on the unchanged twin and fails, naming the camera and the amount, when a
camera is moved 3 mm or turned 0.5 degrees; the record, overlays and report are written."""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from visuomotor.calibration.rig_files import load_rig_calibration
from visuomotor.calibration.verify import CameraView, load_settings, verify_camera
from visuomotor.paths import share_dir
from visuomotor.sim.calibrate_twin import calibrate_twin, pose_error
from visuomotor.sim.calibration_capture import capture, verify_on_twin, with_board
from visuomotor.sim.config import load_scene
from visuomotor.sim.twin import Twin

NOW = datetime.datetime(2026, 11, 22, 8, 0, tzinfo=datetime.UTC)


@pytest.fixture
def rig(tmp_path: Path) -> Path:
    """A copy of the package's twin rig calibration, without records."""
    folder = tmp_path / 'twin_fr3'
    shutil.copytree(share_dir() / 'calibration' / 'twin_fr3', folder,
                    ignore=shutil.ignore_patterns('verification'))
    return folder


def figure(message: str, unit: str) -> float:
    """The first '<number> <unit>' in a message."""
    match = re.search(rf'([0-9.]+) {unit}', message)
    assert match, message
    return float(match.group(1))


def test_the_unchanged_twin_passes_and_leaves_a_record_overlays_and_a_report(rig: Path) -> None:
    record = verify_on_twin(rig, 'fr3', NOW)
    assert record.passed, record.failures()
    for check in record.cameras:
        assert check.translation_mm is not None and check.translation_mm < 1.0
        assert check.rotation_deg is not None and check.rotation_deg < 0.3
        assert check.rms_px is not None and check.rms_px < 0.3
        assert check.views_used >= 4 and check.serial == check.calibrated_serial
        assert (rig / 'verification' / check.overlay).stat().st_size > 10_000
    saved = json.loads((rig / 'verification' / f'{record.id}.json').read_text())
    assert saved['passed'] is True and saved['rig'] == 'twin_fr3'
    assert saved['created_at'].startswith('2026-11-22T08:00:00')
    assert set(saved['cameras']) == {'scene_camera', 'wrist_camera'}
    assert set(saved['calibration_files']) == {
        'board.yaml', 'scene_camera.yaml', 'scene_camera_extrinsics.yaml', 'wrist_camera.yaml',
        'wrist_camera_extrinsics.yaml'}
    assert saved['software'].startswith('visuomotor ')
    report = (rig / 'verification' / f'{record.id}.html').read_text()
    assert 'PASSED' in report and 'wrist_camera' in report and '.png' in report


@pytest.mark.parametrize(('camera', 'shift_m', 'rotate_deg'), [
    ('wrist_camera', (0.003, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ('wrist_camera', (0.0, 0.003, 0.0), (0.0, 0.0, 0.0)),
    ('wrist_camera', (0.0, 0.0, 0.0), (0.0, 0.5, 0.0)),
    ('wrist_camera', (0.0, 0.0, 0.0), (0.5, 0.0, 0.0)),
    ('scene_camera', (0.003, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ('scene_camera', (0.0, 0.0, 0.0), (0.0, 0.5, 0.0)),
])
def test_a_moved_camera_fails_and_the_message_says_which_and_how_much(
        rig: Path, camera: str, shift_m: tuple[float, ...], rotate_deg: tuple[float, ...]
) -> None:
    record = verify_on_twin(rig, 'fr3', NOW, moves={camera: (shift_m, rotate_deg)})
    assert not record.passed
    failed = [c for c in record.cameras if not c.passed]
    assert [c.camera for c in failed] == [camera]  # the other camera still passes
    message = ' '.join(record.failures())
    assert message.startswith(f'{camera}: the board is ')
    offset_mm = figure(message, 'mm')
    assert offset_mm > 2.0  # the limit
    if rotate_deg == (0.0, 0.0, 0.0):  # moved: the board is offset by about as much
        assert 2.3 < offset_mm < 3.7
        assert 2.0 < figure(message.split('seems to have moved')[1], 'mm') < 6.0
    else:  # turned: the apparent turn is about the half degree
        turned = float(message.split('turned ')[1].split(' deg')[0])
        assert 0.3 < turned < 0.9


def test_a_wrong_resolution_a_swapped_camera_and_a_missing_board_fail_by_name() -> None:
    rig = load_rig_calibration(share_dir() / 'calibration' / 'twin_fr3')
    wrist = rig.cameras['wrist_camera']
    settings = load_settings(rig.folder)
    scene = with_board(load_scene('fr3'), rig.board)
    with Twin(scene) as twin:
        views = capture(twin, [np.array(p) for p in settings.poses_rad[1:]], ['wrist_camera'])
    wrist_views = views['wrist_camera']
    check, _ = verify_camera(wrist, rig.board, wrist_views, settings.limits('wrist_camera'),
                             serial='046122250123')
    assert not check.passed
    assert 'camera serial 046122250123 is not the calibrated twin:fr3:wrist_camera' in \
        check.problems[0]
    small = [dataclasses.replace(v, image=np.ascontiguousarray(v.image[::2, ::2]))
             for v in wrist_views]
    check, _ = verify_camera(wrist, rig.board, small, settings.limits('wrist_camera'))
    assert not check.passed and check.resolution == (320, 240)
    assert 'images are 320x240, the calibration is for 640x480' in check.problems[0]
    blank = [CameraView(np.full((480, 640, 3), 120, np.uint8), v.flange_in_base)
             for v in wrist_views]
    check, _ = verify_camera(wrist, rig.board, blank, settings.limits('wrist_camera'))
    assert not check.passed and check.views_used == 0
    assert 'the board was found in 0 of 4 views' in check.problems[0]


def test_calibrating_the_twin_recovers_its_cameras(tmp_path: Path) -> None:
    """The pipeline that wrote calibration/twin_fr3, against the twin's ground truth:
    intrinsics within 0.5% focal length and 1 px principal point, extrinsics within 1 mm and
    0.2 degrees; and the committed files agree with a fresh run."""
    result = calibrate_twin('fr3', tmp_path / 'twin_fr3', now=NOW)
    scene = load_scene('fr3').with_resolution(640, 480)
    for name, fit in result.intrinsics.items():
        truth, k = scene.camera(name).intrinsics(), fit.intrinsics
        assert abs(k.fx - truth.fx) / truth.fx < 0.005 and abs(k.fy - truth.fy) / truth.fy < 0.005
        assert abs(k.cx - truth.cx) < 1.0 and abs(k.cy - truth.cy) < 1.0
    for name, solve in result.extrinsics.items():
        millimetres, degrees = pose_error(solve.camera, result.truth[name])
        assert millimetres < 1.0 and degrees < 0.2, (name, millimetres, degrees)
    committed = load_rig_calibration(share_dir() / 'calibration' / 'twin_fr3')
    fresh = load_rig_calibration(tmp_path / 'twin_fr3')
    for name in ('scene_camera', 'wrist_camera'):
        millimetres, degrees = pose_error(fresh.cameras[name].extrinsics.pose,
                                          committed.cameras[name].extrinsics.pose)
        assert millimetres < 0.01 and degrees < 0.001  # deterministic renders
