"""Golden vectors: both implementations reproduce the recorded outputs of fixed inputs.

The files (test/data/preprocessing_golden) were written by the deployment implementation, so
they pin behaviour against regressions (a library upgrade that changes OpenCV, numpy or torch
numerics fails here: investigate before regenerating, deployed models depend on it). The
independent check of the numbers themselves is test_resample.py (against OpenCV) and the
hand-computed cases of test_preprocessing_numpy.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from support import REPO
from visuomotor.preprocessing import Preprocessor, PreprocessSpec
from visuomotor.preprocessing.torch_pipeline import TorchPreprocessor

GOLDEN = sorted((REPO / 'test' / 'data' / 'preprocessing_golden').glob('*.npz'))


def _load(path: Path) -> tuple[PreprocessSpec, str, np.ndarray, np.ndarray]:
    with np.load(path) as data:
        return (PreprocessSpec.from_json(str(data['spec'])), str(data['spec_hash']),
                data['input'], data['output'])


def test_golden_set_covers_every_option() -> None:
    specs = [_load(path)[0] for path in GOLDEN]
    assert len(specs) >= 6
    assert {s.input_encoding for s in specs} >= {'rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8',
                                                 'mono16'}
    assert {s.resize.interpolation for s in specs if s.resize} == {'area', 'nearest', 'linear',
                                                                   'cubic'}
    assert {s.crop.mode for s in specs} == {'none', 'center', 'box'}
    assert {s.color for s in specs} == {'rgb', 'bgr', 'gray'}
    assert {s.layout for s in specs} == {'chw', 'hwc'}
    assert {s.dtype for s in specs} == {'float32', 'float16'}
    assert any(s.random_crop for s in specs)


@pytest.mark.parametrize('path', GOLDEN, ids=[p.stem for p in GOLDEN])
def test_both_implementations_reproduce_the_golden_output(path: Path) -> None:
    spec, spec_hash, frame, expected = _load(path)
    assert spec.spec_hash() == spec_hash
    tolerance = 1e-5 if spec.dtype == 'float32' else 2 ** -10
    deployed = Preprocessor(spec)(frame)
    trained = TorchPreprocessor(spec)(frame).numpy()
    for got in (deployed, trained):
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_allclose(got.astype(np.float32), expected.astype(np.float32),
                                   rtol=tolerance if spec.dtype != 'float32' else 0,
                                   atol=tolerance)
