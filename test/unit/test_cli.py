"""The `visuomotor` command: spec checking and the 'what does the model see' helper."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from support import REPO
from visuomotor.cameras.synthetic import synthetic_scene
from visuomotor.cli import main

PRESET = REPO / 'config' / 'preprocessing' / 'imagenet_224.json'


def test_spec_prints_hash_and_steps(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(['spec', str(PRESET)]) == 0
    out = capsys.readouterr().out
    assert 'b923da0daf8a0652' in out and 'resize 224x224 (area)' in out


def test_preprocess_writes_what_the_model_sees(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    frame = synthetic_scene(640, 480)
    image = tmp_path / 'frame.png'
    cv2.imwrite(str(image), frame[:, :, ::-1])  # PNG files are written from BGR
    out = tmp_path / 'seen.png'
    assert main(['preprocess', '--spec', str(PRESET), str(image), '--out', str(out)]) == 0
    seen = cv2.imread(str(out))[:, :, ::-1]
    assert seen.shape == (224, 224, 3)
    expected = cv2.resize(frame[:, 80:560], (224, 224), interpolation=cv2.INTER_AREA)
    assert np.abs(seen.astype(int) - expected).max() <= 1  # colours not swapped, same crop
    assert '(3, 224, 224)' in capsys.readouterr().out


@pytest.mark.parametrize('make_args', [
    lambda tmp: ['spec', str(tmp / 'missing.json')],
    lambda tmp: ['preprocess', '--spec', str(PRESET), str(tmp / 'missing.png')],
])
def test_errors_exit_2_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      make_args: object) -> None:
    args = make_args(tmp_path)  # type: ignore[operator]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'visuomotor {args[0]}: error:') and 'missing' in err


def test_a_frame_of_the_wrong_size_is_refused(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / 'hd.png'
    cv2.imwrite(str(image), np.zeros((720, 1280, 3), np.uint8))
    assert main(['preprocess', '--spec', str(PRESET), str(image)]) == 2
    assert '1280x720' in capsys.readouterr().err
