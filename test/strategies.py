"""Hypothesis strategies shared by the test tiers (importable as `strategies`)."""

from __future__ import annotations

from hypothesis import strategies as st

from visuomotor.preprocessing import Crop, PreprocessSpec, Resize, Size
from visuomotor.preprocessing.spec import INPUT_MAX_VALUE

ENCODINGS = ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16']


@st.composite
def random_specs(draw: st.DrawFn) -> PreprocessSpec:
    """Valid specs covering every option, on frames small enough to test quickly."""
    encoding = draw(st.sampled_from(ENCODINGS))
    height, width = draw(st.integers(4, 70)), draw(st.integers(4, 70))
    mode = draw(st.sampled_from(['none', 'center', 'box']))
    crop = Crop()
    if mode != 'none':
        ch, cw = draw(st.integers(2, height)), draw(st.integers(2, width))
        crop = Crop('center', ch, cw) if mode == 'center' else Crop(
            'box', ch, cw, x=draw(st.integers(0, width - cw)), y=draw(st.integers(0, height - ch)))
    _, _, ch, cw = crop.window(Size(height, width))
    resize = None
    if draw(st.booleans()):
        interpolation = draw(st.sampled_from(['area', 'nearest', 'linear', 'cubic']))
        limit_h, limit_w = (ch, cw) if interpolation == 'area' else (90, 90)
        resize = Resize(draw(st.integers(1, limit_h)), draw(st.integers(1, limit_w)),
                        interpolation)
    before = resize.size if resize else Size(ch, cw)
    random_crop = None
    if draw(st.booleans()):
        random_crop = Size(draw(st.integers(1, before.height)), draw(st.integers(1, before.width)))
    color = draw(st.sampled_from(['rgb', 'bgr', 'gray']))
    channels = 1 if color == 'gray' else 3
    unit = st.floats(0.0, 1.0)
    return PreprocessSpec(
        input_encoding=encoding, input_height=height, input_width=width, crop=crop,
        resize=resize, random_crop=random_crop, color=color,
        scale=1 / INPUT_MAX_VALUE[encoding],
        mean=tuple(draw(st.lists(unit, min_size=channels, max_size=channels))),
        std=tuple(draw(st.lists(st.floats(0.1, 1.0), min_size=channels, max_size=channels))),
        layout=draw(st.sampled_from(['chw', 'hwc'])))
