"""The deployment implementation against hand-computed results, and its error messages."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import pytest

from visuomotor.errors import FieldError
from visuomotor.preprocessing import (
    Crop,
    FrameMismatchError,
    Preprocessor,
    PreprocessSpec,
    Resize,
    Size,
    to_display_image,
)

RNG = np.random.default_rng(3)
FRAME = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)
RAW: dict[str, Any] = {'input_height': 48, 'input_width': 64, 'scale': 1.0}


def test_area_resize_averages_blocks() -> None:
    spec = PreprocessSpec(input_encoding='rgb8', **RAW, resize=Resize(24, 32, 'area'))
    out = Preprocessor(spec)(FRAME)
    expected = np.zeros((3, 24, 32))
    for c in range(3):
        for i in range(24):
            for j in range(32):
                expected[c, i, j] = FRAME[2 * i:2 * i + 2, 2 * j:2 * j + 2, c].mean()
    np.testing.assert_allclose(out, expected, atol=1e-4)


@pytest.mark.parametrize(('encoding', 'crop', 'size'), [
    ('rgb8', Crop('center', 480, 480), (96, 96)),      # 5x5 integer factors
    ('rgb8', Crop(), (96, 300)),                       # integer rows, fractional columns
    ('bgra8', Crop('center', 480, 480), (240, 480)),   # rows only
    ('mono16', Crop(), (60, 160)),                     # 16-bit input: 32-bit sums
    ('mono8', Crop(), (160, 213)),
])
def test_area_fast_path_equals_opencv_on_the_float_crop(encoding: str, crop: Crop,
                                                        size: tuple[int, int]) -> None:
    dtype = np.uint16 if encoding == 'mono16' else np.uint8
    channels = {'rgb8': 3, 'bgra8': 4}.get(encoding)
    shape = (480, 640) if channels is None else (480, 640, channels)
    frame = RNG.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    spec = PreprocessSpec(input_encoding=encoding, input_height=480, input_width=640,
                          crop=crop, resize=Resize(*size, 'area'), scale=1.0,
                          color='gray' if channels is None else encoding[:3])
    top, left, height, width = crop.window(spec.input_size)
    window = frame[top:top + height, left:left + width].astype(np.float32)
    expected = cv2.resize(window, size[::-1], interpolation=cv2.INTER_AREA)
    out = Preprocessor(spec)(frame)
    if channels is None:
        np.testing.assert_allclose(out[0], expected, rtol=1e-6)
    else:
        np.testing.assert_allclose(out, expected[..., :3].transpose(2, 0, 1), rtol=1e-6)


def test_box_crop_is_the_exact_window_and_bgr_input_becomes_rgb() -> None:
    spec = PreprocessSpec(input_encoding='bgr8', **RAW, crop=Crop('box', 10, 20, x=5, y=7))
    out = Preprocessor(spec)(FRAME)
    window = FRAME[7:17, 5:25].astype(np.float32)
    np.testing.assert_array_equal(out, window[:, :, ::-1].transpose(2, 0, 1))


def test_scale_and_normalisation() -> None:
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    spec = PreprocessSpec(input_encoding='rgb8', input_height=48, input_width=64, mean=mean,
                          std=std)
    out = Preprocessor(spec)(FRAME)
    expected = (FRAME / 255.0 - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(out, expected.transpose(2, 0, 1), atol=1e-5)


def test_gray_is_bt601_luma_and_alpha_is_ignored() -> None:
    rgba = np.concatenate([FRAME, RNG.integers(0, 256, (48, 64, 1), dtype=np.uint8)], axis=2)
    spec = PreprocessSpec(input_encoding='rgba8', **RAW, color='gray')
    out = Preprocessor(spec)(rgba)
    luma = FRAME @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(out[0], luma, atol=1e-3)
    other_alpha = rgba.copy()
    other_alpha[..., 3] = 0
    np.testing.assert_array_equal(Preprocessor(spec)(other_alpha), out)


def test_mono_input_replicates_into_colour_channels() -> None:
    mono = FRAME[..., 0].copy()
    out = Preprocessor(PreprocessSpec(input_encoding='mono8', **RAW))(mono)
    assert out.shape == (3, 48, 64)
    np.testing.assert_array_equal(out[0], out[2])
    np.testing.assert_array_equal(out[1], mono)


def test_mono16_scale() -> None:
    depth = RNG.integers(0, 65536, (48, 64), dtype=np.uint16)
    spec = PreprocessSpec(input_encoding='mono16', input_height=48, input_width=64,
                          scale=1 / 65535, color='gray')
    np.testing.assert_allclose(Preprocessor(spec)(depth)[0], depth / 65535, atol=1e-6)


def test_eval_crop_is_centred_and_hwc_float16_layout() -> None:
    spec = PreprocessSpec(input_encoding='rgb8', **RAW, random_crop=Size(40, 50), layout='hwc',
                          dtype='float16')
    out = Preprocessor(spec)(FRAME)
    assert out.shape == (40, 50, 3) and out.dtype == np.float16
    np.testing.assert_array_equal(out, FRAME[4:44, 7:57].astype(np.float16))


def test_linear_and_cubic_results_do_not_depend_on_ipp() -> None:
    frame = RNG.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    previous = cv2.ipp.useIPP()
    try:
        for mode in ('linear', 'cubic'):
            spec = PreprocessSpec(input_encoding='rgb8', input_height=480, input_width=640,
                                  resize=Resize(224, 300, mode))
            outputs = []
            for use_ipp in (True, False):
                cv2.ipp.setUseIPP(use_ipp)
                outputs.append(Preprocessor(spec)(frame))
            np.testing.assert_array_equal(outputs[0], outputs[1])
    finally:
        cv2.ipp.setUseIPP(previous)


def test_output_is_contiguous_and_does_not_alias_the_frame() -> None:
    frame = FRAME.copy()
    out = Preprocessor(PreprocessSpec(input_encoding='rgb8', **RAW))(frame)
    assert out.flags.c_contiguous and not np.shares_memory(out, frame)
    out[:] = 0
    np.testing.assert_array_equal(frame, FRAME)


SPEC = PreprocessSpec(input_encoding='rgb8', input_height=480, input_width=640,
                      resize=Resize(96, 96))


@pytest.mark.parametrize(('frame', 'encoding', 'words'), [
    (np.zeros((720, 1280, 3), np.uint8), None, ['1280x720', '640x480 rgb8', 'wrist']),
    (np.zeros((480, 640), np.uint8), None, ['1 channel', '640x480 rgb8']),
    (np.zeros((480, 640, 3), np.float32), None, ['float32', 'uint8']),
    (np.zeros((480, 640, 3), np.uint8), 'bgr8', ["'bgr8'", 'rgb8', 'desired_encoding']),
    ([[0, 1], [2, 3]], None, ['numpy array']),
])
def test_mismatched_frames_are_refused_with_the_fix(frame: Any, encoding: str | None,
                                                    words: list[str]) -> None:
    with pytest.raises(FrameMismatchError) as error:
        Preprocessor(SPEC)(frame, encoding=encoding, camera='wrist')
    for word in words:
        assert word in str(error.value)


def test_mono_and_byte_order_mistakes_get_the_exact_fix() -> None:
    mono = PreprocessSpec(input_encoding='mono16', input_height=4, input_width=6,
                          scale=1 / 65535, color='gray')
    with pytest.raises(FrameMismatchError, match=r'pass frame\[\.\.\., 0\]'):
        Preprocessor(mono)(np.zeros((4, 6, 1), np.uint16))
    with pytest.raises(FrameMismatchError, match=r"frame.astype\('<u2'\)"):
        Preprocessor(mono)(np.zeros((4, 6), '>u2'))


@pytest.mark.parametrize('color', ['rgb', 'bgr', 'gray'])
def test_display_image_inverts_the_normalisation(color: str) -> None:
    spec = PreprocessSpec(input_encoding='rgb8', input_height=48, input_width=64, color=color,
                          crop=Crop('center', 40, 40), mean=(0.3,) * (1 if color == 'gray' else 3),
                          std=(0.2,) * (1 if color == 'gray' else 3))
    shown, encoding = to_display_image(Preprocessor(spec)(FRAME), spec)
    window = FRAME[4:44, 12:52]
    if color == 'rgb':
        assert encoding == 'rgb8'
        np.testing.assert_array_equal(shown, window)
    elif color == 'bgr':
        assert encoding == 'bgr8'
        np.testing.assert_array_equal(shown, window[:, :, ::-1])
    else:
        assert encoding == 'mono8'
        expected = cv2.cvtColor(np.ascontiguousarray(window), cv2.COLOR_RGB2GRAY)
        assert np.abs(shown.astype(int) - expected).max() <= 1


def test_display_image_refuses_batches_and_non_arrays() -> None:
    spec = PreprocessSpec(input_encoding='rgb8', input_height=48, input_width=64)
    model_input = Preprocessor(spec)(FRAME)
    for bad in (model_input[None], 'not an image', model_input[:2]):
        with pytest.raises(FieldError) as error:
            to_display_image(bad, spec)  # type: ignore[arg-type]
        assert error.value.field == 'model_input'
