"""OpenCV / V4L2 backend: UVC webcams (and video files or streams OpenCV can open).

A grab thread calls `VideoCapture.grab()` as fast as the device delivers. The capture time is
the V4L2 buffer timestamp (CAP_PROP_POS_MSEC: kernel CLOCK_MONOTONIC, taken when the frame
was completed), mapped onto the camera clock; other backends, and files, get the grab time.
Size, fps, FOURCC and exposure are set at open and read back: a device that does not honour
the requested size refuses to start (the policy contract depends on it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from visuomotor.cameras.camera import CameraError, Clock, ThreadedCamera, pace

#: A driver timestamp this far from "now" is not trusted (another clock domain).
_PLAUSIBLE_S = 1.0


class OpenCVCamera(ThreadedCamera):
    """A cv2.VideoCapture device, file or URL."""

    def __init__(self, name: str, device: int | str, *, width: int | None = None,
                 height: int | None = None, fps: float | None = None,
                 fourcc: str | None = None, exposure: float | None = None,
                 encoding: str = 'bgr8', loop: bool = True, clock: Clock | None = None) -> None:
        super().__init__(name, clock)
        if encoding not in ('bgr8', 'rgb8'):
            raise CameraError(f'camera {name!r}: encoding {encoding!r} is not supported by the '
                              'OpenCV backend (bgr8, rgb8)')
        self.device = device
        self.width, self.height, self.fps = width, height, fps
        self.fourcc, self.exposure = fourcc, exposure
        self.encoding = encoding
        self.loop = loop
        self._cap: Any = None
        self._is_file = isinstance(device, str) and Path(device).is_file()
        self._last_grab = time.monotonic()
        self.backend_name = ''

    def _open(self) -> None:
        source: Any = self.device
        if isinstance(source, str) and source.isdigit():
            source = int(source)
        api = cv2.CAP_V4L2 if isinstance(source, int) or str(source).startswith('/dev/') \
            else cv2.CAP_ANY
        cap = cv2.VideoCapture(source, api)
        if not cap.isOpened():
            raise CameraError(f'camera {self.name!r}: cannot open {self.device!r}; check the '
                              'device path (v4l2-ctl --list-devices), permissions (video group) '
                              'and that no other process holds it')
        if self.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*self.fourcc[:4]))
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps and not self._is_file:
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        if self.exposure is not None:
            cap.set(cv2.CAP_PROP_AUTO_EXPOSURE, 1)  # V4L2: 1 = manual, 3 = aperture priority
            cap.set(cv2.CAP_PROP_EXPOSURE, self.exposure)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if (self.width and width != self.width) or (self.height and height != self.height):
            cap.release()
            raise CameraError(f'camera {self.name!r}: asked for {self.width}x{self.height}, the '
                              f'device delivers {width}x{height}; choose a mode it supports '
                              '(v4l2-ctl --list-formats-ext)')
        self.width, self.height = width, height
        if self._is_file and not self.fps:
            self.fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        self.backend_name = cap.getBackendName()
        self._cap = cap
        self._last_grab = time.monotonic()

    def _grab(self) -> tuple[npt.NDArray[Any], float | None]:
        cap = self._cap
        if self._is_file and self.fps:
            self._last_grab = pace(1.0 / self.fps, self._last_grab)
        if not cap.grab():
            if self._is_file and self.loop:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                if cap.grab():
                    return self._retrieve(cap)
            raise CameraError(f'camera {self.name!r}: the device stopped delivering frames '
                              '(unplugged?)')
        return self._retrieve(cap)

    def _retrieve(self, cap: Any) -> tuple[npt.NDArray[Any], float | None]:
        stamp = self._driver_stamp(cap)
        ok, image = cap.retrieve()
        if not ok or image is None:
            raise CameraError(f'camera {self.name!r}: a frame could not be decoded')
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if self.encoding == 'rgb8':
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray(image), stamp

    def _driver_stamp(self, cap: Any) -> float | None:
        """The V4L2 buffer time mapped onto the camera clock (None: not available)."""
        if self._is_file or self.backend_name != 'V4L2':
            return None
        millis = cap.get(cv2.CAP_PROP_POS_MSEC)
        if not millis or millis <= 0:
            return None
        age = time.monotonic() - millis / 1e3
        if not 0.0 <= age <= _PLAUSIBLE_S:
            return None
        return float(self.clock() - age)

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
