"""Turn a model input back into a viewable 8-bit image ("what the policy sees")."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.errors import FieldError
from visuomotor.preprocessing.spec import PreprocessSpec

_ENCODING = {'rgb': 'rgb8', 'bgr': 'bgr8', 'gray': 'mono8'}


def to_display_image(model_input: npt.NDArray[Any], spec: PreprocessSpec
                     ) -> tuple[npt.NDArray[np.uint8], str]:
    """Invert normalisation and scale of one model input.

    Args:
        model_input: array of shape `spec.output_shape`.
        spec: the spec that produced it.

    Returns:
        (image, encoding): uint8 (H, W, 3) in the spec's colour order (`rgb8`/`bgr8`) or
        (H, W) `mono8`; values outside the displayable range are clipped.
    """
    try:
        x = np.asarray(model_input, dtype=np.float32)
    except (TypeError, ValueError):
        raise FieldError('model_input', f'is not an array of numbers: {type(model_input).__name__}'
                         ) from None
    if x.shape != spec.output_shape:
        raise FieldError('model_input', f'has shape {x.shape}, but this spec produces '
                         f'{spec.output_shape}: pass one model input of this spec, not a batch')
    if spec.layout == 'chw':
        x = x.transpose(1, 2, 0)
    x = x * np.asarray(spec.std, dtype=np.float32) + np.asarray(spec.mean, dtype=np.float32)
    x = x / np.float32(spec.scale)
    if spec.input_encoding == 'mono16':
        x = x / np.float32(257.0)
    image = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if spec.color == 'gray':
        image = image[:, :, 0]
    return np.ascontiguousarray(image), _ENCODING[spec.color]
