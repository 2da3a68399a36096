"""Sources without hardware: a synthetic scene and a folder of images, paced at a frame rate."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from visuomotor.cameras.camera import CameraError, Clock, ThreadedCamera, pace
from visuomotor.cameras.synthetic import synthetic_scene


class FakeCamera(ThreadedCamera):
    """The synthetic tabletop scene (moving, with sensor noise) at `fps`, rgb8."""

    encoding = 'rgb8'

    def __init__(self, name: str, *, width: int = 640, height: int = 480, fps: float = 30.0,
                 seed: int = 0, clock: Clock | None = None) -> None:
        super().__init__(name, clock)
        if fps <= 0:
            raise CameraError(f'camera {name!r}: fps must be > 0, got {fps}')
        self.width, self.height, self.fps, self.seed = width, height, fps, seed
        self._frames: list[npt.NDArray[np.uint8]] = []
        self._index = 0
        self._last = 0.0

    def _open(self) -> None:
        # A loop of pre-rendered frames: rendering costs more than a camera would.
        self._frames = [synthetic_scene(self.width, self.height, t_s=i / self.fps,
                                        seed=self.seed + i) for i in range(30)]
        self._last = time.monotonic()

    def _grab(self) -> tuple[npt.NDArray[Any], float | None]:
        self._last = pace(1.0 / self.fps, self._last)
        image = self._frames[self._index % len(self._frames)]
        self._index += 1
        return image.copy(), None

    def _close(self) -> None:
        self._frames = []


class FolderCamera(ThreadedCamera):
    """The images of a folder (sorted by name), looped at `fps`, rgb8."""

    encoding = 'rgb8'

    def __init__(self, name: str, folder: str | Path, *, fps: float = 30.0,
                 clock: Clock | None = None) -> None:
        super().__init__(name, clock)
        self.folder, self.fps = Path(folder), fps
        self._frames: list[npt.NDArray[np.uint8]] = []
        self._index = 0
        self._last = 0.0

    def _open(self) -> None:
        paths = sorted(p for p in self.folder.glob('*')
                       if p.suffix.lower() in ('.png', '.jpg', '.jpeg', '.bmp'))
        if not paths:
            raise CameraError(f'camera {self.name!r}: no images in {self.folder}')
        for path in paths:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise CameraError(f'camera {self.name!r}: cannot read {path}')
            self._frames.append(np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), np.uint8))
        shapes = {f.shape for f in self._frames}
        if len(shapes) != 1:
            raise CameraError(f'camera {self.name!r}: images in {self.folder} differ in size '
                              f'({sorted(shapes)}); a camera has one resolution')
        self._last = time.monotonic()

    def _grab(self) -> tuple[npt.NDArray[Any], float | None]:
        self._last = pace(1.0 / self.fps, self._last)
        image = self._frames[self._index % len(self._frames)]
        self._index += 1
        return image.copy(), None

    def _close(self) -> None:
        self._frames = []
