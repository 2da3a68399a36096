"""Regenerate the preprocessing golden vectors (test/data/preprocessing_golden/*.npz).

Each file holds a spec (canonical JSON), its hash, a deterministic random input frame and
the output of the deployment implementation. The numpy and the torch implementations must
both reproduce the output within 1e-5 (test/unit/test_preprocessing_golden.py).

Only regenerate deliberately (a change to the preprocessing semantics): models exported
before the change carry the old behaviour. Run: python test/data/make_preprocessing_golden.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visuomotor.preprocessing import Crop, Preprocessor, PreprocessSpec, Resize, Size
from visuomotor.preprocessing.numpy_pipeline import input_dtype
from visuomotor.preprocessing.spec import INPUT_MAX_VALUE

OUT = Path(__file__).resolve().parent / 'preprocessing_golden'
IMAGENET = {'mean': (0.485, 0.456, 0.406), 'std': (0.229, 0.224, 0.225)}

CASES = {
    # ResNet-style: centre square, area-resized, ImageNet normalisation.
    'rgb8_center_area_imagenet': PreprocessSpec(
        input_encoding='rgb8', input_height=60, input_width=80, crop=Crop('center', 60, 60),
        resize=Resize(32, 32, 'area'), **IMAGENET),
    # BGR camera feeding an RGB model, fixed box, linear enlargement, eval crop, HWC.
    'bgr8_box_linear_randomcrop_hwc': PreprocessSpec(
        input_encoding='bgr8', input_height=60, input_width=80, crop=Crop('box', 40, 50, x=17,
                                                                          y=9),
        resize=Resize(56, 70, 'linear'), random_crop=Size(48, 64), layout='hwc',
        mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    # RGBA to grey with cubic, non-integer factors.
    'rgba8_gray_cubic': PreprocessSpec(
        input_encoding='rgba8', input_height=60, input_width=80, resize=Resize(37, 29, 'cubic'),
        color='gray', mean=(0.45,), std=(0.25,)),
    # Depth-like mono16, nearest.
    'mono16_nearest': PreprocessSpec(
        input_encoding='mono16', input_height=60, input_width=80, crop=Crop('center', 48, 64),
        resize=Resize(20, 27, 'nearest'), color='gray', scale=1 / 65535),
    # BGRA to BGR without resize, float16 output.
    'bgra8_bgr_float16': PreprocessSpec(
        input_encoding='bgra8', input_height=60, input_width=80, color='bgr', dtype='float16',
        random_crop=Size(50, 70)),
    # Grey camera into a colour model, area with a non-integer factor.
    'mono8_rgb_area_fractional': PreprocessSpec(
        input_encoding='mono8', input_height=60, input_width=80, resize=Resize(23, 31, 'area'),
        **IMAGENET),
    # Area with integer row factors (deployment's exact row-sum path), fractional columns.
    'rgb8_area_integer_rows': PreprocessSpec(
        input_encoding='rgb8', input_height=60, input_width=80, crop=Crop('center', 60, 60),
        resize=Resize(20, 24, 'area'), **IMAGENET),
    'mono16_area_integer': PreprocessSpec(
        input_encoding='mono16', input_height=60, input_width=80, resize=Resize(15, 20, 'area'),
        color='gray', scale=1 / 65535, mean=(0.5,), std=(0.25,)),
}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for index, (name, spec) in enumerate(CASES.items()):
        rng = np.random.default_rng(1000 + index)
        frame = rng.integers(0, INPUT_MAX_VALUE[spec.input_encoding] + 1, spec.input_shape,
                             dtype=input_dtype(spec))
        output = Preprocessor(spec)(frame)
        np.savez_compressed(OUT / f'{name}.npz', spec=np.array(spec.to_json()),
                            spec_hash=np.array(spec.spec_hash()), input=frame, output=output)
        print(f'{name}: {spec.spec_hash()} {spec.describe()}')


if __name__ == '__main__':
    main()
