"""FullGrad saliency maps of a policy's cameras (Srinivas and Fleuret 2019; seed 001 III-D).

FullGrad explains a scalar output f of a ReLU network by its full gradient: the input
gradient term |df/dx * x| plus, for every layer with a bias b (convolutions, and the affine
shift of normalisation layers), the bias-gradient term |df/dz * b| over that layer's output
map z. Each term is rectified, rescaled to [0, 1] per image, summed over channels, upsampled
(bilinear) to the image and added up. Only the encoder's spatial layers contribute; the
spatial softmax, the head and the proprio path carry no image positions.

A policy has no class score, so f is the predicted (normalised) action chunk projected on its
own direction, f = <a, a*> / |a*| with a* the prediction held fixed: "what in the image drives
the action the policy is about to take". This is linear in the output, so FullGrad's
completeness still holds; `action_index` explains one action entry of the first chunk row
instead. Denoising policies are explained at the network level: a zero noisy chunk at the
middle diffusion step (the caller builds those inputs).

The maps are deterministic for given weights and inputs (no sampling, unlike SmoothGrad).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as functional
from torch import nn

from visuomotor.explain.feature_points import camera_encoders


def _bias_layers(encoder: nn.Module) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for layer in encoder.modules():
        bias = getattr(layer, 'bias', None)
        if isinstance(layer, nn.Conv2d | nn.GroupNorm | nn.BatchNorm2d) and \
                isinstance(bias, torch.Tensor):
            layers.append(layer)
    return layers


def _rescale(maps: torch.Tensor) -> torch.Tensor:
    """|maps| rescaled to [0, 1] per image (over channels and pixels); (N, C, H, W)."""
    m = maps.abs()
    flat = m.flatten(1)
    low = flat.min(dim=1).values[:, None, None, None]
    high = flat.max(dim=1).values[:, None, None, None]
    return (m - low) / (high - low).clamp_min(1e-12)


class FullGrad:
    """FullGrad saliency for every camera of a registered policy architecture."""

    def __init__(self, module: nn.Module, *, action_index: int | None = None) -> None:
        self.module = module.eval()
        self.encoders = camera_encoders(module)
        self.layers = [_bias_layers(e) for e in self.encoders]
        self.action_index = action_index

    def _target(self, output: torch.Tensor) -> torch.Tensor:
        if self.action_index is not None:
            picked: torch.Tensor = output[:, 0, self.action_index].sum()
            return picked
        direction = output.detach()
        norm = direction.flatten(1).norm(dim=1).clamp_min(1e-12)
        projected: torch.Tensor = ((output * direction).flatten(1).sum(dim=1) / norm).sum()
        return projected

    def __call__(self, inputs: Sequence[torch.Tensor]) -> list[npt.NDArray[np.float32]]:
        """Saliency per camera.

        Args:
            inputs: the network's inputs in the spec's order: per camera (B, T, C, H, W)
                images, then proprio (and, for denoising models, the noisy chunk and step).

        Returns:
            per camera, (B, T, H, W) maps in [0, 1] (1: the most influential pixels).
        """
        cameras = len(self.encoders)
        images = [x.detach().clone().requires_grad_(True) for x in inputs[:cameras]]
        rest = [x.detach() for x in inputs[cameras:]]
        captured: list[list[torch.Tensor]] = [[] for _ in range(cameras)]
        handles = []
        for index, layers in enumerate(self.layers):
            for layer in layers:
                def keep(_m: nn.Module, _i: object, out: torch.Tensor,
                         index: int = index) -> None:
                    captured[index].append(out)
                handles.append(layer.register_forward_hook(keep))
        try:
            with torch.enable_grad():
                output = self.module(*images, *rest)
                outputs = [z for group in captured for z in group]
                grads: tuple[torch.Tensor | None, ...] = torch.autograd.grad(
                    self._target(output), [*images, *outputs], allow_unused=True)
        finally:
            for handle in handles:
                handle.remove()
        image_grads, layer_grads = grads[:cameras], list(grads[cameras:])
        maps = []
        for index in range(cameras):
            x = images[index]
            b, t, c, h, w = x.shape
            flat_x = x.detach().flatten(0, 1)
            grad_x = image_grads[index]
            total = torch.zeros(b * t, 1, h, w, dtype=flat_x.dtype, device=flat_x.device)
            if grad_x is not None:
                total += _rescale(grad_x.flatten(0, 1) * flat_x).sum(1, keepdim=True)
            for layer in self.layers[index]:
                grad_z = layer_grads.pop(0)
                if grad_z is None:
                    continue
                bias: torch.Tensor = getattr(layer, 'bias').detach()  # noqa: B009
                term = _rescale(grad_z * bias.view(1, -1, 1, 1)).sum(1, keepdim=True)
                total += functional.interpolate(term, size=(h, w), mode='bilinear',
                                                align_corners=False)
            maps.append(_rescale(total).reshape(b, t, h, w).cpu().numpy().astype(np.float32))
        return maps
