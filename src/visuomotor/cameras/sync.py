"""Time synchronisation of camera frames and joint states (pure: time is an argument).

Each stream keeps a short ring buffer of stamped samples (stamp = capture time). At a control
tick, `assemble` aligns every stream to one reference time, as Diffusion Policy's real-robot
loop does: the newest time at which every camera has a frame, and the history steps one
control period apart before it. For each step and camera it picks the frame nearest the
target within `max_skew_s`; joint positions are interpolated between the two samples that
bracket the target. Nothing waits for a slow camera (no ApproximateTime queue): a tick either
gets an aligned observation or a refusal saying which stream and why.

Stream health, per push: dropped frames (sequence gaps), stamps that do not advance (a driver
republishing its last frame) and identical content (a frozen sensor: a hash of a pixel
subsample repeats); per tick: stale streams (newest sample older than `max_age_s`) and
missing streams. Measured rate, age and skew are reported for /diagnostics.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

T = TypeVar('T')


@dataclass(frozen=True)
class Sample(Generic[T]):
    """One stamped sample of a stream (a frame, or joint positions)."""

    stamp_s: float
    value: T
    seq: int | None = None


@dataclass(frozen=True)
class SyncConfig:
    """Thresholds of the synchroniser.

    Attributes:
        max_skew_s: a frame may be this far from its target time (half a frame period of a
            30 fps camera is 0.0167 s; allow a little more).
        max_age_s: the reference time may be at most this old at the tick (stale otherwise).
        frozen_repeats: a frame repeating its predecessor's content (or stamp) this many times
            in a row (frozen_repeats + 1 identical frames) marks a stream frozen; 0 disables
            the content check.
        buffer_size: samples kept per stream.
    """

    max_skew_s: float = 0.025
    max_age_s: float = 0.2
    frozen_repeats: int = 5
    buffer_size: int = 32

    def __post_init__(self) -> None:
        for name in ('max_skew_s', 'max_age_s'):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0.0:
                raise ValueError(f'{name} must be > 0, got {value}')
        if self.frozen_repeats < 0 or self.buffer_size < 2:
            raise ValueError('frozen_repeats must be >= 0 and buffer_size >= 2')


def fingerprint(image: npt.NDArray[Any]) -> bytes:
    """A cheap content hash: a strided pixel subsample (about 1/64 of the pixels)."""
    return hashlib.blake2b(np.ascontiguousarray(image[::8, ::8]).tobytes(),
                           digest_size=16).digest()


@dataclass
class StreamStats:
    """Counters and the latest measurements of one stream (for /diagnostics)."""

    received: int = 0
    dropped: int = 0
    out_of_order: int = 0
    repeated_stamps: int = 0
    identical_run: int = 0
    frozen: bool = False
    rate_hz: float = 0.0
    last_skew_s: float = 0.0


class StreamBuffer(Generic[T]):
    """The ring buffer and health of one stream."""

    def __init__(self, name: str, config: SyncConfig, *, check_content: bool = False) -> None:
        self.name = name
        self.config = config
        self.check_content = check_content
        self.samples: deque[Sample[T]] = deque(maxlen=config.buffer_size)
        self.stats = StreamStats()
        self._last_print: bytes | None = None
        self._last_seq: int | None = None

    def push(self, sample: Sample[T]) -> str | None:
        """Add a sample; returns why it was refused (None: stored)."""
        stats = self.stats
        stats.received += 1
        last = self.samples[-1] if self.samples else None
        if sample.seq is not None:  # gaps between received sequence numbers, refused or not
            if self._last_seq is not None and sample.seq > self._last_seq + 1:
                stats.dropped += sample.seq - self._last_seq - 1
            if self._last_seq is None or sample.seq > self._last_seq:
                self._last_seq = sample.seq
        if last is not None and sample.stamp_s == last.stamp_s:
            stats.repeated_stamps += 1
            stats.identical_run += 1
            self._update_frozen()
            return 'repeated stamp'
        if last is not None and sample.stamp_s < last.stamp_s:
            stats.out_of_order += 1
            return 'older than the newest sample'
        if self.check_content and isinstance(sample.value, np.ndarray):
            digest = fingerprint(sample.value)
            stats.identical_run = stats.identical_run + 1 if digest == self._last_print else 0
            self._last_print = digest
        else:
            stats.identical_run = 0
        self._update_frozen()
        self.samples.append(sample)
        if len(self.samples) >= 2:
            span = self.samples[-1].stamp_s - self.samples[0].stamp_s
            stats.rate_hz = (len(self.samples) - 1) / span if span > 0 else 0.0
        return None

    def _update_frozen(self) -> None:
        repeats = self.config.frozen_repeats
        self.stats.frozen = repeats > 0 and self.stats.identical_run >= repeats

    def newest_stamp(self) -> float | None:
        """Capture time of the newest sample."""
        return self.samples[-1].stamp_s if self.samples else None

    def nearest(self, target_s: float) -> Sample[T] | None:
        """The sample nearest `target_s` (None if the buffer is empty)."""
        if not self.samples:
            return None
        return min(self.samples, key=lambda s: abs(s.stamp_s - target_s))


def interpolate(buffer: StreamBuffer[npt.NDArray[np.float64]], target_s: float,
                max_gap_s: float) -> npt.NDArray[np.float64] | None:
    """Linear interpolation between the samples bracketing `target_s`.

    Outside the buffer (or across a gap), the nearest sample within `max_gap_s`; None if
    there is none that close.
    """
    samples = buffer.samples
    stamps = [sample.stamp_s for sample in samples]
    right = bisect.bisect_left(stamps, target_s)
    if 0 < right < len(stamps):
        older, newer = samples[right - 1], samples[right]
        span = newer.stamp_s - older.stamp_s
        if span <= 2.0 * max_gap_s + 1e-12:
            alpha = 0.0 if span == 0.0 else (target_s - older.stamp_s) / span
            return np.asarray(older.value * (1.0 - alpha) + newer.value * alpha)
    elif right < len(stamps) and stamps[right] == target_s:
        return np.asarray(samples[right].value, dtype=np.float64)
    candidates = [i for i in (right - 1, right) if 0 <= i < len(stamps)]
    if not candidates:
        return None
    nearest = samples[min(candidates, key=lambda i: abs(stamps[i] - target_s))]
    if abs(nearest.stamp_s - target_s) > max_gap_s:
        return None
    return np.asarray(nearest.value, dtype=np.float64)


@dataclass(frozen=True)
class Aligned:
    """An aligned observation: per camera the chosen frames, oldest first."""

    stamp_s: float
    frames: Mapping[str, list[Sample[Any]]]
    joint_positions: npt.NDArray[np.float64]
    skew_s: float
    age_s: float


@dataclass(frozen=True)
class Refusal:
    """Why no observation was assembled at this tick."""

    stream: str
    reason: str
    detail: str

    def __str__(self) -> str:
        return f'{self.stream}: {self.reason} ({self.detail})'


@dataclass
class Synchronizer:
    """Camera and joint-state buffers, and the per-tick alignment."""

    camera_names: Sequence[str]
    config: SyncConfig = field(default_factory=SyncConfig)
    #: Joint samples kept: enough for the history at the joint-state rate (e.g. 1 kHz).
    joint_buffer_size: int = 256

    def __post_init__(self) -> None:
        self.cameras: dict[str, StreamBuffer[Any]] = {
            name: StreamBuffer(name, self.config, check_content=True)
            for name in self.camera_names}
        self.joints: StreamBuffer[npt.NDArray[np.float64]] = StreamBuffer(
            'joint_states', SyncConfig(self.config.max_skew_s, self.config.max_age_s, 0,
                                       max(self.config.buffer_size, self.joint_buffer_size)))

    def assemble(self, now_s: float, history: int, period_s: float,
                 reference_s: float | None = None) -> Aligned | Refusal:
        """Align every stream for a tick at `now_s` (see the module docstring).

        `reference_s` overrides the reference time (the recorder aligns to each frame of one
        camera in turn).
        """
        cfg = self.config
        newest: dict[str, float] = {}
        for name, buf in self.cameras.items():
            stamp = buf.newest_stamp()
            if stamp is None:
                return Refusal(name, 'missing', 'no frame received yet; check the topic')
            if buf.stats.frozen:
                return Refusal(name, 'frozen', f'{buf.stats.identical_run} identical frames '
                               'or repeated stamps in a row; the camera or its driver hangs')
            newest[name] = stamp
        slowest = min(newest, key=newest.__getitem__)
        age = now_s - newest[slowest]
        if age > cfg.max_age_s:
            return Refusal(slowest, 'stale', f'newest frame is {age * 1e3:.0f} ms old '
                           f'(limit {cfg.max_age_s * 1e3:.0f} ms)')
        reference = newest[slowest] if reference_s is None else reference_s
        age = now_s - reference
        joint_stamp = self.joints.newest_stamp()
        if joint_stamp is None:
            return Refusal('joint_states', 'missing', 'no joint state received yet')
        if now_s - joint_stamp > cfg.max_age_s:
            return Refusal('joint_states', 'stale', f'newest is '
                           f'{(now_s - joint_stamp) * 1e3:.0f} ms old')
        targets = [reference - (history - 1 - k) * period_s for k in range(history)]
        frames: dict[str, list[Sample[Any]]] = {}
        skew = 0.0
        for name, buf in self.cameras.items():
            chosen = []
            for target in targets:
                sample = buf.nearest(target)
                if sample is None or abs(sample.stamp_s - target) > cfg.max_skew_s:
                    off = math.inf if sample is None else abs(sample.stamp_s - target)
                    return Refusal(name, 'skew', f'no frame within {cfg.max_skew_s * 1e3:.0f} '
                                   f'ms of {target:.3f} s (nearest {off * 1e3:.0f} ms away)')
                skew = max(skew, abs(sample.stamp_s - target))
                chosen.append(sample)
            buf.stats.last_skew_s = abs(chosen[-1].stamp_s - reference)
            frames[name] = chosen
        positions = []
        for target in targets:
            q = interpolate(self.joints, target, cfg.max_skew_s)
            if q is None:
                return Refusal('joint_states', 'skew', f'no joint state within '
                               f'{cfg.max_skew_s * 1e3:.0f} ms of {target:.3f} s')
            positions.append(q)
        return Aligned(reference, frames, np.array(positions), skew, age)
