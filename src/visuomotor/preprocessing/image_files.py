"""Reading image files where a camera frame is expected (pure OpenCV).

`visuomotor preprocess`, the folder camera and calibration capture folders read frames from
files through `read_image`, so that every one of them treats a file that is not an 8-bit
colour frame the same way, and says what it did:

- not an image (a text file named .png, a folder, a missing file): refused, naming the file;
- 16-bit (PNG/TIFF, e.g. from a machine-vision tool): converted to 8-bit (value / 257,
  rounded), and the conversion is reported;
- grey or with an alpha channel: converted to three channels (alpha dropped), reported;
- floating point (EXR, 32-bit TIFF): refused (no scale to assume).

`mono16` asks for a 16-bit single-channel image instead (a depth frame); anything else is
refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from visuomotor.errors import FieldError

#: The file types OpenCV reads here (what the messages offer).
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.ppm', '.pgm')


class ImageFileError(FieldError):
    """A file given where an image is expected is not one (or not a usable one)."""


@dataclass(frozen=True)
class ImageFile:
    """An image read from a file.

    Attributes:
        image: (H, W, 3) uint8 BGR, or (H, W) uint16 for `mono16`.
        conversions: what was done to make it so (empty: nothing), for the user to see.
    """

    image: npt.NDArray[Any]
    conversions: tuple[str, ...] = ()

    def note(self, source: str) -> str:
        """One line saying what was converted (empty when nothing was)."""
        return f'{source}: {"; ".join(self.conversions)}' if self.conversions else ''


def read_image(path: str | Path, *, mono16: bool = False) -> ImageFile:
    """Read an image file as an 8-bit BGR frame (or a 16-bit mono frame).

    Raises:
        ImageFileError: (field: the path) missing, a folder, not an image, or of a kind that
            is refused (see the module docstring).
    """
    file = Path(path)
    name = str(file)
    if not file.exists():
        raise ImageFileError(name, 'does not exist: give the path of an image file '
                             f'({", ".join(IMAGE_SUFFIXES[:3])}, ...)')
    if file.is_dir():
        raise ImageFileError(name, 'is a folder: give the path of an image file inside it')
    image = cv2.imread(name, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageFileError(name, 'is not an image: OpenCV cannot read it (expected a PNG, '
                             'JPEG, BMP or TIFF file); give a camera frame, or re-export it as '
                             'PNG')
    if mono16:
        if image.dtype != np.uint16 or image.ndim != 2:
            raise ImageFileError(name, f'is {_describe(image)}; a 16-bit single-channel '
                                 'image (mono16, e.g. a depth PNG) is expected: give one, or '
                                 'use a spec with an 8-bit input encoding')
        return ImageFile(image)
    conversions: list[str] = []
    if image.dtype == np.uint16:
        image = np.round(image.astype(np.float64) / 257.0).astype(np.uint8)
        conversions.append('16-bit image converted to 8-bit (value / 257)')
    elif image.dtype != np.uint8:
        raise ImageFileError(name, f'is {_describe(image)}; an 8-bit (or 16-bit) integer image '
                             'is expected: save the frame as an 8-bit PNG')
    if image.ndim == 2 or image.shape[2] == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        conversions.append('grey image converted to 3 channels')
    elif image.shape[2] == 4:
        image = np.ascontiguousarray(image[:, :, :3])
        conversions.append('alpha channel dropped')
    elif image.shape[2] != 3:
        raise ImageFileError(name, f'is {_describe(image)}; a colour (3-channel) or grey '
                             'image is expected')
    return ImageFile(image, tuple(conversions))


def _describe(image: npt.NDArray[Any]) -> str:
    channels = 1 if image.ndim == 2 else image.shape[2]
    bits = image.dtype.itemsize * 8
    kind = 'float' if np.issubdtype(image.dtype, np.floating) else 'bit'
    depth = f'{bits}-bit float' if kind == 'float' else f'{bits}-bit'
    article = 'an' if depth.startswith('8') else 'a'
    return f'{article} {depth} image with {channels} channel{"s" if channels != 1 else ""}'
