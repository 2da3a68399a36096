"""Chunk scheduling (pure; every method takes the time): what to send, and when to infer.

Every chunk is on the clock of its observation: row i applies at `observation time + i *
period` (`ActionChunk`). Latency compensation follows from that: when a chunk arrives, the rows
whose time is before `now + exec_latency_s` are already late and are never sent (Diffusion
Policy's real-robot loop does the same). Two modes:

- `receding_horizon`: execute the newest chunk; infer again `execute_steps` periods after the
  newest observation (earlier by the measured inference latency, so with asynchronous
  inference the next chunk is ready before the executed part runs out). Until it arrives the
  rest of the current chunk keeps the arm moving. With `blend_s > 0`, the switch to a new chunk
  cross-fades linearly from the previous plan over that time (no step at the boundary).
- `temporal_ensemble` (ACT): infer every tick; every target time gets the weighted mean of
  all chunks that cover it, weights `exp(-k i)` normalised to sum to 1, i = 0 for the oldest
  prediction (ACT's convention: k = 0.01 favours older predictions slightly).

A plan starts with the planned trajectory interpolated at `now + exec_latency_s`, followed by
the chunk rows after that, so the command stream is continuous in time. If every row of the
newest chunk is already late ("over budget"), its last row is sent one period ahead and the
plan says so. A plan is never built from a chunk whose observation is
older than `max_age_s`: then nothing is sent and the safety bridge's watchdog stops the arm.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from visuomotor.policy.runtime import ActionChunk
from visuomotor.policy.spec import EXECUTION_MODES

Array = npt.NDArray[np.float64]

MODES = EXECUTION_MODES  # the modes a bundle's spec can name


@dataclass(frozen=True)
class SchedulerConfig:
    """How chunks become the command stream.

    Attributes:
        mode: `receding_horizon` or `temporal_ensemble`.
        execute_steps: receding horizon: periods of each chunk executed before the next
            inference is due (1 <= n <= chunk length).
        ensemble_decay: temporal ensembling's k in exp(-k i).
        blend_s: receding horizon: cross-fade time from the previous plan to a new chunk.
        exec_latency_s: rows due sooner than this after `now` are dropped (command transport
            and controller pick-up).
        max_age_s: plans are only built from chunks whose observation is at most this old.
    """

    mode: str = 'receding_horizon'
    execute_steps: int = 8
    ensemble_decay: float = 0.01
    blend_s: float = 0.0
    exec_latency_s: float = 0.0
    max_age_s: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f'scheduler mode {self.mode!r} is not one of {MODES}')
        if self.execute_steps < 1:
            raise ValueError(f'execute_steps must be >= 1, got {self.execute_steps}')
        for name in ('ensemble_decay', 'blend_s', 'exec_latency_s'):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0.0:
                raise ValueError(f'{name} must be a finite number >= 0, got {value}')
        if not math.isfinite(self.max_age_s) or self.max_age_s <= 0.0:
            raise ValueError(f'max_age_s must be > 0, got {self.max_age_s}')


@dataclass(frozen=True)
class Plan:
    """What to send now: targets at increasing times, and how they were made.

    The first row is the planned trajectory at `now + exec_latency_s` (interpolated, so the
    command stream is continuous), then the chunk's own rows after it.
    """

    times: Array
    positions: Array
    gripper: Array | None
    over_budget: bool
    chunks_used: int


def ensemble_weights(count: int, decay: float) -> Array:
    """ACT's weights for `count` predictions, oldest first; they sum to 1."""
    weights = np.exp(-decay * np.arange(count, dtype=np.float64))
    return np.asarray(weights / weights.sum(), dtype=np.float64)


@dataclass(frozen=True)
class _Stored:
    times: Array
    values: Array  # (H, joints [+ gripper])
    stamp_s: float


def _values(chunk: ActionChunk) -> Array:
    if chunk.gripper is None:
        return np.asarray(chunk.positions, dtype=np.float64)
    return np.column_stack([chunk.positions, chunk.gripper]).astype(np.float64)


def _at(stored: _Stored, t: Array) -> tuple[Array, npt.NDArray[np.bool_]]:
    """Linear interpolation of a chunk at times `t`, and where it covers them."""
    times = stored.times
    covered = (t >= times[0] - 1e-9) & (t <= times[-1] + 1e-9)
    if len(times) == 1:
        return np.repeat(stored.values, len(t), axis=0), covered
    index = np.clip(np.searchsorted(times, t, side='right') - 1, 0, len(times) - 2)
    t0, t1 = times[index], times[index + 1]
    alpha = np.clip((t - t0) / (t1 - t0), 0.0, 1.0)[:, None]
    start, end = stored.values[index], stored.values[index + 1]
    # start + a (end - start): a held (constant) trajectory stays bit-identical, and rows on
    # the chunk's own grid come out exactly (a = 0 gives start, a = 1 gives end).
    values = np.where(alpha >= 1.0, end, start + alpha * (end - start))
    return values, covered


class ChunkScheduler:
    """Keeps the recent chunks and turns them into a plan at any time."""

    def __init__(self, config: SchedulerConfig, period_s: float, chunk_length: int) -> None:
        if config.mode == 'receding_horizon' and config.execute_steps > chunk_length:
            raise ValueError(f'execute_steps {config.execute_steps} is more than the chunk '
                             f'length {chunk_length}')
        self.config = config
        self.period_s = period_s
        self.chunk_length = chunk_length
        self._chunks: deque[_Stored] = deque()
        self._blend_from: tuple[float, _Stored] | None = None  # (switch time, previous plan)
        self._arm_dim: int | None = None

    @property
    def newest_stamp_s(self) -> float | None:
        """Observation time of the newest chunk (None before the first)."""
        return self._chunks[-1].stamp_s if self._chunks else None

    def reset(self) -> None:
        """Forget every chunk (after a stop, a fault or a new episode)."""
        self._chunks.clear()
        self._blend_from = None

    def inference_due(self, now_s: float, latency_s: float = 0.0) -> bool:
        """Whether to start the next inference now.

        Due once `execute_steps` periods after the newest observation, early by the expected
        inference latency (pass a high percentile) so the next chunk is ready in time.
        """
        newest = self.newest_stamp_s
        if newest is None or self.config.mode == 'temporal_ensemble':
            return True
        due = newest + self.config.execute_steps * self.period_s - latency_s
        return now_s >= due - 1e-9

    def add(self, chunk: ActionChunk, now_s: float) -> bool:
        """A new inference result; False if ignored.

        Ignored: not newer than the newest chunk, or observed after `now_s` (a clock that
        went backwards).
        """
        if self._chunks and chunk.start_s <= self._chunks[-1].stamp_s:
            return False
        if chunk.start_s > now_s + 1e-6:
            return False
        self._arm_dim = chunk.positions.shape[1]
        stored = _Stored(chunk.times(), _values(chunk), chunk.start_s)
        fresh = bool(self._chunks) and now_s - self._chunks[-1].stamp_s <= self.config.max_age_s
        if self.config.mode == 'receding_horizon':
            blend_from = None
            if self.config.blend_s > 0.0 and fresh:  # blend only from a plan still being sent
                # The plan as sent now (itself possibly mid-blend), on the old chunk's grid.
                blend_from = (now_s, self._plan_values(now_s, self._chunks[-1].times))
            self._blend_from = blend_from
            self._chunks.clear()
        self._chunks.append(stored)
        # Older predictions take part while their observation is at most max_age_s old (an
        # ensemble never revives a chunk that had stopped being sent); the newest always stays.
        while len(self._chunks) > 1 and now_s - self._chunks[0].stamp_s > self.config.max_age_s:
            self._chunks.popleft()
        return True

    def _plan_values(self, now_s: float, grid: Array) -> _Stored:
        """The current plan evaluated on `grid` (before a new chunk is added)."""
        return _Stored(grid, self._combine(grid, now_s), now_s)

    def _combine(self, grid: Array, now_s: float) -> Array:
        """Ensemble (or newest chunk, blended) values on the grid."""
        newest = self._chunks[-1]
        if self.config.mode == 'temporal_ensemble':
            # Only predictions observed within max_age_s (a stalled inference never lets old
            # chunks steer); the newest is checked by plan().
            chunks = [c for c in self._chunks
                      if now_s - c.stamp_s <= self.config.max_age_s or c is newest]
            weights = ensemble_weights(len(chunks), self.config.ensemble_decay)
            base, _ = _at(newest, grid)
            total = np.zeros_like(base)
            mass = np.zeros((len(grid), 1))
            for weight, stored in zip(weights, chunks, strict=True):
                values, covered = _at(stored, grid)
                w = weight * covered[:, None]
                total += w * (values - base)
                mass += w
            # The weighted mean, as newest + mean offset (agreeing chunks give bit-identical
            # output); where nothing covers a time, the newest chunk's held value.
            return np.asarray(base + total / np.maximum(mass, 1e-300), dtype=np.float64)
        values, _ = _at(newest, grid)
        if self._blend_from is not None:
            start, previous = self._blend_from
            # Beyond the previous plan's last row its final target is held while fading out.
            old, _ = _at(previous, grid)
            alpha = np.clip((grid - start) / self.config.blend_s, 0.0, 1.0)[:, None]
            values = old + alpha * (values - old)
        return np.asarray(values, dtype=np.float64)

    def plan(self, now_s: float) -> Plan | None:
        """The rows still to come, from the newest chunk's grid; None if there is none fresh."""
        if not self._chunks:
            return None
        newest = self._chunks[-1]
        if now_s - newest.stamp_s > self.config.max_age_s or newest.stamp_s > now_s + 1e-6:
            return None  # too old, or from the future (a clock that went backwards)
        earliest = now_s + self.config.exec_latency_s
        later = newest.times[newest.times > earliest + 1e-9]
        if newest.times[-1] < earliest - 1e-9:
            grid = np.array([earliest + self.period_s])
            values = newest.values[-1:].copy()
            over_budget = True
        else:
            grid = np.concatenate(([earliest], later))
            values = self._combine(grid, now_s)
            over_budget = False
        arm = self._arm_dim or values.shape[1]
        gripper = values[:, arm] if values.shape[1] > arm else None
        used = (sum(now_s - c.stamp_s <= self.config.max_age_s for c in self._chunks)
                if self.config.mode == 'temporal_ensemble' else 1)
        return Plan(grid, values[:, :arm], gripper, over_budget, used)
