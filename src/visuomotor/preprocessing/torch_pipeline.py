"""The training implementation of a preprocessing spec (torch, CPU or GPU).

`TorchPreprocessor(spec)(frames, train=...)` takes a batch of raw frames (uint8/uint16, as
recorded) and returns model inputs. In evaluation mode (`train=False`) it reproduces the
deployment implementation (`Preprocessor`) within 1e-5 for float32 outputs (float16 outputs:
within one float16 step); tested on random images for every option, on large reductions,
and against the golden vectors under test/data. In training mode the `random_crop`
window is drawn per sample and an optional colour jitter is applied.

Resizing uses the shared tap tables (`resample.axis_taps`) as gathers and multiply-adds in
float32, never a matrix product, so TF32 or reduced-precision matmul settings on a GPU cannot
change the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from visuomotor.errors import FieldError
from visuomotor.preprocessing.color import LUMA_RGB, affine, selection_matrix
from visuomotor.preprocessing.errors import FrameMismatchError, SpecError
from visuomotor.preprocessing.numpy_pipeline import check_frame, input_dtype
from visuomotor.preprocessing.resample import axis_taps
from visuomotor.preprocessing.spec import INPUT_MAX_VALUE, PreprocessSpec

_TORCH_INPUT_DTYPE = {np.dtype(np.uint8): torch.uint8, np.dtype(np.uint16): torch.uint16}
# Up to this many taps per output sample, float32 accumulation stays well within 1e-6.
_FLOAT32_TAPS = 16


@dataclass(frozen=True)
class ColorJitter:
    """Training-time photometric augmentation; each factor is drawn per sample.

    Attributes:
        brightness: multiply by a factor uniform in [1 - brightness, 1 + brightness].
        contrast: blend with the image's mean luma by a factor in [1 - c, 1 + c].
        saturation: blend with per-pixel luma by a factor in [1 - s, 1 + s] (colour only).
    """

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0

    def __post_init__(self) -> None:
        for name in ('brightness', 'contrast', 'saturation'):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or \
                    not 0.0 <= value < 1.0:
                raise SpecError(f'jitter.{name}', f'must be in [0, 1), got {value!r}')

    @property
    def active(self) -> bool:
        """Whether any factor is non-zero."""
        return (self.brightness, self.contrast, self.saturation) != (0.0, 0.0, 0.0)


class TorchPreprocessor:
    """Applies a PreprocessSpec to batches of raw frames with torch.

    Args:
        spec: the preprocessing spec.
        device: where to compute (frames are moved there); default CPU.
        jitter: colour jitter applied only when called with `train=True`.
    """

    def __init__(self, spec: PreprocessSpec, *, device: torch.device | str | None = None,
                 jitter: ColorJitter | None = None) -> None:
        self.spec = spec
        try:
            self.device = torch.device(device) if device is not None else torch.device('cpu')
        except (RuntimeError, TypeError):
            raise FieldError('device', f'{device!r} is not a torch device; use "cpu", "cuda" or '
                             '"cuda:<index>"') from None
        self.jitter = jitter if jitter is not None else ColorJitter()
        self._crop = spec.crop.window(spec.input_size)
        self._resize_taps: list[tuple[torch.Tensor, torch.Tensor]] = []
        after_crop = spec.size_after_crop
        if spec.resize is not None and spec.resize.size != after_crop:
            for in_size, out_size in ((after_crop.height, spec.resize.height),
                                      (after_crop.width, spec.resize.width)):
                taps, weights = axis_taps(in_size, out_size, spec.resize.interpolation)
                self._resize_taps.append((
                    torch.as_tensor(np.array(taps), device=self.device),
                    torch.as_tensor(np.array(weights), device=self.device)))
        weights, bias = affine(spec)
        self._weights = weights.tolist()
        self._bias = bias.tolist()
        self._selection = selection_matrix(spec).astype(np.float32).tolist()
        self._max_value = INPUT_MAX_VALUE[spec.input_encoding] * spec.scale

    def __call__(self, frames: torch.Tensor | np.ndarray[Any, Any], *, train: bool = False,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Preprocess one frame (spec.input_shape) or a batch (B, *spec.input_shape).

        Args:
            frames: raw frames, uint8 (uint16 for mono16), on any device.
            train: draw random crops and colour jitter; otherwise deterministic (evaluation).
            generator: CPU torch.Generator for the random draws (reproducible augmentation).

        Returns:
            float tensor of shape spec.output_shape (or (B, *spec.output_shape)) on `device`.

        Raises:
            FrameMismatchError: if the frames' shape or dtype differs from the spec.
        """
        x = self._as_batch(frames)
        batched = x.dim() == len(self.spec.input_shape) + 1
        if not batched:
            x = x.unsqueeze(0)
        top, left, height, width = self._crop
        # Move the raw crop first and convert on the device: 4x fewer bytes to a GPU.
        x = x[:, top:top + height, left:left + width].to(self.device).to(torch.float32)
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # (B, C_in, H, W)
        if self._resize_taps:
            x = _resample_axis(x, *self._resize_taps[0], dim=2)
            x = _resample_axis(x, *self._resize_taps[1], dim=3)
        x = self._random_crop(x, generator) if train else self._eval_crop(x)
        if train and self.jitter.active:
            x = self._jittered(x, generator)
        else:
            x = _linear_channels(x, self._weights, self._bias)
        if self.spec.layout == 'hwc':
            x = x.permute(0, 2, 3, 1)
        x = x.contiguous().to(getattr(torch, self.spec.dtype))
        return x if batched else x[0]

    def _as_batch(self, frames: torch.Tensor | np.ndarray[Any, Any]) -> torch.Tensor:
        expected_dtype = _TORCH_INPUT_DTYPE[input_dtype(self.spec)]
        if isinstance(frames, np.ndarray):
            if frames.ndim == len(self.spec.input_shape) + 1 and len(frames):
                check_frame(self.spec, frames[0])
            else:
                check_frame(self.spec, frames)
            frames = torch.from_numpy(np.ascontiguousarray(frames))
        if not isinstance(frames, torch.Tensor):
            raise FrameMismatchError(f'expected a torch tensor or numpy array of frames, got '
                                     f'{type(frames).__name__}')
        shape = tuple(frames.shape)
        expected = self.spec.input_shape
        if frames.dtype != expected_dtype or shape[-len(expected):] != expected or \
                len(shape) not in (len(expected), len(expected) + 1):
            raise FrameMismatchError(
                f'frames of shape {shape} and dtype {frames.dtype} do not match the spec: '
                f'expected {expected} or (B, *{expected}) {expected_dtype} '
                f'({self.spec.input_size} {self.spec.input_encoding}). Re-record or re-export '
                'with a spec that matches the data.')
        return frames

    def _eval_crop(self, x: torch.Tensor) -> torch.Tensor:
        top, left, height, width = self.spec.eval_window()
        return x[:, :, top:top + height, left:left + width]

    def _random_crop(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        size = self.spec.random_crop
        if size is None:
            return x
        batch, channels, height, width = x.shape
        offset_y = torch.randint(0, height - size.height + 1, (batch,), generator=generator)
        offset_x = torch.randint(0, width - size.width + 1, (batch,), generator=generator)
        rows = (offset_y[:, None] + torch.arange(size.height)).to(x.device)
        cols = (offset_x[:, None] + torch.arange(size.width)).to(x.device)
        x = x.gather(2, rows[:, None, :, None].expand(batch, channels, size.height, width))
        return x.gather(3, cols[:, None, None, :].expand(batch, channels, size.height,
                                                         size.width))

    def _jittered(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        spec = self.spec
        x = _linear_channels(x, [[v * spec.scale for v in row] for row in self._selection],
                             [0.0] * len(self._selection))
        batch = x.shape[0]

        def factors(amount: float) -> torch.Tensor:
            draw = torch.rand(batch, generator=generator) * 2.0 - 1.0
            return (1.0 + amount * draw).to(x.device)[:, None, None, None]

        luma_weights = _luma_weights(spec.color)
        x = x * factors(self.jitter.brightness)
        luma = _linear_channels(x, [luma_weights], [0.0])
        mean_luma = luma.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean_luma) * factors(self.jitter.contrast) + mean_luma
        if spec.color != 'gray':
            luma = _linear_channels(x, [luma_weights], [0.0])
            x = (x - luma) * factors(self.jitter.saturation) + luma
        x = x.clamp(0.0, self._max_value)
        mean = torch.tensor(spec.mean, device=x.device)[None, :, None, None]
        std = torch.tensor(spec.std, device=x.device)[None, :, None, None]
        return (x - mean) / std


def _luma_weights(color: str) -> list[float]:
    if color == 'gray':
        return [1.0]
    by_name = dict(zip('rgb', LUMA_RGB, strict=True))
    return [by_name[name] for name in color]


def _resample_axis(x: torch.Tensor, taps: torch.Tensor, weights: torch.Tensor,
                   dim: int) -> torch.Tensor:
    """out.select(dim, i) = sum_k weights[i, k] * x.select(dim, taps[i, k]).

    Long sums (large area reductions) accumulate in float64, so they stay within float32
    rounding of the exact average, like deployment's exact integer sums.
    """
    shape = [1] * x.dim()
    shape[dim] = -1
    wide = taps.shape[1] > _FLOAT32_TAPS
    if wide:
        x, weights = x.double(), weights.double()
    out = x.index_select(dim, taps[:, 0]) * weights[:, 0].reshape(shape)
    for k in range(1, taps.shape[1]):
        out = out + x.index_select(dim, taps[:, k]) * weights[:, k].reshape(shape)
    return out.float() if wide else out


def _linear_channels(x: torch.Tensor, weights: list[list[float]], bias: list[float]
                     ) -> torch.Tensor:
    """Per-pixel affine map of channels (dim 1), as explicit multiply-adds."""
    outputs = []
    for row, offset in zip(weights, bias, strict=True):
        acc = x[:, 0] * row[0]
        for index in range(1, len(row)):
            if row[index] != 0.0:
                acc = acc + x[:, index] * row[index]
        outputs.append(acc + offset)
    return torch.stack(outputs, dim=1)
