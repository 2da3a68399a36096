"""CameraIntrinsics: validation and the ROS camera_info YAML format."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from visuomotor.cameras.intrinsics import CameraIntrinsics, load_camera_info, save_camera_info
from visuomotor.errors import CameraInfoError

VALID: dict[str, object] = {'width': 640, 'height': 480,
                            'k': (600.0, 0.0, 320.0, 0.0, 600.0, 240.0, 0.0, 0.0, 1.0)}
WRIST = CameraIntrinsics.from_pinhole(640, 480, 615.2, 614.8, 321.5, 238.9,
                                      d=(0.1, -0.2, 0.001, 0.002, 0.05), camera_name='wrist')


def test_projection_follows_k_and_matches_opencv() -> None:
    points = np.array([[0.05, -0.02, 0.5], [-0.1, 0.08, 0.9]])
    pixels, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), WRIST.camera_matrix(),
                                  np.zeros(5))
    expected = points[:, :2] / points[:, 2:] * [WRIST.fx, WRIST.fy] + [WRIST.cx, WRIST.cy]
    np.testing.assert_allclose(pixels.reshape(-1, 2), expected, atol=1e-9)
    np.testing.assert_allclose(WRIST.projection_matrix()[:, :3], WRIST.camera_matrix())


def test_yaml_round_trip(tmp_path: Path) -> None:
    path = tmp_path / 'wrist.yaml'
    save_camera_info(WRIST, path)
    text = path.read_text()
    for key in ('image_width: 640', 'camera_matrix:', 'distortion_model: plumb_bob',
                'rectification_matrix:', 'projection_matrix:'):
        assert key in text
    assert load_camera_info(path) == WRIST


@pytest.mark.parametrize(('change', 'field'), [
    ({'k': (0.0,) * 9}, 'k'),
    ({'k': (600.0, 0.0, 320.0, 0.0, -600.0, 240.0, 0.0, 0.0, 1.0)}, 'k'),
    ({'k': (600.0, 0.0, 320.0, 0.0, 600.0, 240.0, 0.0, 0.0)}, 'k'),
    ({'k': (600.0, 0.0, float('nan'), 0.0, 600.0, 240.0, 0.0, 0.0, 1.0)}, 'k'),
    ({'width': 0}, 'width'),
    ({'d': (0.1, 0.2)}, 'd'),
    ({'distortion_model': 'equidistant'}, 'd'),
    ({'p': (1.0,) * 11}, 'p'),
])
def test_invalid_intrinsics_name_the_field(change: dict[str, object], field: str) -> None:
    values = {**VALID, **change}
    with pytest.raises(CameraInfoError) as error:
        CameraIntrinsics(**values)  # type: ignore[arg-type]
    assert error.value.field == field


def test_uncalibrated_camera_says_what_to_do() -> None:
    with pytest.raises(CameraInfoError, match='uncalibrated'):
        CameraIntrinsics(640, 480, (0.0,) * 9)


def test_broken_yaml_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / 'scene.yaml'
    data = WRIST.to_yaml_dict()
    del data['camera_matrix']
    import yaml
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CameraInfoError) as error:
        load_camera_info(path)
    assert error.value.field == f'{path}.camera_matrix'
    path.write_text('image_width: [unclosed')
    with pytest.raises(CameraInfoError, match='not valid YAML'):
        load_camera_info(path)


@pytest.mark.parametrize(('change', 'field'), [
    ({'r': (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 2.0)}, 'r'),
    ({'r': (0.0,) * 9}, 'r'),
    ({'p': (0.0,) * 12}, 'p'),
    ({'p': (600.0, 0.0, 320.0, 0.0, 0.0, 600.0, 240.0, 0.0, 0.0, 0.0, 2.0, 0.0)}, 'p'),
    ({'k': (10**400, 0, 320, 0, 600, 240, 0, 0, 1)}, 'k'),
])
def test_rectification_projection_and_overflow_are_checked(change: dict[str, object],
                                                           field: str) -> None:
    values = {**VALID, **change}
    with pytest.raises(CameraInfoError) as error:
        CameraIntrinsics(**values)  # type: ignore[arg-type]
    assert error.value.field == field
