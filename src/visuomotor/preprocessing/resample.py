"""1-D resampling taps and weights that reproduce OpenCV's `cv2.resize` on float images.

Why not simply call `cv2.resize` everywhere: for linear and cubic on float images its result
depends on the build. x86 wheels route them through Intel IPP, whose weights differ from
OpenCV's generic code (used on ARM, e.g. Jetson) by up to 4e-5 of full scale, about 2e-4
after normalisation. These tables are OpenCV's generic-path definition, so the numbers are the
same on every machine; area and nearest give identical results on both paths and deployment
keeps `cv2.resize` for them (the unit tests check both claims).

`cv2.resize` is separable for the modes we use: each output sample along an axis is a
weighted sum of a few input samples. This module computes, for one axis, the input indices
(`taps`, shape (out, K)) and `weights` (shape (out, K)) exactly as OpenCV's resize.cpp
defines them, so a second implementation (the torch twin used in training, on CPU or GPU)
produces the same numbers as the OpenCV path used in deployment. The unit tests check these
tables against the installed OpenCV for many sizes and every mode.

OpenCV semantics reproduced (float32 images):
- nearest: src = floor(dst * in/out), clipped to the last sample;
- linear: half-pixel centres, src = (dst + 0.5) * in/out - 0.5 in float32, borders replicated;
- cubic: the same centres, Keys kernel with a = -0.75 evaluated in float32, 4 taps, borders
  replicated;
- area (shrinking only): each output sample averages the input cells it covers, with
  fractional weights at the edges of the cell.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from visuomotor.preprocessing.spec import Interpolation

_CUBIC_A = -0.75


def _f32(value: float) -> float:
    return float(np.float32(value))


def _cubic_coefficients(x: float) -> tuple[float, float, float, float]:
    # Evaluated in float32 arithmetic, as OpenCV does for float images.
    f = np.float32
    a, one, t = f(_CUBIC_A), f(1.0), f(x)
    c0 = ((a * (t + one) - f(5.0) * a) * (t + one) + f(8.0) * a) * (t + one) - f(4.0) * a
    c1 = ((a + f(2.0)) * t - (a + f(3.0))) * t * t + one
    c2 = ((a + f(2.0)) * (one - t) - (a + f(3.0))) * (one - t) * (one - t) + one
    c3 = one - c0 - c1 - c2
    return (float(c0), float(c1), float(c2), float(c3))


def _axis_rows(in_size: int, out_size: int, mode: Interpolation) -> list[list[tuple[int, float]]]:
    """For each output index, the list of (input index, weight)."""
    scale = 1.0 / (out_size / in_size)
    rows: list[list[tuple[int, float]]] = []
    last = in_size - 1
    for dst in range(out_size):
        if mode == 'nearest':
            rows.append([(min(math.floor(dst * scale), last), 1.0)])
        elif mode == 'linear':
            fx = _f32((dst + 0.5) * scale - 0.5)
            sx = math.floor(fx)
            fx = _f32(fx - sx)
            if sx < 0:
                fx, sx = 0.0, 0
            if sx >= last:
                fx, sx = 0.0, last
            rows.append([(sx, _f32(1.0 - fx)), (min(sx + 1, last), fx)])
        elif mode == 'cubic':
            fx = _f32((dst + 0.5) * scale - 0.5)
            sx = math.floor(fx)
            fx = _f32(fx - sx)
            coefficients = _cubic_coefficients(fx)
            rows.append([(min(max(sx - 1 + k, 0), last), coefficients[k]) for k in range(4)])
        elif mode == 'area':
            if out_size > in_size:
                raise ValueError(f'area resampling only shrinks ({in_size} -> {out_size})')
            fsx1 = dst * scale
            fsx2 = fsx1 + scale
            cell = min(scale, in_size - fsx1)
            sx1 = math.ceil(fsx1)
            sx2 = min(math.floor(fsx2), last)
            sx1 = min(sx1, sx2)
            row: list[tuple[int, float]] = []
            if sx1 - fsx1 > 1e-3:
                row.append((sx1 - 1, _f32((sx1 - fsx1) / cell)))
            row.extend((sx, _f32(1.0 / cell)) for sx in range(sx1, sx2))
            if fsx2 - sx2 > 1e-3:
                row.append((sx2, _f32(min(min(fsx2 - sx2, 1.0), cell) / cell)))
            rows.append(row)
        else:
            raise ValueError(f'unknown interpolation {mode!r}')
    return rows


@lru_cache(maxsize=64)
def axis_taps(in_size: int, out_size: int, mode: Interpolation
              ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Taps and weights resampling one axis from `in_size` to `out_size` samples.

    Returns:
        (taps, weights): int64 indices and float32 weights, both of shape (out_size, K);
        rows shorter than K are padded with index 0 and weight 0. Read-only arrays.
    """
    if in_size <= 0 or out_size <= 0:
        raise ValueError(f'sizes must be positive, got {in_size} -> {out_size}')
    if in_size == out_size:
        rows = [[(i, 1.0)] for i in range(in_size)]
    else:
        rows = _axis_rows(in_size, out_size, mode)
    width = max(len(row) for row in rows)
    taps = np.zeros((out_size, width), dtype=np.int64)
    weights = np.zeros((out_size, width), dtype=np.float32)
    for i, row in enumerate(rows):
        for k, (index, weight) in enumerate(row):
            taps[i, k] = index
            weights[i, k] = weight
    taps.setflags(write=False)
    weights.setflags(write=False)
    return taps, weights


def _resample_rows(image: npt.NDArray[np.float32], taps: npt.NDArray[np.int64],
                   weights: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Resample axis 0: out[i] = sum_k weights[i, k] * image[taps[i, k]] (row gathers)."""
    tail = (None,) * (image.ndim - 1)
    out = np.take(image, taps[:, 0], axis=0)
    out *= weights[(slice(None), 0) + tail]
    for k in range(1, taps.shape[1]):
        gathered = np.take(image, taps[:, k], axis=0)
        gathered *= weights[(slice(None), k) + tail]
        out += gathered
    return out


def resample_numpy(image: npt.NDArray[np.float32], out_height: int, out_width: int,
                   mode: Interpolation) -> npt.NDArray[np.float32]:
    """Resize an (H, W[, C]) float32 image with the tap tables.

    Height first, then width (after one transpose, so both passes gather whole rows, which is
    several times faster than gathering columns). The torch twin uses the same order.
    """
    rows_taps, rows_weights = axis_taps(image.shape[0], out_height, mode)
    cols_taps, cols_weights = axis_taps(image.shape[1], out_width, mode)
    vertical = _resample_rows(image, rows_taps, rows_weights)
    transposed = np.ascontiguousarray(np.swapaxes(vertical, 0, 1))
    return np.swapaxes(_resample_rows(transposed, cols_taps, cols_weights), 0, 1)
