"""A recorded dataset as training windows (observation history -> action chunk).

Episodes are read with the dataset reader (the recorder's LeRobot v3 files), their frames
decoded once and held as uint8 (a 100-episode 96x96 two-camera dataset is about 1 GB). A
sample at row t of an episode holds the frames and proprio of rows t-T+1 .. t (the first row
repeated before the episode starts) and the actions of rows t .. t+H-1 (the last row repeated
after it ends: the robot holds its final pose), exactly the pairing the policy runtime uses
(action i applies at the observation time + i control periods).

Preprocessing is NOT done here: the trainer runs the shared preprocessing's torch twin on
each batch (random crop and jitter at train time), the same spec the bundle carries.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from visuomotor.errors import VisuomotorError
from visuomotor.recording.reader import DatasetReader, Episode


class TrainingDataError(VisuomotorError, ValueError):
    """The dataset cannot be trained on; the message says why and what to do."""


@dataclass(frozen=True)
class Normaliser:
    """Per-dimension mean and standard deviation (std floored so constants stay finite)."""

    mean: npt.NDArray[np.float64]
    std: npt.NDArray[np.float64]

    @classmethod
    def fit(cls, values: npt.NDArray[np.float64], floor: float = 1e-3) -> Normaliser:
        """Statistics of `values` (rows x dims)."""
        return cls(values.mean(axis=0), np.maximum(values.std(axis=0), floor))

    def __call__(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        """Normalised values."""
        return ((values - self.mean) / self.std).astype(np.float32)


@dataclass
class DemoData:
    """Every usable row of a dataset, in memory.

    Attributes:
        cameras: camera names (the dataset's order).
        frames: camera -> (rows, H, W, 3) uint8, all episodes concatenated.
        state: (rows, P) measured joint positions (+ gripper width).
        action: (rows, A) commanded joint positions (+ gripper width).
        episode_start, episode_end: per row, the first and one-past-last row of its episode.
        episodes: indices of the episodes held.
        state_names: names of the state/action entries.
        fps: rows per second.
        trainable: per row, whether a training window may start there (false inside spans
            the episode's provenance marks `exclude_from_training`, e.g. a deliberate miss).
    """

    cameras: list[str]
    frames: dict[str, npt.NDArray[np.uint8]]
    state: npt.NDArray[np.float64]
    action: npt.NDArray[np.float64]
    episode_start: npt.NDArray[np.int64]
    episode_end: npt.NDArray[np.int64]
    episodes: list[int]
    state_names: list[str]
    fps: float
    trainable: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.state)

    def window(self, rows: npt.NDArray[np.int64], history: int, chunk: int
               ) -> tuple[dict[str, npt.NDArray[np.uint8]], npt.NDArray[np.float64],
                          npt.NDArray[np.float64]]:
        """Frames (B, T, H, W, 3) per camera, proprio (B, T, P), actions (B, H, A)."""
        start = self.episode_start[rows][:, None]
        last = self.episode_end[rows][:, None] - 1
        past = np.maximum(rows[:, None] + np.arange(1 - history, 1)[None], start)
        future = np.minimum(rows[:, None] + np.arange(chunk)[None], last)
        frames = {c: self.frames[c][past] for c in self.cameras}
        return frames, self.state[past], self.action[future]


def load_demos(path: str | Path, episodes: Sequence[int] | None = None,
               progress: Callable[[int, int], None] | None = None) -> DemoData:
    """Read episodes (all by default) into memory.

    Rows whose action is missing (NaN: no command had been sent yet) at the start of an
    episode are dropped; a missing action inside an episode refuses the dataset, naming it.

    Raises:
        TrainingDataError: no episodes, no cameras, or unusable rows.
    """
    reader = DatasetReader(path)
    chosen = list(range(len(reader))) if episodes is None else list(episodes)
    if not chosen:
        raise TrainingDataError(f'{path}: no episodes to train on; record demonstrations '
                                'first (visuomotor train-demo records them on the twin)')
    if not reader.cameras:
        raise TrainingDataError(f'{path}: the dataset has no camera streams; a visuomotor '
                                'policy needs images')
    names = list(reader.features['observation.state']['names'])
    frames: dict[str, list[npt.NDArray[np.uint8]]] = {c: [] for c in reader.cameras}
    states, actions, starts, ends = [], [], [], []
    trainable: list[npt.NDArray[np.bool_]] = []
    total = 0
    for done, index in enumerate(chosen, 1):
        episode = reader.episode(index)
        state = np.asarray(episode.columns['observation.state'], dtype=np.float64)
        action = np.asarray(episode.columns['action'], dtype=np.float64)
        valid = np.asarray(np.isfinite(action).all(axis=1) & np.isfinite(state).all(axis=1),
                           dtype=bool)
        first = int(np.argmax(valid)) if valid.any() else len(valid)
        if first == len(valid):
            raise TrainingDataError(f'{path}: episode {index} has no row with a complete '
                                    'action; discard it or re-record it')
        if not valid[first:].all():
            bad = first + int(np.argmin(valid[first:]))
            raise TrainingDataError(f'{path}: episode {index} row {bad} has a missing or '
                                    'non-finite action/state inside the episode; check it with '
                                    '`visuomotor dataset check` and exclude it')
        for camera in reader.cameras:
            decoded = episode.frames(camera)
            if len(decoded) != episode.length:
                raise TrainingDataError(f'{path}: episode {index} camera {camera} has '
                                        f'{len(decoded)} frames for {episode.length} rows')
            frames[camera].append(np.stack(decoded[first:]))
        n = episode.length - first
        trainable.append(_trainable(episode, path)[first:])
        states.append(state[first:])
        actions.append(action[first:])
        starts.append(np.full(n, total))
        ends.append(np.full(n, total + n))
        total += n
        if progress is not None:
            progress(done, len(chosen))
    return DemoData(list(reader.cameras), {c: np.concatenate(v) for c, v in frames.items()},
                    np.concatenate(states), np.concatenate(actions), np.concatenate(starts),
                    np.concatenate(ends), chosen, names, reader.fps, np.concatenate(trainable))


def _trainable(episode: Episode, path: str | Path) -> npt.NDArray[np.bool_]:
    """Rows outside the episode's `exclude_from_training` spans (row times, seconds)."""
    spans = episode.provenance.get('exclude_from_training') or []
    keep = np.ones(episode.length, dtype=bool)
    if not spans:
        return keep
    if 'timing.reference_ns' not in episode.columns:
        raise TrainingDataError(f'{path}: episode {episode.index} marks spans to exclude but '
                                'has no timing.reference_ns column to place them')
    times = np.asarray(episode.columns['timing.reference_ns'], dtype=np.float64) * 1e-9
    for span in spans:
        if not (isinstance(span, list) and len(span) == 2):
            raise TrainingDataError(f'{path}: episode {episode.index} exclude_from_training '
                                    f'entry {span!r} is not [start_s, end_s]')
        keep &= ~((times >= float(span[0])) & (times <= float(span[1])))
    if not keep.any():
        raise TrainingDataError(f'{path}: episode {episode.index} excludes every row from '
                                'training; discard it instead')
    return keep
