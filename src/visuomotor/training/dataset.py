"""A recorded dataset as training windows (observation history -> action chunk).

Episodes are read with the dataset reader (the recorder's LeRobot v3 files), their frames
decoded once and held as uint8 (a 100-episode 96x96 two-camera dataset is about 1 GB). A
sample at row t of an episode holds the frames and proprio of rows t-T+1 .. t (the first row
repeated before the episode starts) and the actions of rows t .. t+H-1 (the last row repeated
after it ends: the robot holds its final pose), exactly the pairing the policy runtime uses
(action i applies at the observation time + i control periods).

Rows flagged while recording (`quality.flags`) or not finite are skipped by default; an
episode keeps its usable rows in segments between the skipped ones (windows never span a
gap), and an episode with none is skipped whole (`load_demos`).

Preprocessing is NOT done here: the trainer runs the shared preprocessing's torch twin on
each batch (random crop and jitter at train time), the same spec the bundle carries.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from visuomotor.errors import VisuomotorError
from visuomotor.recording.episode import FLAG_REASONS
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
        skipped_rows: rows left out of the held episodes, per reason (load_demos).
        skipped_episodes: episodes left out whole (no usable row) -> why.
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
    skipped_rows: Counter[str] = field(default_factory=Counter)
    skipped_episodes: dict[int, str] = field(default_factory=dict)

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


def parse_episodes(text: str, flag: str = '--episodes') -> list[int]:
    """Episode indices from '0,3-5' (-> [0, 3, 4, 5]); sorted, without repeats."""
    out: set[int] = set()
    for part in (p.strip() for p in text.split(',')):
        match = re.fullmatch(r'(\d+)(?:\s*-\s*(\d+))?', part)
        if match is None or (match[2] is not None and int(match[2]) < int(match[1])):
            raise TrainingDataError(f'{flag} {text!r}: {part!r} is not an episode index or a '
                                    'range; give indices and ranges like 0,3-5')
        first = int(match[1])
        out.update(range(first, int(match[2] or first) + 1))
    return sorted(out)


def select_episodes(total: int, episodes: Sequence[int] | None = None,
                    exclude: Sequence[int] = (), path: str | Path = 'the dataset') -> list[int]:
    """The chosen episode indices (all by default), checked against the dataset's count."""
    chosen = list(range(total)) if episodes is None else sorted(set(episodes))
    wrong = [e for e in (*chosen, *exclude) if not 0 <= e < total]
    if wrong:
        raise TrainingDataError(f'{path}: no episode {wrong[0]} (it has {total}: '
                                f'0..{total - 1}); fix --episodes / --exclude-episodes')
    return [e for e in chosen if e not in set(exclude)]


@dataclass
class RowSelection:
    """Which rows of an episode are trained on, and why the others are not."""

    usable: npt.NDArray[np.bool_]
    skipped: Counter[str]

    @classmethod
    def of(cls, episode: Episode, include_flagged: bool = False) -> RowSelection:
        """Rows with a finite state and action and, unless `include_flagged`, no flag."""
        state = np.asarray(episode.columns['observation.state'], dtype=np.float64)
        action = np.asarray(episode.columns['action'], dtype=np.float64)
        finite = np.isfinite(action).all(axis=1) & np.isfinite(state).all(axis=1)
        flags = episode.flags
        usable = finite if include_flagged else finite & (flags == 0)
        skipped: Counter[str] = Counter()
        for bit, text in FLAG_REASONS.items():
            if not include_flagged:
                skipped[text] = int(np.count_nonzero(~usable & (flags & bit > 0)))
        unflagged = ~finite & ((flags == 0) | include_flagged)
        skipped['action or state not finite'] = int(np.count_nonzero(unflagged))
        return cls(np.asarray(usable, dtype=bool), +skipped)


def load_demos(path: str | Path, episodes: Sequence[int] | None = None,
               progress: Callable[[int, int], None] | None = None, *,
               include_flagged: bool = False) -> DemoData:
    """Read episodes (all by default) into memory, without the rows not to train on.

    Rows flagged while recording (`quality.flags`: the safety bridge not armed, no valid
    action) and rows whose action or state is not finite are skipped; the rest of an episode
    is kept, split where rows were skipped (a window never spans a gap). An episode without a
    usable row is skipped whole. `include_flagged` keeps flagged rows whose values are finite.
    What was skipped, and why, is in `skipped_rows` / `skipped_episodes`.

    Raises:
        TrainingDataError: no episodes, no cameras, or no usable row at all.
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
    skipped_rows: Counter[str] = Counter()
    skipped_episodes: dict[int, str] = {}
    kept: list[int] = []
    total = 0
    for done, index in enumerate(chosen, 1):
        episode = reader.episode(index)
        selection = RowSelection.of(episode, include_flagged)
        usable = selection.usable
        if not usable.any():
            skipped_episodes[index] = ', '.join(f'{n} rows: {why}'
                                                for why, n in selection.skipped.items())
            if progress is not None:
                progress(done, len(chosen))
            continue
        skipped_rows.update(selection.skipped)
        for camera in reader.cameras:
            decoded = episode.frames(camera)
            if len(decoded) != episode.length:
                raise TrainingDataError(f'{path}: episode {index} camera {camera} has '
                                        f'{len(decoded)} frames for {episode.length} rows')
            frames[camera].append(np.stack(decoded)[usable])
        keep = np.flatnonzero(usable)
        # Segments of consecutive usable rows: each is a window's whole world.
        segment = np.concatenate([[0], np.cumsum(np.diff(keep) > 1)])
        bounds = np.flatnonzero(np.diff(np.concatenate([[-1], segment, [segment[-1] + 1]])))
        starts.append(total + bounds[:-1][segment])
        ends.append(total + bounds[1:][segment])
        trainable.append(_trainable(episode, path)[usable])
        states.append(np.asarray(episode.columns['observation.state'], np.float64)[usable])
        actions.append(np.asarray(episode.columns['action'], np.float64)[usable])
        kept.append(index)
        total += len(keep)
        if progress is not None:
            progress(done, len(chosen))
    if not kept:
        why = '; '.join(f'episode {i}: {text}' for i, text in skipped_episodes.items())
        raise TrainingDataError(f'{path}: none of episodes {compact(chosen)} has a usable row '
                                f'({why}); check it with `visuomotor dataset check`')
    return DemoData(list(reader.cameras), {c: np.concatenate(v) for c, v in frames.items()},
                    np.concatenate(states), np.concatenate(actions), np.concatenate(starts),
                    np.concatenate(ends), kept, names, reader.fps, np.concatenate(trainable),
                    +skipped_rows, skipped_episodes)


def compact(indices: Sequence[int]) -> str:
    """Episode indices as ranges: [0, 1, 2, 5] -> '0-2,5'."""
    runs: list[list[int]] = []
    for index in sorted(set(indices)):
        if runs and runs[-1][1] == index - 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return ','.join(str(a) if a == b else f'{a}-{b}' for a, b in runs)


def describe_skipped(rows: Mapping[str, int], episodes: Mapping[int, str]) -> str:
    """'skipped 135 rows (...) and 1 episode (...)': what training leaves out, and why."""
    out = []
    if sum(rows.values()):
        reasons = ', '.join(f'{n} {why}' for why, n in rows.items() if n)
        out.append(f'{sum(rows.values())} rows ({reasons})')
    if episodes:
        out.append(f'{len(episodes)} episode{"s" if len(episodes) > 1 else ""} without a '
                   'usable row (' + '; '.join(f'episode {i}: {why}'
                                              for i, why in episodes.items()) + ')')
    return 'skipped ' + ' and '.join(out) if out else 'no rows skipped'


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
