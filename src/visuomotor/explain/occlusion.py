"""Occlusion sensitivity: a model-agnostic check of what a saliency map claims.

Gradient maps (FullGrad) can be wrong about a network: they describe its local slope, and
post-processing (rectifying, rescaling) shapes them. Occlusion (Zeiler and Fergus 2014)
asks the network directly: grey out a patch of one camera's image (its per-channel mean, in
every frame of the history), run the policy, and measure how far its output moves (the
Euclidean norm of the change of the whole output). Each pixel gets the mean change of the
patches that cover it. Slow (one forward pass per patch position, batched) but with no
assumptions, so `agreement` with a FullGrad map tells whether that map can be trusted for
this network.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn


def occlusion_sensitivity(module: nn.Module, inputs: Sequence[torch.Tensor], *,
                          camera: int = 0, patch: int = 8, stride: int = 4,
                          batch: int = 64) -> npt.NDArray[np.float32]:
    """How far the output moves when each part of one camera's image is hidden.

    Args:
        module: the policy network (eval mode is set), called as module(*inputs).
        inputs: the network's inputs in the spec's order, batch size 1; cameras first,
            each (1, T, C, H, W).
        camera: which image input to occlude.
        patch: the side of the square patch (pixels of the network input).
        stride: the step between patch positions.
        batch: occluded copies per forward pass.

    Returns:
        (H, W) map in [0, 1] (1: hiding this spot moves the output most).
    """
    image = inputs[camera]
    if image.ndim != 5 or image.shape[0] != 1:
        raise ValueError(f'occlusion_sensitivity: image input {camera} must be (1, T, C, H, W), '
                         f'got {tuple(image.shape)}')
    _, _, _, height, width = image.shape
    if not 0 < patch <= min(height, width) or stride < 1:
        raise ValueError(f'occlusion_sensitivity: patch {patch} and stride {stride} must fit a '
                         f'{width}x{height} image (0 < patch <= side, stride >= 1)')
    module = module.eval()
    fill = image.mean(dim=(3, 4), keepdim=True)
    rows = list(range(0, height - patch + 1, stride))
    cols = list(range(0, width - patch + 1, stride))
    if rows[-1] != height - patch:
        rows.append(height - patch)
    if cols[-1] != width - patch:
        cols.append(width - patch)
    places = [(r, c) for r in rows for c in cols]
    total = np.zeros((height, width), np.float64)
    count = np.zeros((height, width), np.float64)
    with torch.no_grad():
        base = module(*inputs).flatten(1)
        for start in range(0, len(places), batch):
            chunk = places[start:start + batch]
            hidden = image.repeat(len(chunk), 1, 1, 1, 1)
            for i, (r, c) in enumerate(chunk):
                hidden[i, :, :, r:r + patch, c:c + patch] = fill[0]
            args = [hidden if i == camera else x.expand(len(chunk), *x.shape[1:])
                    for i, x in enumerate(inputs)]
            moved = (module(*args).flatten(1) - base).norm(dim=1).numpy()
            for (r, c), change in zip(chunk, moved, strict=True):
                total[r:r + patch, c:c + patch] += change
                count[r:r + patch, c:c + patch] += 1
    sensitivity = total / np.maximum(count, 1)
    low, high = float(sensitivity.min()), float(sensitivity.max())
    return np.asarray((sensitivity - low) / max(high - low, 1e-12), dtype=np.float32)


def agreement(first: npt.NDArray[np.floating], second: npt.NDArray[np.floating]) -> float:
    """Pearson correlation of two maps of the same shape (1: the same picture; nan if flat)."""
    a = np.asarray(first, np.float64).ravel()
    b = np.asarray(second, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f'agreement: maps of {first.shape} and {second.shape} differ in shape')
    with np.errstate(invalid='ignore', divide='ignore'):  # a flat map: nan, no warning
        return float(np.corrcoef(a, b)[0, 1])
