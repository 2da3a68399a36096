"""Video encoding on a worker thread per camera (PyAV / FFmpeg).

Frames are queued by the recorder tick and encoded off the control path. The defaults follow
LeRobot v3 (AV1 through libsvtav1, yuv420p, a keyframe every 2 frames, CRF 30), so decoding
any frame is cheap for training; `h264` is the faster alternative on small machines.
The queue is bounded: if the encoder falls behind, `add` says so instead of silently growing
memory, and the episode is marked.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

#: codec -> (FFmpeg encoder, options)
CODECS: dict[str, tuple[str, dict[str, str]]] = {
    'av1': ('libsvtav1', {'crf': '30', 'g': '2', 'preset': '10'}),
    'h264': ('libx264', {'crf': '23', 'g': '2', 'preset': 'ultrafast', 'tune': 'zerolatency'}),
}


@dataclass(frozen=True)
class VideoSettings:
    """How a camera's frames are encoded."""

    codec: str = 'av1'
    pix_fmt: str = 'yuv420p'
    queue_frames: int = 90

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f'video codec {self.codec!r} is not one of {sorted(CODECS)}')

    @property
    def encoder(self) -> str:
        """The FFmpeg encoder name."""
        return CODECS[self.codec][0]


class VideoEncoder:
    """One mp4 file, written frame by frame from a queue on its own thread."""

    def __init__(self, path: Path, width: int, height: int, fps: float,
                 settings: VideoSettings) -> None:
        import av  # PyAV: imported here so the core never needs it unless it records

        self.path, self.width, self.height = Path(path), width, height
        self.settings = settings
        self._container: Any = cast(Any, av.open(str(path), mode='w'))
        name, options = CODECS[settings.codec]
        rate = Fraction(fps).limit_denominator(1001)
        self._stream: Any = cast(Any, self._container.add_stream(name, rate=rate,
                                                                options=dict(options)))
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = settings.pix_fmt
        self._queue: queue.Queue[npt.NDArray[np.uint8] | None] = queue.Queue(
            settings.queue_frames)
        self.frames = 0
        self.error: BaseException | None = None
        self._av = av
        self._thread = threading.Thread(target=self._run, name=f'encode-{path.stem}',
                                        daemon=True)
        self._thread.start()

    def has_room(self) -> bool:
        """Whether `add` would queue a frame now (this thread is the only producer)."""
        return self.error is None and not self._queue.full()

    def add(self, image: npt.NDArray[np.uint8]) -> bool:
        """Queue one rgb8 frame of the encoder's size; False if the encoder is behind/failed."""
        if self.error is not None:
            return False
        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise ValueError(f'{self.path.stem}: frame {image.shape} {image.dtype} is not '
                             f'{self.height}x{self.width}x3 uint8')
        try:
            self._queue.put_nowait(image)
        except queue.Full:
            return False
        return True

    def _run(self) -> None:
        try:
            while True:
                image = self._queue.get()
                if image is None:
                    break
                frame = self._av.VideoFrame.from_ndarray(image, format='rgb24')
                for packet in self._stream.encode(frame):
                    self._container.mux(packet)
                self.frames += 1
            for packet in self._stream.encode(None):
                self._container.mux(packet)
        except BaseException as exc:  # noqa: BLE001 - reported by close()
            self.error = exc
        finally:
            self._container.close()

    def close(self, timeout_s: float = 120.0) -> int:
        """Flush and close; returns the number of frames written. Raises on encoder errors."""
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f'{self.path}: the encoder did not finish in {timeout_s} s')
        if self.error is not None:
            raise RuntimeError(f'{self.path}: encoding failed: {self.error}') from self.error
        return self.frames


def iter_video(path: Path) -> Iterator[npt.NDArray[np.uint8]]:
    """The frames of a video as rgb8 arrays, one at a time.

    A long episode never sits in memory whole.
    """
    import av
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield np.asarray(frame.to_ndarray(format='rgb24'), dtype=np.uint8)


def read_video(path: Path) -> list[npt.NDArray[np.uint8]]:
    """Every frame of a video as rgb8 arrays (short videos: tests, inspection)."""
    return list(iter_video(path))
