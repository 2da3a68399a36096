"""The shared preprocessing library, used identically by training, recording and deployment.

One spec, one deployment implementation (numpy/OpenCV) and one training twin (torch,
imported from `visuomotor.preprocessing.torch_pipeline` so deployment never imports torch).
"""

from visuomotor.preprocessing.display import to_display_image
from visuomotor.preprocessing.errors import FrameMismatchError, SpecError
from visuomotor.preprocessing.numpy_pipeline import Preprocessor, check_frame, input_dtype
from visuomotor.preprocessing.spec import (
    Crop,
    PreprocessSpec,
    Resize,
    Size,
    load_spec,
    save_spec,
)

__all__ = [
    'Crop',
    'FrameMismatchError',
    'PreprocessSpec',
    'Preprocessor',
    'Resize',
    'Size',
    'SpecError',
    'check_frame',
    'input_dtype',
    'load_spec',
    'save_spec',
    'to_display_image',
]
