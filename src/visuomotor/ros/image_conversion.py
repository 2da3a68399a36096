"""sensor_msgs/Image <-> numpy and sensor_msgs/CameraInfo <-> CameraIntrinsics.

Our own cv_bridge equivalent (PyPI's `cv-bridge` is the ROS 1 code and fails on numpy 2).

- `image_to_numpy(msg)` returns a view of the message's buffer when the layout allows it
  (native byte order and alignment, with or without row padding), otherwise one copy; it
  converts to a `desired_encoding` with OpenCV (colour order, Bayer demosaicing, YUV 4:2:2).
- `numpy_to_image(array, encoding)` fills `msg.data` with one copy, through the
  `array.array('B')` path that skips rosidl's per-element checks.
- Every malformed message (unknown encoding, zero size, step too small, data length not
  height * step, bad endianness flag) raises `ImageConversionError` naming the field.

Encoding names and layouts: `visuomotor.cameras.encodings`.
"""

from __future__ import annotations

import array
import sys
from typing import Any

import numpy as np
import numpy.typing as npt
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CameraInfo, Image

from visuomotor.cameras.encodings import (
    can_convert,
    conversion_targets,
    convert_color,
    encoding_info,
)
from visuomotor.cameras.intrinsics import CameraIntrinsics
from visuomotor.errors import CameraInfoError, ImageConversionError

_NATIVE_BIG_ENDIAN = sys.byteorder == 'big'
PASSTHROUGH = 'passthrough'


def _as_bytes_view(data: Any) -> npt.NDArray[np.uint8]:
    """A uint8 view of the message payload (rclpy delivers array.array('B'): no copy)."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(data, (array.array, bytes, bytearray, memoryview)):
        try:
            return np.frombuffer(data, dtype=np.uint8)
        except (TypeError, ValueError, BufferError):
            raise ImageConversionError('data', 'is not a buffer of bytes (expected '
                                       "array.array('B') or bytes)") from None
    try:
        return np.asarray(data, dtype=np.uint8).reshape(-1)
    except (TypeError, ValueError, OverflowError):
        raise ImageConversionError('data', 'is not a byte buffer (expected array.array of '
                                   'uint8, bytes, or a sequence of ints in [0, 255])') from None


def image_to_numpy(msg: Image, desired_encoding: str | None = None, *,
                   copy: bool = False) -> npt.NDArray[Any]:
    """Convert a sensor_msgs/Image to a numpy array.

    Args:
        msg: the image message.
        desired_encoding: encoding of the returned array; None or 'passthrough' keeps the
            message's encoding.
        copy: return an array that owns its memory; otherwise, when no conversion or byte
            swap is needed, the result is a view that aliases `msg.data`.

    Returns:
        (H, W) for single-channel encodings, else (H, W, C); dtype per encoding, native
        byte order.

    Raises:
        ImageConversionError: the message is malformed or cannot be converted; `field` names
            the offending field.
    """
    encoding = msg.encoding
    if not isinstance(encoding, str) or not encoding:
        raise ImageConversionError('encoding', 'is empty; the publisher must set it (e.g. '
                                   '"rgb8")')
    info = encoding_info(encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ImageConversionError('height' if height <= 0 else 'width',
                                   f'image has zero size ({width}x{height})')
    row_bytes = width * info.bytes_per_pixel
    if step < row_bytes:
        raise ImageConversionError('step', f'{step} is smaller than width * bytes per pixel = '
                                   f'{width} * {info.bytes_per_pixel} = {row_bytes} for '
                                   f'{encoding!r}')
    if msg.is_bigendian not in (0, 1, True, False):
        raise ImageConversionError('is_bigendian', f'must be 0 or 1, got {msg.is_bigendian!r}')
    raw = _as_bytes_view(msg.data)
    if raw.size != height * step:
        raise ImageConversionError('data', f'has {raw.size} bytes but height * step = '
                                   f'{height} * {step} = {height * step}')
    dtype = info.dtype
    big_endian = bool(msg.is_bigendian)
    swapped = dtype.itemsize > 1 and big_endian != _NATIVE_BIG_ENDIAN
    if swapped:
        dtype = dtype.newbyteorder('>' if big_endian else '<')
    item = dtype.itemsize
    shape = info.array_shape(height, width)
    strides = (step, info.bytes_per_pixel, item)[:len(shape)]
    image: npt.NDArray[Any] = np.ndarray(shape=shape, dtype=dtype, buffer=raw, offset=0,
                                         strides=strides)
    if swapped:
        image = image.astype(dtype.newbyteorder('='))
    elif not image.flags.aligned:
        image = np.ascontiguousarray(image)
    if desired_encoding is not None and desired_encoding not in (PASSTHROUGH, encoding):
        return _convert(image, encoding, desired_encoding)
    if copy and not (swapped or image.base is None):
        image = np.array(image, copy=True)
    return image


def _convert(image: npt.NDArray[Any], src: str, dst: Any) -> npt.NDArray[Any]:
    import cv2  # local: only conversions need OpenCV's error type

    try:
        encoding_info(dst)
    except ImageConversionError:
        raise ImageConversionError(
            'desired_encoding', f'{dst!r} is not an image encoding; ask for e.g. "rgb8", '
            '"bgr8", "mono8" or "passthrough"') from None
    if not can_convert(src, dst):
        raise ImageConversionError(
            'desired_encoding', f'a {src!r} image cannot be converted to {dst!r}; possible: '
            f'{", ".join(conversion_targets(src)) or "none (use passthrough)"}')
    try:
        return convert_color(image, src, dst)
    except cv2.error as exc:
        raise ImageConversionError('data', f'OpenCV cannot convert this {image.shape} '
                                   f'{src!r} image to {dst!r}: {exc.err}') from None


def numpy_to_image(image: npt.NDArray[Any], encoding: str, *, stamp: Time | None = None,
                   frame_id: str = '', out: Image | None = None) -> Image:
    """Build a sensor_msgs/Image from an array.

    A publisher can pass the message it published last as `out`: rclpy serialises a message
    inside `publish()`, so it can be refilled afterwards, and when the size is unchanged the
    pixels are copied into its existing buffer (one memcpy, no allocation; about half the
    cost of a fresh message, see bench/results/image_pipeline.md).

    Args:
        image: (H, W) or (H, W, C) array whose shape and dtype match `encoding`.
        encoding: the sensor_msgs encoding name.
        stamp: header stamp (capture time); zero if None.
        frame_id: header frame id (the camera's optical frame).
        out: a message to refill instead of creating one.

    Raises:
        ImageConversionError: if the array does not hold `encoding` pixels.
    """
    info = encoding_info(encoding)
    if not isinstance(image, np.ndarray):
        raise ImageConversionError('data', f'expected a numpy array, got {type(image).__name__}')
    if image.ndim not in (2, 3) or image.shape[0] == 0 or image.shape[1] == 0:
        raise ImageConversionError('data', f'expected a non-empty (H, W[, C]) array, got shape '
                                   f'{image.shape}')
    height, width = int(image.shape[0]), int(image.shape[1])
    channels = 1 if image.ndim == 2 else int(image.shape[2])
    if channels != info.channels or image.dtype.kind != info.dtype.kind or \
            image.dtype.itemsize != info.dtype.itemsize:
        raise ImageConversionError(
            'data', f'array of shape {image.shape} and dtype {image.dtype} does not hold '
            f'{encoding!r} pixels ({info.channels} channel(s) of {info.dtype})')
    contiguous = np.ascontiguousarray(image, dtype=image.dtype.newbyteorder('='))
    msg = out if out is not None else Image()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height = height
    msg.width = width
    msg.encoding = encoding
    msg.is_bigendian = 1 if _NATIVE_BIG_ENDIAN else 0
    msg.step = width * info.bytes_per_pixel
    if out is not None and isinstance(msg.data, array.array) and \
            len(msg.data) == contiguous.nbytes:
        np.copyto(np.frombuffer(msg.data, dtype=np.uint8), contiguous.reshape(-1).view(np.uint8))
        return msg
    buffer = array.array('B')
    buffer.frombytes(contiguous.data.cast('B'))
    msg.data = buffer
    return msg


def camera_info_to_intrinsics(msg: CameraInfo) -> CameraIntrinsics:
    """Convert a sensor_msgs/CameraInfo to CameraIntrinsics.

    Raises:
        CameraInfoError: the message is uncalibrated (K all zeros), malformed, or uses binning
            or a region of interest (publish full-resolution calibration instead).
    """
    if int(msg.binning_x) > 1 or int(msg.binning_y) > 1:
        raise CameraInfoError('binning_x' if int(msg.binning_x) > 1 else 'binning_y',
                              f'binning {msg.binning_x}x{msg.binning_y} is not supported; '
                              'publish full-resolution images and calibration')
    roi = msg.roi
    if roi.width or roi.height or roi.x_offset or roi.y_offset:
        raise CameraInfoError('roi', 'a region of interest is not supported; publish the '
                              'full image (roi all zeros)')
    # Drivers that only know K leave the fixed-size R and P all zero: treat them as unset.
    r = tuple(float(v) for v in msg.r)
    p = tuple(float(v) for v in msg.p)
    return CameraIntrinsics(
        width=int(msg.width),
        height=int(msg.height),
        k=tuple(float(v) for v in msg.k),
        distortion_model=str(msg.distortion_model),
        d=tuple(float(v) for v in msg.d),
        r=r if any(r) else (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
        p=p if any(p) else (),
    )


def intrinsics_to_camera_info(intrinsics: CameraIntrinsics, *, stamp: Time | None = None,
                              frame_id: str = '') -> CameraInfo:
    """Build a sensor_msgs/CameraInfo (stamp it like the image it describes)."""
    msg = CameraInfo()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width = intrinsics.width
    msg.height = intrinsics.height
    msg.distortion_model = intrinsics.distortion_model
    msg.d = array.array('d', intrinsics.d)
    msg.k = np.array(intrinsics.k, dtype=np.float64)
    msg.r = np.array(intrinsics.r, dtype=np.float64)
    msg.p = np.array(intrinsics.p, dtype=np.float64)
    return msg
