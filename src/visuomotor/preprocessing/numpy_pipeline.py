"""The deployment and recording implementation of a preprocessing spec (numpy + OpenCV).

`Preprocessor(spec)(frame)` turns one raw camera frame (as returned by
`visuomotor.ros.image_conversion.image_to_numpy`, or a camera backend) into the model input.
All geometry is planned once in the constructor; a call does one crop view, the resize, and
one fused colour/scale/normalise pass (cv2.transform) on the small image.

Resize plans (all reproduce the shared definition in `resample.py`, tested against the torch
twin and the golden vectors):
- area with an integer vertical factor k (e.g. 480 -> 96): exact integer sums of each k
  rows, then OpenCV's area pass across the (k times smaller) float image; the 1/k is folded
  into the colour affine. About twice as fast as resizing the whole float crop.
- other area and nearest: `cv2.resize` on the float crop (identical with and without IPP);
- linear and cubic: the shared tap tables (`cv2.resize` differs between IPP and non-IPP
  builds for these modes, see resample.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from visuomotor.preprocessing.color import affine
from visuomotor.preprocessing.errors import FrameMismatchError
from visuomotor.preprocessing.resample import resample_numpy
from visuomotor.preprocessing.spec import PreprocessSpec

FloatImage = npt.NDArray[np.float32]
RawImage = npt.NDArray[Any]
_INPUT_DTYPE = {'mono16': np.dtype(np.uint16)}
_CV_INTERPOLATION = {'area': cv2.INTER_AREA, 'nearest': cv2.INTER_NEAREST}


def input_dtype(spec: PreprocessSpec) -> np.dtype[Any]:
    """The dtype of raw frames for `spec`: uint8, or uint16 for mono16."""
    return _INPUT_DTYPE.get(spec.input_encoding, np.dtype(np.uint8))


def check_frame(spec: PreprocessSpec, image: object, *, encoding: str | None = None,
                camera: str = '') -> None:
    """Raise FrameMismatchError unless `image` is a frame this spec accepts.

    Args:
        spec: the spec the frame must match.
        image: the raw frame.
        encoding: the frame's encoding if known (e.g. the Image message's); checked against
            the spec's input encoding.
        camera: camera name used in the message.
    """
    who = f'camera {camera!r}: ' if camera else ''
    expected = f'{spec.input_size} {spec.input_encoding}'
    if encoding is not None and encoding != spec.input_encoding:
        raise FrameMismatchError(
            f'{who}frame encoding is {encoding!r} but the model expects {expected} frames. '
            f'Convert on receipt (image_to_numpy(msg, desired_encoding={spec.input_encoding!r}))'
            f' or set the camera driver to publish {spec.input_encoding}.')
    if not isinstance(image, np.ndarray):
        raise FrameMismatchError(f'{who}expected a numpy array frame, got '
                                 f'{type(image).__name__}')
    dtype = input_dtype(spec)
    if image.shape == spec.input_shape + (1,):
        raise FrameMismatchError(f'{who}mono frames are (H, W) arrays, this one has a trailing '
                                 f'channel axis {image.shape}: pass frame[..., 0]')
    if image.shape == spec.input_shape and image.dtype.newbyteorder('=') == dtype and \
            image.dtype != dtype:
        raise FrameMismatchError(f'{who}frame has byte order {image.dtype.str!r}; convert it '
                                 f"with frame.astype('{dtype.str}')")
    if image.shape != spec.input_shape or image.dtype != dtype:
        if image.ndim >= 2:
            got = f'{image.shape[1]}x{image.shape[0]}'
            got += f' with {image.shape[2] if image.ndim == 3 else 1} channel(s)'
        else:
            got = f'an array of shape {image.shape}'
        raise FrameMismatchError(
            f'{who}frame is {got}, {image.dtype}, but the model expects {expected} '
            f'(array shape {spec.input_shape}, {input_dtype(spec)}). Set the camera to '
            f'{spec.input_size} {spec.input_encoding}, or train and export a model whose spec '
            'matches this camera.')


def _row_sums(image: RawImage, factor: int) -> FloatImage:
    """Exact sums of each `factor` consecutive rows of an integer image, as float32."""
    blocks = image.reshape(image.shape[0] // factor, factor, *image.shape[1:])
    accumulator = np.uint16 if image.dtype == np.uint8 and factor <= 257 else np.uint32
    total = blocks[:, 0].astype(accumulator)
    for k in range(1, factor):
        np.add(total, blocks[:, k], out=total)
    return total.astype(np.float32)


def plan_resample(spec: PreprocessSpec) -> tuple[Callable[[RawImage], FloatImage], float]:
    """How to turn the raw crop into the resized float image for `spec`.

    Returns:
        (resample, gain): the resized float32 image is `resample(raw_crop) * gain`; the
        caller folds `gain` into the colour affine instead of spending a pass on it.
    """
    size_in = spec.size_after_crop
    if spec.resize is None or spec.resize.size == size_in:
        return (lambda x: x.astype(np.float32)), 1.0
    out, mode = spec.resize.size, spec.resize.interpolation
    dsize = (out.width, out.height)
    if mode == 'area' and size_in.height % out.height == 0 and size_in.height > out.height:
        factor = size_in.height // out.height

        def area_integer_rows(x: RawImage) -> FloatImage:
            summed = _row_sums(x, factor)
            if out.width == size_in.width:
                return summed
            return np.asarray(cv2.resize(summed, dsize, interpolation=cv2.INTER_AREA))

        return area_integer_rows, 1.0 / factor
    if mode in _CV_INTERPOLATION:
        flag = _CV_INTERPOLATION[mode]
        return (lambda x: np.asarray(cv2.resize(x.astype(np.float32), dsize,
                                                interpolation=flag))), 1.0
    return (lambda x: resample_numpy(x.astype(np.float32), out.height, out.width, mode)), 1.0


class Preprocessor:
    """Applies a PreprocessSpec to raw frames (deterministic: evaluation/deployment mode).

    Example:
        >>> pre = Preprocessor(spec)
        >>> model_input = pre(frame)          # frame: (H, W, C) uint8, model_input: (C, h, w)
    """

    def __init__(self, spec: PreprocessSpec) -> None:
        self.spec = spec
        top, left, height, width = spec.crop.window(spec.input_size)
        self._crop = (slice(top, top + height), slice(left, left + width))
        self._resample, gain = plan_resample(spec)
        e_top, e_left, e_height, e_width = spec.eval_window()
        self._window = (slice(e_top, e_top + e_height), slice(e_left, e_left + e_width))
        weights, bias = affine(spec, gain)
        self._transform = np.concatenate([weights, bias[:, None]], axis=1)
        self._out_dtype = np.dtype(spec.dtype)

    def __call__(self, image: npt.NDArray[Any], *, encoding: str | None = None,
                 camera: str = '') -> npt.NDArray[Any]:
        """Preprocess one frame.

        Args:
            image: raw frame of the spec's input shape and dtype (see `spec.input_shape`).
            encoding: the frame's encoding, if known, checked against the spec.
            camera: camera name for error messages.

        Returns:
            The model input, shape `spec.output_shape`, dtype `spec.dtype`, C-contiguous.

        Raises:
            FrameMismatchError: if the frame's size, dtype or encoding differs from the spec.
        """
        check_frame(self.spec, image, encoding=encoding, camera=camera)
        x = self._resample(image[self._crop])[self._window]
        out = np.asarray(cv2.transform(x, self._transform))
        if out.ndim == 2:
            out = out[:, :, None]
        if self.spec.layout == 'chw':
            out = out.transpose(2, 0, 1)
        return np.ascontiguousarray(out, dtype=self._out_dtype)
