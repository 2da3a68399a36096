"""Sources without hardware: a synthetic scene and a folder of images, paced at a frame rate."""

from __future__ import annotations

import abc
import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from visuomotor.cameras.camera import CameraError, Clock, ThreadedCamera, pace
from visuomotor.cameras.synthetic import synthetic_scene
from visuomotor.preprocessing.image_files import IMAGE_SUFFIXES, ImageFileError, read_image

_log = logging.getLogger(__name__)


class _LoopedFrames(ThreadedCamera):
    """Frames prepared at open, handed out in a loop at `fps` (rgb8)."""

    encoding = 'rgb8'

    def __init__(self, name: str, fps: float, clock: Clock | None) -> None:
        super().__init__(name, clock)
        if fps <= 0:
            raise CameraError(f'camera {name!r}: fps must be > 0, got {fps}')
        self.fps = fps
        self._frames: list[npt.NDArray[np.uint8]] = []
        self._index = 0
        self._last = 0.0

    @abc.abstractmethod
    def _prepare(self) -> list[npt.NDArray[np.uint8]]:
        """The frames to loop over (called at open)."""

    def _open(self) -> None:
        self._frames = self._prepare()
        self._last = time.monotonic()

    def _grab(self) -> tuple[npt.NDArray[Any], float | None]:
        self._last = pace(1.0 / self.fps, self._last)
        image = self._frames[self._index % len(self._frames)]
        self._index += 1
        return image.copy(), None

    def _close(self) -> None:
        self._frames = []


class FakeCamera(_LoopedFrames):
    """The synthetic tabletop scene (moving, with sensor noise) at `fps`, rgb8."""

    def __init__(self, name: str, *, width: int = 640, height: int = 480, fps: float = 30.0,
                 seed: int = 0, clock: Clock | None = None) -> None:
        super().__init__(name, fps, clock)
        self.width, self.height, self.seed = width, height, seed

    def _prepare(self) -> list[npt.NDArray[np.uint8]]:
        # A loop of pre-rendered frames: rendering costs more than a camera would.
        return [synthetic_scene(self.width, self.height, t_s=i / self.fps, seed=self.seed + i)
                for i in range(30)]


class FolderCamera(_LoopedFrames):
    """The images of a folder (sorted by name), looped at `fps`, rgb8."""

    def __init__(self, name: str, folder: str | Path, *, fps: float = 30.0,
                 clock: Clock | None = None) -> None:
        super().__init__(name, fps, clock)
        self.folder = Path(folder)

    def _prepare(self) -> list[npt.NDArray[np.uint8]]:
        if not self.folder.is_dir():
            state = 'is not a folder' if self.folder.exists() else 'does not exist'
            raise CameraError(f'camera {self.name!r}: folder {self.folder} {state}; give a '
                              'folder of images (folder: in the camera config)')
        paths = sorted(p for p in self.folder.glob('*') if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise CameraError(f'camera {self.name!r}: no images in {self.folder} (expected '
                              f'{", ".join(IMAGE_SUFFIXES)} files)')
        frames = []
        for path in paths:
            try:
                loaded = read_image(path)
            except ImageFileError as error:
                raise CameraError(f'camera {self.name!r}: {error}; or remove it from the '
                                  'folder') from None
            if loaded.conversions:
                _log.warning(f'camera {self.name!r}: {loaded.note(str(path))}')
            frames.append(np.asarray(cv2.cvtColor(loaded.image, cv2.COLOR_BGR2RGB), np.uint8))
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            raise CameraError(f'camera {self.name!r}: images in {self.folder} differ in size '
                              f'({sorted(shapes)}); a camera has one resolution')
        return frames
