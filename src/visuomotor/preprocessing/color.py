"""The colour step as one affine map, shared by the numpy and torch implementations.

Output channel c = sum_i weights[c, i] * input_i + bias[c], where the input channels are the
raw frame's (in its own order, alpha included) and the map folds together channel
selection or BT.601 luma, `scale`, and `(x - mean) / std`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from visuomotor.preprocessing.spec import INPUT_CHANNEL_ORDER, PreprocessSpec

# ITU-R BT.601 luma, as OpenCV's RGB2GRAY.
LUMA_RGB = (0.299, 0.587, 0.114)


def selection_matrix(spec: PreprocessSpec) -> npt.NDArray[np.float64]:
    """(C_out, C_in) map from raw channels to output channels, before scale and normalisation.

    Rows pick a channel (`rgb` / `bgr` output), average with luma weights (`gray` output from
    colour), or replicate the single channel of a mono frame.
    """
    order = INPUT_CHANNEL_ORDER[spec.input_encoding]
    c_in = spec.input_channels
    c_out = spec.output_channels
    matrix = np.zeros((c_out, c_in), dtype=np.float64)
    if order == 'mono':
        matrix[:, 0] = 1.0
        return matrix
    index = {name: order.index(name) for name in 'rgb'}
    if spec.color == 'gray':
        for name, weight in zip('rgb', LUMA_RGB, strict=True):
            matrix[0, index[name]] = weight
    else:
        for row, name in enumerate(spec.color):
            matrix[row, index[name]] = 1.0
    return matrix


def affine(spec: PreprocessSpec, gain: float = 1.0
           ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """(weights (C_out, C_in), bias (C_out,)) of the whole colour + scale + normalise step.

    Args:
        spec: the preprocessing spec.
        gain: an extra factor on the input (a resize that left its 1/k to this step).
    """
    std = np.asarray(spec.std, dtype=np.float64)
    mean = np.asarray(spec.mean, dtype=np.float64)
    channel_gain = gain * spec.scale / std
    weights = selection_matrix(spec) * channel_gain[:, None]
    bias = -mean / std
    return weights.astype(np.float32), bias.astype(np.float32)
