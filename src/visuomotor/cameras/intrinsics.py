"""Camera intrinsics: the value object behind sensor_msgs/CameraInfo.

Also reads and writes the ROS camera_info YAML files (camera_calibration_parsers format)
kept under calibration/<rig>/.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from visuomotor.errors import CameraInfoError

# Distortion models of sensor_msgs/distortion_models and their coefficient counts.
DISTORTION_COEFFICIENTS = {'plumb_bob': 5, 'rational_polynomial': 8, 'equidistant': 4}
_IDENTITY_3 = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def _finite_tuple(values: object, length: int | None, field: str) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise CameraInfoError(field, f'must be a list of numbers, got {values!r}')
    try:
        floats = tuple(float(v) for v in values)
    except OverflowError:
        raise CameraInfoError(field, f'must be finite, got {list(values)!r}') from None
    except (TypeError, ValueError):
        raise CameraInfoError(field, f'must contain only numbers, got {list(values)!r}'
                              ) from None
    if length is not None and len(floats) != length:
        raise CameraInfoError(field, f'must have {length} values, got {len(floats)}')
    if not all(math.isfinite(v) for v in floats):
        raise CameraInfoError(field, f'must be finite, got {list(floats)}')
    return floats


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics with distortion, as in sensor_msgs/CameraInfo.

    Attributes:
        width, height: image size in pixels the calibration is for.
        k: 3x3 camera matrix, row-major (fx 0 cx, 0 fy cy, 0 0 1).
        distortion_model: `plumb_bob`, `rational_polynomial`, `equidistant`, or another
            model name (coefficients then unchecked).
        d: distortion coefficients.
        r: 3x3 rectification matrix, row-major (identity for a monocular camera).
        p: 3x4 projection matrix, row-major.
        camera_name: name stored in camera_info YAML files.
    """

    width: int
    height: int
    k: tuple[float, ...]
    distortion_model: str = 'plumb_bob'
    d: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
    r: tuple[float, ...] = _IDENTITY_3
    p: tuple[float, ...] = ()
    camera_name: str = ''

    def __post_init__(self) -> None:
        for name in ('width', 'height'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise CameraInfoError(name, f'must be a positive integer, got {value!r}')
        k = _finite_tuple(self.k, 9, 'k')
        if not any(k):
            raise CameraInfoError('k', 'is all zeros: the camera is uncalibrated. Run the '
                                  'intrinsic calibration for this camera first.')
        if k[0] <= 0 or k[4] <= 0 or k[8] != 1.0 or k[1] != 0.0 or k[3] != 0.0 or \
                k[6] != 0.0 or k[7] != 0.0:
            raise CameraInfoError('k', f'is not a pinhole camera matrix [fx 0 cx; 0 fy cy; '
                                  f'0 0 1] with fx, fy > 0: {list(k)}')
        model = self.distortion_model
        if not isinstance(model, str):
            raise CameraInfoError('distortion_model', f'must be a string, got {model!r}')
        d = _finite_tuple(self.d, DISTORTION_COEFFICIENTS.get(model) if self.d else None, 'd')
        r = _finite_tuple(self.r, 9, 'r')
        rotation = np.array(r).reshape(3, 3)
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6) or \
                not abs(np.linalg.det(rotation) - 1.0) < 1e-6:
            raise CameraInfoError('r', f'is not a rotation matrix: {list(r)} (use the identity '
                                  'for a monocular camera)')
        p = _finite_tuple(self.p, 12, 'p') if self.p else \
            (k[0], 0.0, k[2], 0.0, 0.0, k[4], k[5], 0.0, 0.0, 0.0, 1.0, 0.0)
        if p[0] <= 0 or p[5] <= 0 or p[8:] != (0.0, 0.0, 1.0, 0.0):
            raise CameraInfoError('p', f"is not a projection matrix [fx' 0 cx' Tx; 0 fy' "
                                  f"cy' Ty; 0 0 1 0] with fx', fy' > 0: {list(p)}")
        object.__setattr__(self, 'k', k)
        object.__setattr__(self, 'd', d)
        object.__setattr__(self, 'r', r)
        object.__setattr__(self, 'p', p)

    @classmethod
    def from_pinhole(cls, width: int, height: int, fx: float, fy: float, cx: float,
                     cy: float, **kwargs: Any) -> CameraIntrinsics:
        """Intrinsics from focal lengths and principal point (no distortion by default)."""
        return cls(width, height, (fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0), **kwargs)

    @property
    def fx(self) -> float:
        """Focal length along x, pixels."""
        return self.k[0]

    @property
    def fy(self) -> float:
        """Focal length along y, pixels."""
        return self.k[4]

    @property
    def cx(self) -> float:
        """Principal point x, pixels."""
        return self.k[2]

    @property
    def cy(self) -> float:
        """Principal point y, pixels."""
        return self.k[5]

    def camera_matrix(self) -> npt.NDArray[np.float64]:
        """K as a 3x3 array."""
        return np.array(self.k, dtype=np.float64).reshape(3, 3)

    def distortion(self) -> npt.NDArray[np.float64]:
        """D as an array (OpenCV's distCoeffs)."""
        return np.array(self.d, dtype=np.float64)

    def projection_matrix(self) -> npt.NDArray[np.float64]:
        """P as a 3x4 array."""
        return np.array(self.p, dtype=np.float64).reshape(3, 4)

    # camera_info YAML (camera_calibration_parsers) -----------------------------------------

    def to_yaml_dict(self) -> dict[str, Any]:
        """The camera_info YAML structure written by ROS camera_calibration."""
        def matrix(rows: int, cols: int, data: tuple[float, ...]) -> dict[str, Any]:
            return {'rows': rows, 'cols': cols, 'data': list(data)}
        return {
            'image_width': self.width,
            'image_height': self.height,
            'camera_name': self.camera_name,
            'camera_matrix': matrix(3, 3, self.k),
            'distortion_model': self.distortion_model,
            'distortion_coefficients': matrix(1, len(self.d), self.d),
            'rectification_matrix': matrix(3, 3, self.r),
            'projection_matrix': matrix(3, 4, self.p),
        }

    @classmethod
    def from_yaml_dict(cls, data: Mapping[str, Any], *, source: str = 'camera_info'
                       ) -> CameraIntrinsics:
        """Parse the camera_info YAML structure; extra keys (e.g. serial, rms) are ignored."""
        if not isinstance(data, Mapping):
            raise CameraInfoError(source, 'must be a YAML mapping')

        def need(key: str) -> Any:
            if key not in data:
                raise CameraInfoError(f'{source}.{key}', 'is missing')
            return data[key]

        def matrix(key: str) -> Any:
            value = need(key)
            if not isinstance(value, Mapping) or 'data' not in value:
                raise CameraInfoError(f'{source}.{key}', 'must be a mapping with rows, cols, '
                                      'data')
            return value['data']

        try:
            return cls(
                width=need('image_width'),
                height=need('image_height'),
                k=matrix('camera_matrix'),
                distortion_model=need('distortion_model'),
                d=matrix('distortion_coefficients'),
                r=matrix('rectification_matrix'),
                p=matrix('projection_matrix'),
                camera_name=str(data.get('camera_name', '')),
            )
        except CameraInfoError as exc:
            if exc.field.startswith(source):
                raise
            raise CameraInfoError(f'{source}.{exc.field}', str(exc).split(': ', 1)[1]
                                  ) from None


def load_camera_info(path: str | Path) -> CameraIntrinsics:
    """Read a camera_info YAML file."""
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding='utf-8'))
    except OSError as exc:
        raise CameraInfoError(str(file), f'cannot be read ({exc.strerror})') from None
    except yaml.YAMLError as exc:
        raise CameraInfoError(str(file), f'is not valid YAML ({exc})') from None
    return CameraIntrinsics.from_yaml_dict(data, source=str(file))


def save_camera_info(intrinsics: CameraIntrinsics, path: str | Path) -> None:
    """Write a camera_info YAML file."""
    Path(path).write_text(yaml.safe_dump(intrinsics.to_yaml_dict(), sort_keys=False),
                          encoding='utf-8')
