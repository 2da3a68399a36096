"""Spatial-softmax feature points of a policy, in pixels of the image the network sees.

Levine et al. (seed 002, section IV-A): each of the encoder's last response maps goes through
a softmax over its pixels and the expected (x, y) of that distribution is a feature point.
The encoders (`visuomotor.training.nets`) return them in [-1, 1] over the response map's
positions; this module maps them to the network input's pixels through the encoder's
receptive-field geometry (the centre of map position (i, j) sits at `offset + stride * (i, j)`
input pixels), so a point drawn on the model input lands where the encoder looked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn


def camera_encoders(module: nn.Module) -> list[nn.Module]:
    """One encoder per camera, in the spec's camera order, for the registered architectures.

    Raises:
        ValueError: the module has no per-camera encoders with feature points.
    """
    encoders = getattr(module, 'encoders', None)
    if encoders is None:
        encoders = getattr(getattr(module, 'condition', None), 'encoders', None)
    if encoders is None or not all(hasattr(e, 'feature_points') for e in encoders):
        raise ValueError(f'{type(module).__name__} has no spatial-softmax encoders: feature '
                         'points exist only for the levine and resnet18_gn encoders')
    return list(encoders)


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


@dataclass(frozen=True)
class MapGeometry:
    """Where the response map's positions sit in the input image (pixels, per axis x, y)."""

    offset_px: tuple[float, float]
    stride_px: tuple[float, float]
    map_size: tuple[int, int]  # (width, height) of the response map

    def to_pixels(self, points: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        """(..., 2) points in [-1, 1] over the map -> (..., 2) input pixel coordinates."""
        p = np.asarray(points, dtype=np.float64)
        out = np.empty_like(p)
        for axis in (0, 1):
            span = (self.map_size[axis] - 1) * self.stride_px[axis]
            out[..., axis] = self.offset_px[axis] + (p[..., axis] + 1.0) / 2.0 * span
        return out


def map_geometry(encoder: nn.Module) -> MapGeometry:
    """The receptive-field centres of the encoder's last map in its input (main path only).

    Walks the convolutions and poolings in order, skipping residual shortcuts (`down`), which
    keep the main path's geometry.
    """
    offset, jump = [0.0, 0.0], [1.0, 1.0]
    for name, layer in encoder.named_modules():
        if '.down' in f'.{name}' or not isinstance(layer, nn.Conv2d | nn.MaxPool2d):
            continue
        kernel, stride = _pair(layer.kernel_size), _pair(layer.stride)
        padding = _pair(layer.padding)  # type: ignore[arg-type]
        for axis in (0, 1):  # torch orders (h, w); ours is (x, y)
            k, s, p = kernel[1 - axis], stride[1 - axis], padding[1 - axis]
            offset[axis] += ((k - 1) / 2.0 - p) * jump[axis]
            jump[axis] *= s
    grid: torch.Tensor = encoder.softmax.grid  # type: ignore[union-attr,assignment]
    # (h * w, 2): the map's positions, x then y
    w = int(torch.unique(grid[:, 0]).numel())
    h = int(torch.unique(grid[:, 1]).numel())
    return MapGeometry((offset[0], offset[1]), (jump[0], jump[1]), (w, h))


def feature_points_px(module: nn.Module, images: Sequence[torch.Tensor]
                      ) -> list[npt.NDArray[np.float64]]:
    """Feature points per camera, in input pixels.

    Args:
        module: a registered architecture (`training.nets`), in eval mode.
        images: per camera, (B, T, C, H, W) network inputs (the preprocessed frames).

    Returns:
        per camera, (B, T, K, 2) pixel coordinates (x right, y down) in the network input.
    """
    out = []
    with torch.no_grad():
        for encoder, frames in zip(camera_encoders(module), images, strict=True):
            b, t = frames.shape[:2]
            points = encoder.feature_points(frames.flatten(0, 1))  # type: ignore[operator]
            geometry = map_geometry(encoder)
            out.append(geometry.to_pixels(points.reshape(b, t, -1, 2).cpu().numpy()))
    return out
