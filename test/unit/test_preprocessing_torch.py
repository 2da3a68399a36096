"""The torch training twin: equals the deployment implementation in evaluation mode (1e-5),
draws honest random crops and colour jitter in training mode."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import random_specs

from visuomotor.errors import FieldError
from visuomotor.preprocessing import (
    Crop,
    FrameMismatchError,
    Preprocessor,
    PreprocessSpec,
    Resize,
    Size,
)
from visuomotor.preprocessing.spec import INPUT_MAX_VALUE
from visuomotor.preprocessing.torch_pipeline import ColorJitter, TorchPreprocessor

TOLERANCE = 1e-5
ENCODINGS = ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16']


def _frame(spec: PreprocessSpec, seed: int) -> np.ndarray:
    dtype = np.uint16 if spec.input_encoding == 'mono16' else np.uint8
    high = INPUT_MAX_VALUE[spec.input_encoding] + 1
    return np.random.default_rng(seed).integers(0, high, spec.input_shape, dtype=dtype)


def _assert_equivalent(spec: PreprocessSpec, seed: int = 0) -> None:
    frame = _frame(spec, seed)
    expected = Preprocessor(spec)(frame)
    got = TorchPreprocessor(spec)(frame).numpy()
    assert got.shape == expected.shape == spec.output_shape
    assert got.dtype == expected.dtype
    if spec.dtype == 'float16':  # compare at float16 resolution
        np.testing.assert_allclose(got.astype(np.float32), expected.astype(np.float32),
                                   rtol=2 ** -10, atol=2 ** -14)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE)


def _spec(encoding: str = 'rgb8', **kwargs: Any) -> PreprocessSpec:
    channels = 1 if kwargs.get('color') == 'gray' else 3
    defaults: dict[str, Any] = {
        'input_height': 60, 'input_width': 80,
        'scale': 1 / 65535 if encoding == 'mono16' else 1 / 255,
        'mean': (0.485, 0.456, 0.406)[:channels], 'std': (0.229, 0.224, 0.225)[:channels],
    }
    return PreprocessSpec(input_encoding=encoding, **{**defaults, **kwargs})


INTERPOLATIONS = ['area', 'nearest', 'linear', 'cubic']


@pytest.mark.parametrize(('encoding', 'interpolation'),
                         list(itertools.product(ENCODINGS, INTERPOLATIONS)))
def test_every_encoding_and_interpolation(encoding: str, interpolation: str) -> None:
    # (27, 35) and (18, 14): integer area factors (the row-sum fast path of deployment)
    sizes = ((30, 40), (17, 23), (27, 35), (18, 14))
    for size in sizes + (() if interpolation == 'area' else ((97, 131),)):
        _assert_equivalent(_spec(encoding, crop=Crop('center', 54, 70),
                                 resize=Resize(*size, interpolation)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ('color', 'layout', 'crop', 'random_crop', 'dtype'),
    list(itertools.product(['rgb', 'bgr', 'gray'], ['chw', 'hwc'],
                           [Crop(), Crop('center', 41, 59), Crop('box', 30, 20, x=13, y=9)],
                           [None, Size(15, 11)], ['float32', 'float16'])))
def test_every_colour_layout_crop_and_dtype(color: str, layout: str, crop: Crop,
                                            random_crop: Size | None, dtype: str) -> None:
    _assert_equivalent(_spec('bgra8', color=color, layout=layout, crop=crop,
                             random_crop=random_crop, dtype=dtype))


@given(spec=random_specs(), seed=st.integers(0, 2 ** 16))
def test_random_specs_on_random_images(spec: PreprocessSpec, seed: int) -> None:
    _assert_equivalent(spec, seed)


@pytest.mark.parametrize(('height', 'width', 'out'), [
    (1080, 1920, (7, 9)), (1080, 1920, (1, 1)), (1080, 1920, (96, 96)), (720, 1280, (84, 84)),
])
def test_large_area_reductions(height: int, width: int, out: tuple[int, int]) -> None:
    _assert_equivalent(_spec(input_height=height, input_width=width, resize=Resize(*out)))


DP = _spec(crop=Crop('center', 60, 60), resize=Resize(32, 32), random_crop=Size(24, 24))


def test_batches_equal_single_frames() -> None:
    frames = np.stack([_frame(DP, seed) for seed in range(4)])
    batch = TorchPreprocessor(DP)(torch.from_numpy(frames))
    assert batch.shape == (4, *DP.output_shape)
    for i in range(4):
        np.testing.assert_allclose(batch[i].numpy(), Preprocessor(DP)(frames[i]),
                                   atol=TOLERANCE)


def test_training_crops_are_random_windows_of_the_resized_image() -> None:
    frame = _frame(DP, 1)
    full_spec = _spec(crop=Crop('center', 60, 60), resize=Resize(32, 32))
    full = Preprocessor(full_spec)(frame)  # (3, 32, 32): every window of it is a valid crop
    batch = torch.from_numpy(np.stack([frame] * 16))
    pre = TorchPreprocessor(DP)
    out = pre(batch, train=True, generator=torch.Generator().manual_seed(5)).numpy()
    offsets = set()
    for sample in out:
        matches = [(dy, dx) for dy in range(9) for dx in range(9)
                   if np.allclose(sample, full[:, dy:dy + 24, dx:dx + 24], atol=TOLERANCE)]
        assert matches, 'a training crop is not a window of the resized image'
        offsets.add(matches[0])
    assert len(offsets) > 4, f'random crops barely vary: {offsets}'
    again = pre(batch, train=True, generator=torch.Generator().manual_seed(5)).numpy()
    np.testing.assert_array_equal(out, again)  # reproducible with the same generator


def test_colour_jitter_only_in_training_and_stays_in_range() -> None:
    spec = _spec(mean=(0.0,) * 3, std=(1.0,) * 3)
    frames = torch.from_numpy(np.stack([_frame(spec, seed) for seed in range(8)]))
    pre = TorchPreprocessor(spec, jitter=ColorJitter(0.4, 0.4, 0.4))
    evaluated = pre(frames).numpy()
    np.testing.assert_allclose(evaluated, TorchPreprocessor(spec)(frames).numpy())
    trained = pre(frames, train=True, generator=torch.Generator().manual_seed(0)).numpy()
    assert np.abs(trained - evaluated).mean() > 0.01
    assert trained.min() >= 0.0 and trained.max() <= 1.0


def test_jitter_factors_are_validated() -> None:
    with pytest.raises(ValueError, match='jitter.brightness'):
        ColorJitter(brightness=1.5)


def test_bad_devices_and_arrays_are_refused_clearly() -> None:
    with pytest.raises(FieldError) as error:
        TorchPreprocessor(DP, device='gpu0')
    assert error.value.field == 'device'
    pre = TorchPreprocessor(DP)
    for bad in (np.zeros((1, 1, 60, 80, 3), dtype=object), np.zeros((2, 60, 80, 3), '>u2'),
                np.zeros((2, 60, 80, 3), np.float32)):
        with pytest.raises(FrameMismatchError):
            pre(bad)


def test_mismatched_frames_are_refused() -> None:
    pre = TorchPreprocessor(DP)
    with pytest.raises(FrameMismatchError, match='80x60 rgb8'):
        pre(torch.zeros((2, 61, 80, 3), dtype=torch.uint8))
    with pytest.raises(FrameMismatchError):
        pre(torch.zeros((60, 80, 3), dtype=torch.float32))
    with pytest.raises(FrameMismatchError):
        pre(np.zeros((60, 80), dtype=np.uint8))
