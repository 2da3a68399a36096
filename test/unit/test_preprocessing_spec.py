"""The preprocessing spec: validation, JSON, hash, derived shapes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from strategies import random_specs

from visuomotor.preprocessing import (
    Crop,
    PreprocessSpec,
    Resize,
    Size,
    SpecError,
    load_spec,
    save_spec,
)

BASE: dict[str, Any] = {'input_encoding': 'rgb8', 'input_height': 480, 'input_width': 640}
DP_STYLE = PreprocessSpec(**BASE, crop=Crop('center', 480, 480), resize=Resize(96, 96),
                          random_crop=Size(84, 84), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def test_output_shape_follows_every_step() -> None:
    assert DP_STYLE.output_shape == (3, 84, 84)
    assert PreprocessSpec(**BASE, color='gray', layout='hwc').output_shape == (480, 640, 1)
    assert DP_STYLE.crop.window(DP_STYLE.input_size) == (0, 80, 480, 480)
    assert DP_STYLE.eval_window() == (6, 6, 84, 84)


def test_centre_crop_of_odd_margin_leaves_extra_pixel_bottom_right() -> None:
    assert Crop('center', 3, 3).window(Size(6, 6)) == (1, 1, 3, 3)


def test_json_round_trip_and_stable_hash(tmp_path: Path) -> None:
    path = tmp_path / 'spec.json'
    save_spec(DP_STYLE, path)
    again = load_spec(path)
    assert again == DP_STYLE
    assert again.spec_hash() == DP_STYLE.spec_hash()
    # The canonical form is part of every exported model: a change here changes every hash.
    assert DP_STYLE.spec_hash() == 'af59872ea0e91b6a'


def test_defaults_are_written_out_so_equal_specs_hash_equal() -> None:
    implicit = PreprocessSpec(**BASE)
    explicit = PreprocessSpec(**BASE, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    assert implicit == explicit and implicit.spec_hash() == explicit.spec_hash()
    assert json.loads(implicit.to_json())['mean'] == [0.0, 0.0, 0.0]


def test_any_change_changes_the_hash() -> None:
    variants = [
        PreprocessSpec(**BASE),
        PreprocessSpec(**BASE, color='bgr'),
        PreprocessSpec(**BASE, resize=Resize(240, 320)),
        PreprocessSpec(**BASE, resize=Resize(240, 320, 'linear')),
        PreprocessSpec(**BASE, crop=Crop('box', 400, 400, x=10)),
        PreprocessSpec(**BASE, scale=1.0),
        PreprocessSpec(**BASE, layout='hwc'),
        PreprocessSpec(**BASE, dtype='float16'),
    ]
    assert len({spec.spec_hash() for spec in variants}) == len(variants)


@pytest.mark.parametrize(('kwargs', 'field'), [
    ({'input_encoding': 'yuv422'}, 'input.encoding'),
    ({'input_height': 0}, 'input.height'),
    ({'crop': Crop('center', 500, 500)}, 'crop'),
    ({'crop': Crop('box', 100, 100, x=600)}, 'crop'),
    ({'resize': Resize(960, 1280, 'area')}, 'resize.interpolation'),
    ({'random_crop': Size(500, 500)}, 'random_crop'),
    ({'mean': (0.5, 0.5)}, 'mean'),
    ({'std': (0.5, 0.0, 0.5)}, 'std[1]'),
    ({'std': (0.5, float('nan'), 0.5)}, 'std[1]'),
    ({'scale': -1.0}, 'scale'),
    ({'color': 'hsv'}, 'color'),
])
def test_invalid_specs_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as error:
        PreprocessSpec(**{**BASE, **kwargs})
    assert error.value.field == field


def test_area_refusal_says_how_to_enlarge() -> None:
    with pytest.raises(SpecError, match='use "linear" or "cubic"'):
        PreprocessSpec(**BASE, resize=Resize(960, 1280, 'area'))


def _edited(**changes: Any) -> dict[str, Any]:
    data = DP_STYLE.to_dict()
    for key, value in changes.items():
        section, _, name = key.partition('__')
        if name:
            data[section][name] = value
        elif value is None:
            del data[section]
        else:
            data[section] = value
    return data


@pytest.mark.parametrize(('data', 'field'), [
    (_edited(colour='rgb'), 'colour'),                       # typo of a field name
    (_edited(resize__interp='area'), 'resize.interp'),
    (_edited(input=None), 'input'),                          # missing section
    (_edited(input__height='480'), 'input.height'),           # wrong type
    (_edited(resize__height=0), 'resize.height'),
    (_edited(random_crop__width=True), 'random_crop.width'),
    (_edited(version=2), 'version'),
    (_edited(format='something.else'), 'format'),
    (_edited(mean=[0.5, 'x', 0.5]), 'mean[1]'),
])
def test_broken_json_names_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as error:
        PreprocessSpec.from_dict(data)
    assert error.value.field == field


def test_unreadable_or_invalid_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(tmp_path / 'missing.json')
    assert 'missing.json' in error.value.field
    bad = tmp_path / 'bad.json'
    bad.write_text('{"version": 1,')
    with pytest.raises(SpecError, match='not valid JSON'):
        load_spec(bad)


def test_describe_lists_the_steps() -> None:
    text = DP_STYLE.describe()
    for part in ('640x480 rgb8', 'crop 480x480 at (80,0)', 'resize 96x96 (area)',
                 'random crop 84x84', 'CHW float32 (3, 84, 84)'):
        assert part in text


@given(spec=random_specs())
def test_every_valid_spec_survives_json_with_the_same_hash(spec: PreprocessSpec) -> None:
    again = PreprocessSpec.from_json(spec.to_json())
    assert again == spec
    assert again.spec_hash() == spec.spec_hash()
    assert again.to_json() == spec.to_json()


def test_numbers_are_normalised_so_the_hash_does_not_depend_on_their_type() -> None:
    as_int = PreprocessSpec(**{**BASE, 'scale': 1})
    as_float = PreprocessSpec(**{**BASE, 'scale': 1.0})
    numpy_mean = PreprocessSpec(**BASE, mean=(np.float32(0.5),) * 3)
    assert as_int.spec_hash() == as_float.spec_hash()
    assert numpy_mean.mean == (0.5, 0.5, 0.5)
    with pytest.raises(SpecError):
        Crop('none', height=0.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(('data', 'field'), [
    (_edited(scale=10**400), 'scale'),
    (_edited(mean=[10**400, 0, 0]), 'mean[0]'),
    ({**_edited(), 1: 2, 'zz': 3}, '1'),
])
def test_overflowing_numbers_and_odd_keys_are_spec_errors(data: dict[Any, Any],
                                                          field: str) -> None:
    with pytest.raises(SpecError) as error:
        PreprocessSpec.from_dict(data)
    assert error.value.field == field


@pytest.mark.parametrize('kwargs', [
    {'std': (1e-300,) * 3},
    {'input_encoding': 'mono16', 'scale': 1.0, 'color': 'gray', 'dtype': 'float16'},
])
def test_specs_whose_outputs_overflow_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(SpecError, match='beyond the range'):
        PreprocessSpec(**{**BASE, **kwargs})
