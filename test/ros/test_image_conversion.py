"""sensor_msgs/Image <-> numpy: round trips, layouts, and malformed messages."""

from __future__ import annotations

import array

import numpy as np
import pytest
from sensor_msgs.msg import Image

from visuomotor.cameras.encodings import encoding_info
from visuomotor.errors import ImageConversionError
from visuomotor.ros.image_conversion import PASSTHROUGH, image_to_numpy, numpy_to_image
from visuomotor.ros.stamps import ns_to_stamp, stamp_to_ns

RNG = np.random.default_rng(11)
ENCODINGS = ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', '16UC1', '32FC1', '8UC3',
             '16SC2', '64FC1', 'bayer_rggb8', 'bayer_gbrg16', 'yuv422', 'yuv422_yuy2']


def _random_image(encoding: str, height: int = 6, width: int = 10) -> np.ndarray:
    info = encoding_info(encoding)
    shape = info.array_shape(height, width)
    if info.dtype.kind == 'f':
        return RNG.standard_normal(shape).astype(info.dtype)
    limits = np.iinfo(info.dtype)
    return RNG.integers(limits.min, limits.max, shape, dtype=info.dtype, endpoint=True)


def _with_layout(image: np.ndarray, encoding: str, *, padding: int = 0,
                 big_endian: bool = False) -> Image:
    """A message as a driver would send it: optional row padding and byte order."""
    info = encoding_info(encoding)
    dtype = info.dtype.newbyteorder('>' if big_endian else '<')
    rows = image.astype(dtype).reshape(image.shape[0], -1).view(np.uint8)
    padded = np.zeros((rows.shape[0], rows.shape[1] + padding), dtype=np.uint8)
    padded[:, :rows.shape[1]] = rows
    msg = Image(height=image.shape[0], width=image.shape[1], encoding=encoding,
                is_bigendian=int(big_endian), step=padded.shape[1])
    msg.data = padded.tobytes()
    return msg


@pytest.mark.parametrize('encoding', ENCODINGS)
def test_round_trip(encoding: str) -> None:
    image = _random_image(encoding)
    msg = numpy_to_image(image, encoding, stamp=ns_to_stamp(1_500_000_123),
                         frame_id='wrist_camera_optical_frame')
    assert (msg.height, msg.width, msg.encoding) == (6, 10, encoding)
    assert msg.step == 10 * encoding_info(encoding).bytes_per_pixel
    assert stamp_to_ns(msg.header.stamp) == 1_500_000_123
    assert msg.header.frame_id == 'wrist_camera_optical_frame'
    back = image_to_numpy(msg)
    assert back.dtype == image.dtype and back.dtype.isnative
    np.testing.assert_array_equal(back, image)


@pytest.mark.parametrize('encoding', ['rgb8', 'mono16', '32FC1', '16SC2'])
@pytest.mark.parametrize('padding', [0, 3, 8])
@pytest.mark.parametrize('big_endian', [False, True])
def test_driver_layouts_padding_and_byte_order(encoding: str, padding: int,
                                               big_endian: bool) -> None:
    image = _random_image(encoding, 7, 9)
    back = image_to_numpy(_with_layout(image, encoding, padding=padding, big_endian=big_endian))
    assert back.dtype.isnative
    np.testing.assert_array_equal(back, image)


def test_native_layout_is_a_zero_copy_view_even_with_row_padding() -> None:
    image = _random_image('rgb8', 48, 64)
    msg = _with_layout(image, 'rgb8', padding=16)
    msg.data = array.array('B', msg.data)  # what rclpy delivers
    view = image_to_numpy(msg)
    buffer = np.frombuffer(msg.data, dtype=np.uint8)
    assert np.shares_memory(view, buffer)
    owned = image_to_numpy(msg, copy=True)
    assert not np.shares_memory(owned, buffer)
    np.testing.assert_array_equal(owned, view)


def test_desired_encoding_converts() -> None:
    image = _random_image('rgb8')
    msg = numpy_to_image(image, 'rgb8')
    np.testing.assert_array_equal(image_to_numpy(msg, 'bgr8'), image[:, :, ::-1])
    assert image_to_numpy(msg, PASSTHROUGH) is not None
    assert image_to_numpy(msg, 'mono8').shape == (6, 10)
    mosaic = numpy_to_image(_random_image('bayer_rggb8', 8, 8), 'bayer_rggb8')
    assert image_to_numpy(mosaic, 'rgb8').shape == (8, 8, 3)


@pytest.mark.parametrize(('encoding', 'target', 'words'), [
    ('rgb8', 'rgb24', ["'rgb24' is not an image encoding"]),
    ('32FC1', 'rgb8', ["'32FC1' image cannot be converted to 'rgb8'", 'passthrough']),
    ('mono16', 'mono8', ['possible: rgb16, bgr16']),
])
def test_impossible_conversions_name_the_argument(encoding: str, target: str,
                                                  words: list[str]) -> None:
    msg = numpy_to_image(_random_image(encoding), encoding)
    with pytest.raises(ImageConversionError) as error:
        image_to_numpy(msg, target)
    assert error.value.field == 'desired_encoding'
    for word in words:
        assert word in str(error.value)


def test_reused_message_is_refilled_in_place() -> None:
    first, second = _random_image('rgb8'), _random_image('rgb8')
    msg = numpy_to_image(first, 'rgb8')
    buffer = msg.data
    assert numpy_to_image(second, 'rgb8', out=msg) is msg
    assert msg.data is buffer
    np.testing.assert_array_equal(image_to_numpy(msg), second)
    bigger = _random_image('rgb8', 12, 10)
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(bigger, 'rgb8', out=msg)),
                                  bigger)


def _msg(**fields: object) -> Image:
    base: dict[str, object] = {'height': 2, 'width': 3, 'encoding': 'rgb8', 'step': 9,
                               'is_bigendian': 0}
    base.update(fields)
    data = base.pop('data', bytes(18))
    msg = Image(**base)
    msg.data = data
    return msg


@pytest.mark.parametrize(('msg', 'field'), [
    (_msg(encoding='rgb24'), 'encoding'),
    (_msg(encoding=''), 'encoding'),
    (_msg(height=0, data=b''), 'height'),
    (_msg(width=0, data=bytes(18)), 'width'),
    (_msg(step=8), 'step'),
    (_msg(data=bytes(17)), 'data'),
    (_msg(data=bytes(27)), 'data'),
    (_msg(is_bigendian=7), 'is_bigendian'),
    (_msg(encoding='yuv422', width=3, step=6, data=bytes(12)), None),
])
def test_malformed_messages_name_the_field(msg: Image, field: str | None) -> None:
    if field is None:  # odd-width UYVY: readable raw, not convertible
        assert image_to_numpy(msg).shape == (2, 3, 2)
        with pytest.raises(ImageConversionError) as error:
            image_to_numpy(msg, 'rgb8')
        assert error.value.field == 'data'
        return
    with pytest.raises(ImageConversionError) as error:
        image_to_numpy(msg)
    assert error.value.field == field
    assert field in str(error.value)


@pytest.mark.parametrize(('array_', 'encoding'), [
    (np.zeros((4, 4, 3), np.uint16), 'rgb8'),
    (np.zeros((4, 4), np.uint8), 'rgb8'),
    (np.zeros((4, 4, 3), np.uint8), 'mono8'),
    (np.zeros((0, 4, 3), np.uint8), 'rgb8'),
    (np.zeros(12, np.uint8), 'mono8'),
    (np.zeros((4, 4), np.float64), '32FC1'),
])
def test_arrays_that_do_not_hold_the_encoding_are_refused(array_: np.ndarray,
                                                          encoding: str) -> None:
    with pytest.raises(ImageConversionError) as error:
        numpy_to_image(array_, encoding)
    assert error.value.field == 'data'


def test_non_contiguous_and_big_endian_arrays_are_published_correctly() -> None:
    image = _random_image('mono16', 8, 8)
    for variant in (image[:, ::-1], image.astype('>u2'), np.asfortranarray(image)):
        np.testing.assert_array_equal(image_to_numpy(numpy_to_image(variant, 'mono16')),
                                      variant)
