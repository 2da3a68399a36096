"""Fuzz: whatever arrives in a sensor_msgs/Image, only ImageConversionError comes out."""

from __future__ import annotations

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import Image

from visuomotor.cameras.encodings import encoding_info, supported_encodings
from visuomotor.errors import ImageConversionError
from visuomotor.ros.image_conversion import image_to_numpy

KNOWN = supported_encodings()
TARGETS = [None, 'passthrough', 'rgb8', 'bgr8', 'mono8', 'rgba8', 'mono16', 'rgb16', '32FC1',
           'bayer_rggb8', 'not_an_encoding', 'rgb8\n', 5, ['rgb8']]
UINT32 = st.integers(0, 2 ** 32 - 1)


@st.composite
def image_messages(draw: st.DrawFn) -> Image:
    """Well-formed messages with at most one field broken, and fully random ones."""
    if draw(st.integers(0, 9)) == 0:
        msg = Image(height=draw(UINT32), width=draw(UINT32), step=draw(UINT32),
                    encoding=draw(st.text(max_size=12)), is_bigendian=draw(st.integers(0, 255)))
        msg.data = draw(st.binary(max_size=300))
        return msg
    encoding = draw(st.sampled_from(KNOWN))
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    step = width * encoding_info(encoding).bytes_per_pixel + draw(st.sampled_from([0, 0, 1, 5]))
    size = height * step
    endian = draw(st.integers(0, 1))
    broken = draw(st.sampled_from([None] * 6 + ['encoding', 'height', 'width', 'step', 'size',
                                                'is_bigendian']))
    if broken == 'encoding':
        encoding = draw(st.text(min_size=1, max_size=12).filter(lambda e: e not in KNOWN))
    elif broken == 'height':
        height = draw(st.sampled_from([0, 2 ** 32 - 1, height + 1]))
    elif broken == 'width':
        width = draw(st.sampled_from([0, 2 ** 32 - 1, width + 1]))
    elif broken == 'step':
        step = draw(st.integers(0, max(step - 1, 0)))
    elif broken == 'size':
        size = draw(st.integers(0, 2 * size + 8).filter(lambda n: n != size))
    elif broken == 'is_bigendian':
        endian = draw(st.integers(2, 255))
    msg = Image(height=height, width=width, encoding=encoding, step=step, is_bigendian=endian)
    msg.data = draw(st.binary(min_size=size, max_size=size))
    return msg


@settings(max_examples=600)
@given(msg=image_messages(), target=st.one_of(st.none(), st.sampled_from(TARGETS)),
       copy=st.booleans())
def test_only_image_conversion_error_ever_comes_out(msg: Image, target: str | None,
                                                    copy: bool) -> None:
    try:
        image = image_to_numpy(msg, target, copy=copy)
    except ImageConversionError as error:
        event(f'rejected: {error.field}')
        assert error.field in {'encoding', 'height', 'width', 'step', 'data', 'is_bigendian',
                               'desired_encoding'}
        return
    event('converted')
    assert isinstance(image, np.ndarray)
    assert image.shape[:2] == (msg.height, msg.width)
    if target in (None, 'passthrough'):
        assert image.dtype == encoding_info(msg.encoding).dtype
