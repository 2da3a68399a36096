"""The pre-session gate: blocks without a record, with a failed, stale or future one, or when
the calibration files changed after it; an override lets a session start and says so; a
corrupt calibration file gets an error naming the file and the fix."""

from __future__ import annotations

import datetime
import json
import re
import shutil
from pathlib import Path

import pytest

from visuomotor.calibration.gate import CalibrationGateError, check_gate, require_gate
from visuomotor.calibration.rig_files import CalibrationFileError, load_rig_calibration
from visuomotor.paths import share_dir
from visuomotor.sim.calibration_capture import verify_on_twin

NOW = datetime.datetime(2026, 11, 22, 8, 0, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)


@pytest.fixture(scope='module')
def verified(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rig folder with one passing record made at NOW (copied per test)."""
    folder = tmp_path_factory.mktemp('verified') / 'twin_fr3'
    shutil.copytree(share_dir() / 'calibration' / 'twin_fr3', folder,
                    ignore=shutil.ignore_patterns('verification'))
    assert verify_on_twin(folder, 'fr3', NOW).passed
    return folder


@pytest.fixture
def rig(verified: Path, tmp_path: Path) -> Path:
    folder = tmp_path / 'twin_fr3'
    shutil.copytree(verified, folder)
    return folder


def test_a_fresh_passing_record_opens_the_gate(rig: Path) -> None:
    decision = check_gate(rig, NOW + 2 * HOUR)
    assert decision.allowed and decision.record_id and decision.record_id.startswith('twin_fr3-')
    assert 'passed 2.0 h ago (limit 12 h)' in decision.message
    assert decision.provenance() == {'record': decision.record_id,
                                     'verified_at': decision.verified_at, 'override': None,
                                     'gate': decision.message}


def test_no_record_blocks(rig: Path) -> None:
    shutil.rmtree(rig / 'verification')
    decision = check_gate(rig, NOW)
    assert not decision.allowed and 'no verification record' in decision.message
    assert f'`visuomotor calibrate verify --rig {rig}`' in decision.message
    with pytest.raises(CalibrationGateError, match='no verification record'):
        require_gate(str(rig), 0.0, '', NOW)


def test_a_stale_record_blocks(rig: Path) -> None:
    decision = check_gate(rig, NOW + 13 * HOUR)
    assert not decision.allowed and 'is 13.0 h old (limit 12 h)' in decision.message
    assert check_gate(rig, NOW + 13 * HOUR, max_age_h=24).allowed  # the parameter wins


def test_a_record_from_the_future_blocks(rig: Path) -> None:
    decision = check_gate(rig, NOW - 2 * HOUR)
    assert not decision.allowed and 'in the future' in decision.message


def test_the_newest_record_decides_and_a_failed_one_blocks(rig: Path) -> None:
    record = verify_on_twin(rig, 'fr3', NOW + HOUR,
                            moves={'wrist_camera': ((0.004, 0.0, 0.0), (0.0, 0.0, 0.0))})
    assert not record.passed
    decision = check_gate(rig, NOW + 2 * HOUR)
    assert not decision.allowed and decision.record_id == record.id
    assert 'FAILED: wrist_camera: the board is' in decision.message


def test_changed_calibration_files_need_a_new_verification(rig: Path) -> None:
    path = rig / 'wrist_camera_extrinsics.yaml'
    path.write_text(path.read_text().replace('views: 21', 'views: 22'))
    decision = check_gate(rig, NOW + HOUR)
    assert not decision.allowed
    assert "calibration files ['wrist_camera_extrinsics.yaml'] changed" in decision.message


def test_an_override_starts_and_says_so(rig: Path) -> None:
    shutil.rmtree(rig / 'verification')
    decision = require_gate(str(rig), 0.0, 'camera remounted, check after lunch (ada)', NOW)
    assert decision.allowed and decision.override == 'camera remounted, check after lunch (ada)'
    assert 'no verification record' in decision.message and 'OVERRIDDEN' in decision.message
    assert decision.provenance()['override'] == 'camera remounted, check after lunch (ada)'
    assert require_gate('', 0.0, 'sim only', NOW).allowed
    with pytest.raises(CalibrationGateError, match='no rig calibration given'):
        require_gate('', 0.0, '', NOW)


def test_unreadable_records_are_not_evidence(rig: Path) -> None:
    for path in (rig / 'verification').glob('*.json'):
        path.write_text('{"passed": tr')
    assert 'no verification record' in check_gate(rig, NOW).message


@pytest.mark.parametrize(('name', 'text', 'expected'), [
    ('wrist_camera_extrinsics.yaml', 'camera: [wrist', 'is not valid YAML'),
    ('wrist_camera_extrinsics.yaml', None, 'quaternion_xyzw: must be a unit quaternion'),
    ('board.yaml', 'squares: [5, 7]\n', 'square_m: is missing'),
    ('scene_camera.yaml', 'image_width: 640\n', 'scene_camera.yaml'),
    ('scene_camera_extrinsics.yaml', '', 'must be a mapping'),
])
def test_a_corrupt_calibration_file_gets_a_clear_error(rig: Path, name: str, text: str | None,
                                                        expected: str) -> None:
    path = rig / name
    if text is None:  # a quaternion edited by hand
        text = re.sub(r'(quaternion_xyzw:\n- )[-0-9.e]+', r'\g<1>0.9', path.read_text())
    path.write_text(text)
    with pytest.raises(CalibrationFileError, match=expected) as error:
        load_rig_calibration(rig)
    assert str(path) in str(error.value) or name in str(error.value)
    with pytest.raises(CalibrationGateError, match='calibration gate: .*calibration_override'):
        require_gate(str(rig), 0.0, '', NOW)


def test_a_missing_file_says_how_to_make_it(rig: Path) -> None:
    (rig / 'board.yaml').unlink()
    with pytest.raises(CalibrationFileError, match='no board file; create it with'):
        load_rig_calibration(rig)
    assert json.loads(next((rig / 'verification').glob('*.json')).read_text())['passed']
