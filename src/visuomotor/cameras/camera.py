"""The camera interface: every backend returns frames stamped at capture, on the ROS clock.

`Camera.read()` returns the next new `Frame`: the image, its capture time (seconds on the
clock the camera was given: the node's ROS clock, so simulated time works), a sequence number
that counts every frame the device delivered (gaps are drops), its encoding and when the
backend received it. Backends that free-run (USB, RealSense, the fake source) grab on their own
thread, so a slow consumer never slows the device: it only sees gaps in `seq`.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy.typing as npt

from visuomotor.errors import VisuomotorError

Clock = Callable[[], float]


class CameraError(VisuomotorError, RuntimeError):
    """A camera cannot be opened or read; the message names the camera and the fix."""


class CameraTimeoutError(CameraError):
    """No new frame arrived within the timeout."""


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    Attributes:
        image: (H, W, C) or (H, W) array in `encoding`.
        stamp_s: capture time on the camera's clock (driver timestamp where available).
        seq: device frame counter; consecutive frames differ by 1, a gap means drops.
        encoding: ROS image encoding (rgb8, bgr8, mono8, ...).
        receive_s: when the backend had the frame, same clock (receive - stamp = driver latency).
    """

    image: npt.NDArray[Any]
    stamp_s: float
    seq: int
    encoding: str
    receive_s: float


class Camera(Protocol):
    """What every backend provides."""

    name: str

    def start(self) -> None:
        """Open the device and start capturing."""

    def read(self, timeout_s: float = 1.0) -> Frame:
        """The next frame not returned before; raises CameraTimeoutError after `timeout_s`."""
        ...

    def stop(self) -> None:
        """Stop capturing and release the device."""


class ThreadedCamera(abc.ABC):
    """Common machinery: a grab thread keeps the newest frame; `read` waits for a new one.

    Subclasses implement `_open`, `_grab` (blocking until the device has a frame; returns the
    image and the driver's capture time on the camera clock, or None to use the grab time) and
    `_close`.
    """

    encoding = 'rgb8'

    def __init__(self, name: str, clock: Clock | None = None) -> None:
        self.name = name
        self.clock: Clock = clock or time.time
        self._latest: Frame | None = None
        self._returned_seq = -1
        self._seq = -1
        self._condition = threading.Condition()
        self._running = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- subclass hooks ---------------------------------------------------------------------

    @abc.abstractmethod
    def _open(self) -> None:
        """Open the device (called by `start`)."""

    @abc.abstractmethod
    def _grab(self) -> tuple[npt.NDArray[Any], float | None]:
        """Block until the device has a frame; the image and its capture time (or None)."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Release the device (called by `stop`)."""

    # -- the interface ----------------------------------------------------------------------

    def start(self) -> None:
        """Open the device and start the grab thread."""
        self._open()
        self._running.set()
        self._thread = threading.Thread(target=self._loop, name=f'camera-{self.name}',
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            while self._running.is_set():
                image, stamp = self._grab()
                now = self.clock()
                with self._condition:
                    self._seq += 1
                    self._latest = Frame(image, now if stamp is None else stamp, self._seq,
                                         self.encoding, now)
                    self._condition.notify_all()
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, never lost
            with self._condition:
                self._error = exc
                self._condition.notify_all()

    def read(self, timeout_s: float = 1.0) -> Frame:
        """The newest frame, once it is newer than the last one returned."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while True:
                if self._error is not None:
                    raise CameraError(f'camera {self.name!r}: capture stopped: '
                                      f'{self._error}') from self._error
                frame = self._latest
                if frame is not None and frame.seq > self._returned_seq:
                    self._returned_seq = frame.seq
                    return frame
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CameraTimeoutError(
                        f'camera {self.name!r}: no new frame for {timeout_s:.2f} s; check the '
                        'cable/USB bandwidth (lower the resolution or fps, or use MJPG) and '
                        'that no other process holds the device')
                self._condition.wait(left)

    def stop(self) -> None:
        """Stop the grab thread and release the device."""
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._close()


def pace(period_s: float, last: float) -> float:
    """Sleep until `last + period_s` (monotonic); return that time (drift-free pacing)."""
    target = last + period_s
    delay = target - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    else:
        target = time.monotonic()  # behind: re-anchor instead of bursting
    return target

