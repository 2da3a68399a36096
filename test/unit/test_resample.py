"""The shared resampling tables reproduce OpenCV's resize, independently of Intel IPP."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from visuomotor.preprocessing.resample import axis_taps, resample_numpy

FLAGS = {'nearest': cv2.INTER_NEAREST, 'linear': cv2.INTER_LINEAR, 'cubic': cv2.INTER_CUBIC,
         'area': cv2.INTER_AREA}
SIZES = [(480, 480, 96, 96), (480, 480, 224, 224), (480, 640, 224, 300), (37, 53, 100, 80),
         (240, 320, 84, 84), (64, 64, 64, 64), (1, 40, 1, 17), (300, 7, 151, 3)]


@pytest.fixture
def generic_opencv() -> Iterator[None]:
    """OpenCV without IPP: its generic code, which builds without IPP (e.g. ARM) run."""
    previous = cv2.ipp.useIPP()
    cv2.ipp.setUseIPP(False)
    yield
    cv2.ipp.setUseIPP(previous)


def _random_sizes(mode: str, count: int) -> list[tuple[int, int, int, int]]:
    rng = np.random.default_rng(7)
    sizes = []
    for _ in range(count):
        h, w = (int(v) for v in rng.integers(1, 400, 2))
        oh, ow = (int(v) for v in rng.integers(1, 300, 2))
        if mode == 'area':
            oh, ow = min(oh, h), min(ow, w)
        sizes.append((h, w, oh, ow))
    return sizes


@pytest.mark.usefixtures('generic_opencv')
@pytest.mark.parametrize('mode', list(FLAGS))
def test_tables_match_opencv_generic_path(mode: str) -> None:
    rng = np.random.default_rng(0)
    for h, w, oh, ow in SIZES + _random_sizes(mode, 60):
        if mode == 'area' and (oh > h or ow > w):
            continue
        image = (rng.random((h, w, 3)) * 255).astype(np.float32)
        expected = cv2.resize(image, (ow, oh), interpolation=FLAGS[mode]).reshape(oh, ow, 3)
        got = resample_numpy(image, oh, ow, mode)  # type: ignore[arg-type]
        # float32 rounding only: 1e-6 of full scale
        np.testing.assert_allclose(got, expected, rtol=0, atol=255 * 1e-6,
                                   err_msg=f'{mode} {h}x{w} -> {oh}x{ow}')


@pytest.mark.parametrize('mode', ['area', 'nearest'])
def test_area_and_nearest_do_not_depend_on_ipp(mode: str) -> None:
    # Deployment keeps cv2.resize for these two modes because of this property.
    rng = np.random.default_rng(1)
    image = (rng.random((480, 640, 3)) * 255).astype(np.float32)
    previous = cv2.ipp.useIPP()
    try:
        outputs = []
        for use_ipp in (True, False):
            cv2.ipp.setUseIPP(use_ipp)
            outputs.append(cv2.resize(image, (224, 168), interpolation=FLAGS[mode]))
    finally:
        cv2.ipp.setUseIPP(previous)
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_weights_sum_to_one_and_taps_stay_inside() -> None:
    for mode in FLAGS:
        for n_in, n_out in [(480, 96), (96, 480), (7, 3), (3, 7), (5, 5), (640, 223)]:
            if mode == 'area' and n_out > n_in:
                continue
            taps, weights = axis_taps(n_in, n_out, mode)  # type: ignore[arg-type]
            assert taps.min() >= 0 and taps.max() < n_in
            np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-6)


def test_area_of_integer_factor_is_a_box_average() -> None:
    taps, weights = axis_taps(480, 96, 'area')
    np.testing.assert_array_equal(taps, np.arange(480).reshape(96, 5))
    np.testing.assert_allclose(weights, 0.2)


def test_area_refuses_to_enlarge() -> None:
    with pytest.raises(ValueError, match='only shrinks'):
        axis_taps(10, 20, 'area')
