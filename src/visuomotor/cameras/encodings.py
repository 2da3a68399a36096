"""Image encodings (the names of sensor_msgs/Image) and colour conversion between them.

Pure numpy/OpenCV: the ROS message layer (`visuomotor.ros.image_conversion`) and the
camera backends use this table, so an encoding means the same thing everywhere.

Raw array layout per encoding kind (what `image_to_numpy` returns without conversion):
- colour / mono / generic `<bits><U|S|F>C<n>`: (H, W) when one channel, else (H, W, C);
- Bayer mosaics: (H, W), one sample per pixel;
- packed YUV 4:2:2 (`yuv422` = UYVY, `yuv422_yuy2` = YUYV, and the aliases `uyvy`, `yuyv`):
  (H, W, 2) uint8.

Encoding names follow sensor_msgs/image_encodings.hpp (ROS 2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from visuomotor.errors import ImageConversionError

Kind = Literal['color', 'mono', 'bayer', 'yuv422', 'generic']
Order = Literal['rgb', 'bgr', 'rgba', 'bgra', 'mono']


@dataclass(frozen=True)
class EncodingInfo:
    """What an encoding name means for the bytes of an image.

    Attributes:
        name: the encoding string as it appears in sensor_msgs/Image.
        dtype: numpy element type (native byte order).
        channels: channels of the raw numpy array.
        kind: family of the encoding (colour, mono, Bayer mosaic, packed YUV, generic).
        order: colour order for colour and mono kinds, else None.
    """

    name: str
    dtype: np.dtype[Any]
    channels: int
    kind: Kind
    order: Order | None = None

    @property
    def bytes_per_pixel(self) -> int:
        """Bytes one pixel occupies in a row (before any row padding)."""
        return int(self.dtype.itemsize) * self.channels

    def array_shape(self, height: int, width: int) -> tuple[int, ...]:
        """Shape of the raw numpy array for an image of this encoding."""
        if self.channels == 1:
            return (height, width)
        return (height, width, self.channels)


_U8 = np.dtype(np.uint8)
_U16 = np.dtype(np.uint16)

_NAMED: dict[str, EncodingInfo] = {}


def _add(info: EncodingInfo) -> None:
    _NAMED[info.name] = info


for _bits, _dt in ((8, _U8), (16, _U16)):
    _add(EncodingInfo(f'rgb{_bits}', _dt, 3, 'color', 'rgb'))
    _add(EncodingInfo(f'bgr{_bits}', _dt, 3, 'color', 'bgr'))
    _add(EncodingInfo(f'rgba{_bits}', _dt, 4, 'color', 'rgba'))
    _add(EncodingInfo(f'bgra{_bits}', _dt, 4, 'color', 'bgra'))
    _add(EncodingInfo(f'mono{_bits}', _dt, 1, 'mono', 'mono'))
    for _pattern in ('rggb', 'bggr', 'gbrg', 'grbg'):
        _add(EncodingInfo(f'bayer_{_pattern}{_bits}', _dt, 1, 'bayer'))
for _name in ('yuv422', 'yuv422_yuy2', 'uyvy', 'yuyv'):
    _add(EncodingInfo(_name, _U8, 2, 'yuv422'))

_GENERIC = re.compile(r'(8|16|32|64)(U|S|F)C([1-4])')
_GENERIC_DTYPES = {
    ('8', 'U'): np.uint8,
    ('8', 'S'): np.int8,
    ('16', 'U'): np.uint16,
    ('16', 'S'): np.int16,
    ('32', 'S'): np.int32,
    ('32', 'F'): np.float32,
    ('64', 'F'): np.float64,
}

# OpenCV names a Bayer pattern by the 2nd row's 2nd and 3rd samples; ROS names it by the
# top-left 2x2 block. So ROS `bayer_rggb` is OpenCV `BayerBG` (checked by the unit tests
# against synthetic mosaics on the installed OpenCV).
_BAYER_CV = {'rggb': 'BG', 'bggr': 'RG', 'gbrg': 'GR', 'grbg': 'GB'}
_YUV_CV = {'yuv422': 'UYVY', 'uyvy': 'UYVY', 'yuv422_yuy2': 'YUY2', 'yuyv': 'YUY2'}
_CV_ORDER = {'rgb': 'RGB', 'bgr': 'BGR', 'rgba': 'RGBA', 'bgra': 'BGRA', 'mono': 'GRAY'}


def supported_encodings() -> list[str]:
    """Names accepted by `encoding_info` (generic `<bits><U|S|F>C<n>` types included)."""
    generic = [f'{b}{t}C{n}' for (b, t) in _GENERIC_DTYPES for n in range(1, 5)]
    return sorted(_NAMED) + generic


def encoding_info(name: str) -> EncodingInfo:
    """Look up an encoding by its sensor_msgs/Image name.

    Raises:
        ImageConversionError: (field `encoding`) for an unknown or unsupported name.
    """
    if not isinstance(name, str):
        raise ImageConversionError('encoding', f'must be a string such as "rgb8", got {name!r}')
    info = _NAMED.get(name)
    if info is not None:
        return info
    match = _GENERIC.fullmatch(name)
    if match is not None:
        bits, letter, channels = match.groups()
        dtype = _GENERIC_DTYPES.get((bits, letter))
        if dtype is not None:
            return EncodingInfo(name, np.dtype(dtype), int(channels), 'generic')
    raise ImageConversionError(
        'encoding',
        f'unsupported image encoding {name!r}; supported: {", ".join(supported_encodings())}. '
        'Configure the camera driver to publish one of these (rgb8 or bgr8 for colour).',
    )


def _cv_code(src: EncodingInfo, dst: EncodingInfo) -> int | None:
    """The cv2.cvtColor code converting `src` to `dst`, or None if there is none."""
    if dst.order is None or dst.kind not in ('color', 'mono') or src.kind == 'generic':
        return None
    target = _CV_ORDER[dst.order]
    if src.kind == 'bayer':
        if src.dtype != dst.dtype:
            return None
        pattern = _BAYER_CV[src.name[len('bayer_'):len('bayer_') + 4]]
        return getattr(cv2, f'COLOR_Bayer{pattern}2{target}', None)
    if src.kind == 'yuv422':
        if dst.dtype != _U8:
            return None
        return getattr(cv2, f'COLOR_YUV2{target}_{_YUV_CV[src.name]}', None)
    if src.order is None or src.dtype != dst.dtype:
        return None
    return getattr(cv2, f'COLOR_{_CV_ORDER[src.order]}2{target}', None)


def can_convert(src: str, dst: str) -> bool:
    """Whether `convert_color(image, src, dst)` is supported."""
    if src == dst:
        return True
    return _cv_code(encoding_info(src), encoding_info(dst)) is not None


_TARGET_ORDER = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8',
                 'rgb16', 'bgr16', 'rgba16', 'bgra16', 'mono16')


def conversion_targets(src: str) -> list[str]:
    """Encodings `convert_color` can turn `src` into (colour and mono only), common first."""
    return [name for name in _TARGET_ORDER if name != src and can_convert(src, name)]


def convert_color(
    image: npt.NDArray[Any], src: str, dst: str
) -> npt.NDArray[Any]:
    """Convert a raw image array from encoding `src` to encoding `dst`.

    Returns `image` itself when the encodings are equal (no copy); otherwise a new array.
    Bit depth is never changed implicitly (mono16 -> mono8 would need a scaling choice).

    Raises:
        ImageConversionError: (field `encoding`) if no conversion exists, or (field `data`)
            if the array's shape or dtype does not match `src`.
    """
    src_info = encoding_info(src)
    dst_info = encoding_info(dst)
    expected_tail = src_info.array_shape(1, 1)[2:]
    if image.ndim < 2 or image.shape[2:] != expected_tail or image.dtype != src_info.dtype:
        raise ImageConversionError(
            'data',
            f'array of shape {image.shape} and dtype {image.dtype} does not hold {src!r} '
            f'pixels (expected (H, W{", " + str(src_info.channels) if expected_tail else ""}) '
            f'{src_info.dtype}).',
        )
    if src == dst:
        return image
    code = _cv_code(src_info, dst_info)
    if code is None:
        raise ImageConversionError(
            'encoding',
            f'no conversion from {src!r} to {dst!r}. Convertible targets from {src!r}: '
            f'{", ".join(conversion_targets(src)) or "none"}.',
        )
    return np.asarray(cv2.cvtColor(image, code))
