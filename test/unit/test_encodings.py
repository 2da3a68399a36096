"""Image encodings: the table, and conversions checked against what the bytes mean."""

from __future__ import annotations

import numpy as np
import pytest

from visuomotor.cameras.encodings import (
    can_convert,
    convert_color,
    encoding_info,
    supported_encodings,
)
from visuomotor.errors import ImageConversionError

COLOUR = {'r': 200, 'g': 100, 'b': 30}


@pytest.mark.parametrize(('name', 'dtype', 'channels'), [
    ('rgb8', np.uint8, 3), ('bgra8', np.uint8, 4), ('mono16', np.uint16, 1),
    ('16UC1', np.uint16, 1), ('32FC1', np.float32, 1), ('8SC3', np.int8, 3),
    ('64FC2', np.float64, 2), ('bayer_grbg16', np.uint16, 1), ('yuv422', np.uint8, 2),
])
def test_table_gives_dtype_and_channels(name: str, dtype: type, channels: int) -> None:
    info = encoding_info(name)
    assert info.dtype == np.dtype(dtype)
    assert info.channels == channels
    assert name in supported_encodings()


def test_unknown_encoding_names_the_field_and_lists_what_works() -> None:
    with pytest.raises(ImageConversionError) as error:
        encoding_info('rgb24')
    assert error.value.field == 'encoding'
    assert "'rgb24'" in str(error.value) and 'rgb8' in str(error.value)


def _mosaic(pattern: str, height: int = 16, width: int = 16,
            dtype: type = np.uint8) -> np.ndarray:
    """A flat-colour Bayer mosaic laid out as `pattern` names it (top-left 2x2, row-major)."""
    scale = 257 if dtype == np.uint16 else 1
    mosaic = np.zeros((height, width), dtype=dtype)
    for index, channel in enumerate(pattern):
        row, col = divmod(index, 2)
        mosaic[row::2, col::2] = COLOUR[channel] * scale
    return mosaic


@pytest.mark.parametrize('pattern', ['rggb', 'bggr', 'gbrg', 'grbg'])
@pytest.mark.parametrize('bits', [8, 16])
def test_bayer_demosaic_recovers_a_flat_colour(pattern: str, bits: int) -> None:
    dtype = np.uint8 if bits == 8 else np.uint16
    scale = 257 if bits == 16 else 1
    rgb = convert_color(_mosaic(pattern, dtype=dtype), f'bayer_{pattern}{bits}', f'rgb{bits}')
    interior = rgb[4:-4, 4:-4].reshape(-1, 3)
    expected = np.array([COLOUR['r'], COLOUR['g'], COLOUR['b']]) * scale
    np.testing.assert_array_equal(interior, np.broadcast_to(expected, interior.shape))


def _pack_422(y: int, u: int, v: int, order: str, width: int = 8) -> np.ndarray:
    """A flat YUV 4:2:2 image in byte `order` ('UYVY' or 'YUYV'), shape (4, width, 2)."""
    values = {'Y': y, 'U': u, 'V': v}
    pair = np.array([values[c] for c in order], dtype=np.uint8).reshape(2, 2)
    return np.tile(pair, (4, width // 2, 1))


@pytest.mark.parametrize(('encoding', 'order'), [
    ('yuv422', 'UYVY'), ('uyvy', 'UYVY'), ('yuv422_yuy2', 'YUYV'), ('yuyv', 'YUYV'),
])
def test_yuv422_byte_order(encoding: str, order: str) -> None:
    # Strong V (red difference), weak U (blue difference): a clearly red pixel.
    rgb = convert_color(_pack_422(110, 90, 200, order), encoding, 'rgb8').astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    assert (r - g > 60).all() and (r - b > 60).all(), rgb[0, 0]
    grey = convert_color(_pack_422(128, 128, 128, order), encoding, 'rgb8').astype(int)
    assert np.ptp(grey, axis=-1).max() <= 2


@pytest.mark.parametrize(('src', 'dst', 'expected'), [
    ('rgb8', 'bgr8', [30, 100, 200]),
    ('rgb8', 'rgba8', [200, 100, 30, 255]),
    ('rgb8', 'bgra8', [30, 100, 200, 255]),
    ('rgb8', 'mono8', [round(0.299 * 200 + 0.587 * 100 + 0.114 * 30)]),
])
def test_colour_order_conversions(src: str, dst: str, expected: list[int]) -> None:
    image = np.tile(np.array([200, 100, 30], dtype=np.uint8), (2, 3, 1))
    out = convert_color(image, src, dst)
    np.testing.assert_array_equal(out.reshape(-1, len(expected))[0], expected)


def test_same_encoding_returns_the_input_without_copy() -> None:
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    assert convert_color(image, 'rgb8', 'rgb8') is image


def test_every_advertised_conversion_runs() -> None:
    names = [n for n in supported_encodings() if not n[0].isdigit()]
    pairs = [(s, d) for s in names for d in names if s != d and can_convert(s, d)]
    assert len(pairs) > 50
    for src, dst in pairs:
        info = encoding_info(src)
        out = convert_color(np.zeros(info.array_shape(4, 4), info.dtype), src, dst)
        assert out.shape == encoding_info(dst).array_shape(4, 4), (src, dst)
        assert out.dtype == encoding_info(dst).dtype, (src, dst)


def test_bit_depth_is_never_changed_implicitly() -> None:
    assert not can_convert('mono16', 'mono8')
    with pytest.raises(ImageConversionError) as error:
        convert_color(np.zeros((2, 2), np.uint16), 'mono16', 'mono8')
    assert error.value.field == 'encoding'
    assert "'mono16'" in str(error.value) and "'mono8'" in str(error.value)


def test_array_that_does_not_hold_the_encoding_is_rejected() -> None:
    with pytest.raises(ImageConversionError) as error:
        convert_color(np.zeros((4, 4), np.uint8), 'rgb8', 'bgr8')
    assert error.value.field == 'data'
    with pytest.raises(ImageConversionError):
        convert_color(np.zeros((4, 4, 3), np.float32), 'rgb8', 'bgr8')


@pytest.mark.parametrize('name', ['8UC1\n', ' rgb8', 5, None, ['rgb8']])
def test_names_must_match_exactly_and_be_strings(name: object) -> None:
    with pytest.raises(ImageConversionError) as error:
        encoding_info(name)  # type: ignore[arg-type]
    assert error.value.field == 'encoding'
