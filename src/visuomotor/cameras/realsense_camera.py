"""Intel RealSense colour stream via pyrealsense2 (an optional dependency, imported here only).

The capture time is the frame's global timestamp (librealsense maps the device clock onto the
host's system clock, milliseconds; `global_time_enabled` is on by default), moved onto the
camera clock by the current offset between the two.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.cameras.camera import CameraError, Clock, ThreadedCamera


class RealSenseCamera(ThreadedCamera):
    """One RealSense device (by serial number), colour stream in rgb8."""

    encoding = 'rgb8'

    def __init__(self, name: str, serial: str = '', *, width: int = 640, height: int = 480,
                 fps: float = 30.0, exposure: float | None = None,
                 clock: Clock | None = None) -> None:
        super().__init__(name, clock)
        self.serial, self.width, self.height, self.fps = serial, width, height, fps
        self.exposure = exposure
        self._pipeline: Any = None

    def _open(self) -> None:
        try:
            import pyrealsense2 as rs
        except ImportError:
            raise CameraError(f'camera {self.name!r}: backend realsense needs pyrealsense2 '
                              '(pip install pyrealsense2), or run realsense2_camera and use '
                              'backend: topic') from None
        config = rs.config()
        if self.serial:
            config.enable_device(self.serial)
        config.enable_stream(rs.stream.color, self.width, self.height, rs.format.rgb8,
                             int(self.fps))
        pipeline = rs.pipeline()
        try:
            profile = pipeline.start(config)
        except RuntimeError as exc:
            mode = f'{self.width}x{self.height}@{self.fps:g}'
            raise CameraError(f'camera {self.name!r}: RealSense {self.serial or "(any)"} did '
                              f'not start {mode}: {exc}') from None
        if self.exposure is not None:
            sensor = profile.get_device().first_color_sensor()
            sensor.set_option(rs.option.enable_auto_exposure, 0)
            sensor.set_option(rs.option.exposure, float(self.exposure))
        self._pipeline = pipeline

    def _grab(self) -> tuple[npt.NDArray[Any], float | None]:
        frames = self._pipeline.wait_for_frames(2000)
        color = frames.get_color_frame()
        if not color:
            raise CameraError(f'camera {self.name!r}: a frameset without colour')
        image = np.array(color.get_data(), dtype=np.uint8, copy=True)
        host_ms = color.get_timestamp()  # system-clock milliseconds (global time)
        age = time.time() - host_ms / 1e3
        stamp = self.clock() - age if 0.0 <= age <= 1.0 else None
        return image, stamp

    def _close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.stop()
            self._pipeline = None
