"""`visuomotor calibrate intrinsics|handeye|verify` on a capture folder of twin views: the
wrist camera's intrinsics and hand-eye pose come out of the command line as the twin built
it, and a verification of the rig on the same folder passes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from visuomotor.calibration.captures import CaptureWriter, load_captures
from visuomotor.calibration.poses import poses_above
from visuomotor.calibration.rig_files import load_board, load_rig_calibration
from visuomotor.cli import main
from visuomotor.paths import share_dir
from visuomotor.sim.board import board_size_m
from visuomotor.sim.calibrate_twin import pose_error
from visuomotor.sim.calibration_capture import capture, with_board
from visuomotor.sim.config import load_scene
from visuomotor.sim.twin import Twin


@pytest.fixture(scope='module')
def captured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A capture folder of 24 robot poses above the twin rig's fixture board."""
    folder = tmp_path_factory.mktemp('captures')
    placement = load_board(share_dir() / 'calibration' / 'twin_fr3')
    scene = with_board(load_scene('fr3'), placement)
    width, height = board_size_m(placement.board)
    centre = placement.pose @ np.array([width / 2, height / 2, 0.0, 1.0])
    poses = poses_above(scene.robot, centre[:3], 24, seed=11, spread_m=(0.1, 0.1),
                        tilt_rad=0.45)
    writer = CaptureWriter(folder, 'fr3', scene.robot.joint_names, ['wrist_camera'])
    with Twin(scene) as twin:
        views = capture(twin, poses, ['wrist_camera'])['wrist_camera']
        for q, view in zip(poses, views, strict=True):
            writer.add(q, {'wrist_camera': view.image}, serials={'wrist_camera': 'twin:fr3:'
                                                                 'wrist_camera'})
        truth = twin.camera_pose_nominal('wrist_camera')
    return folder, truth


def test_intrinsics_and_hand_eye_from_a_capture_folder(
        captured: tuple[Path, np.ndarray], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder, truth = captured
    assert len(load_captures(folder).views) == 24
    rig = tmp_path / 'lab'
    assert main(['calibrate', 'intrinsics', '--rig', str(rig), '--camera', 'wrist_camera',
                 '--captures', str(folder), '--board', '5x7:0.06:0.045:DICT_4X4_50']) == 0
    out = capsys.readouterr().out
    assert 'coverage: ' in out and 'RMS 0.' in out
    assert main(['calibrate', 'handeye', '--rig', str(rig), '--camera', 'wrist_camera',
                 '--captures', str(folder), '--kind', 'eye_in_hand',
                 '--board', '5x7:0.06:0.045']) == 0
    assert 'the board on its fixture' in capsys.readouterr().out
    solved = load_rig_calibration(rig)
    wrist = solved.cameras['wrist_camera']
    assert wrist.serial == 'twin:fr3:wrist_camera'
    millimetres, degrees = pose_error(wrist.extrinsics.pose, truth)
    assert millimetres < 1.0 and degrees < 0.2, (millimetres, degrees)
    scene = load_scene('fr3').with_resolution(640, 480).camera('wrist_camera').intrinsics()
    assert abs(wrist.intrinsics.fx - scene.fx) / scene.fx < 0.005


def test_verify_on_a_capture_folder(captured: tuple[Path, np.ndarray], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = captured
    rig = tmp_path / 'twin_fr3'
    shutil.copytree(share_dir() / 'calibration' / 'twin_fr3', rig)
    (rig / 'scene_camera_extrinsics.yaml').unlink()  # only the wrist camera was captured
    assert main(['calibrate', 'verify', '--rig', str(rig), '--captures', str(folder)]) == 0
    out = capsys.readouterr().out
    assert 'wrist_camera: PASS' in out and 'PASSED: record twin_fr3-' in out
    assert main(['calibrate', 'gate', '--rig', str(rig)]) == 0


def test_bad_calibration_arguments_say_what_to_give(
        captured: tuple[Path, np.ndarray], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = captured
    assert main(['calibrate', 'intrinsics', '--rig', str(tmp_path), '--camera',
                 'wrist_camera', '--captures', str(folder), '--board', '5x7']) == 2
    assert 'SQUARESxSQUARES:SQUARE_M:MARKER_M' in capsys.readouterr().err
    assert main(['calibrate', 'intrinsics', '--rig', str(tmp_path), '--camera', 'nope',
                 '--captures', str(folder), '--board', '5x7:0.06:0.045']) == 2
    assert "camera 'nope' is not in" in capsys.readouterr().err
    assert main(['calibrate', 'verify', '--rig', str(tmp_path / 'missing')]) == 2
    assert 'no such calibration folder' in capsys.readouterr().err
    assert main(['calibrate', 'gate', '--rig', str(tmp_path / 'missing')]) == 2
