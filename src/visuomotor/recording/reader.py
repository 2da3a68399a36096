"""Reading a recorded dataset back (pyarrow + PyAV; no LeRobot needed).

Used by the dataset check, the exports, training and the tests: episodes come back as numpy
columns and decoded frames, exactly as LeRobot would index them (rows by `index`, frames of
episode e at `from_timestamp + frame_index / fps` of its mp4).

meta/info.json is the commit record: the reader takes episodes 0 .. total_episodes - 1 and
ignores any file of a later episode (a commit in progress, or one a kill interrupted). Files
of committed episodes never change, so a dataset can be read while it is being recorded into.
Every unreadable, missing or inconsistent file raises DatasetError naming the file and the
fix. Datasets in the old snapshot-link layout (legacy.py) are read through their link.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.recording.errors import DatasetError
from visuomotor.recording.lerobot_v3 import (
    FLAGS,
    STATS_PATH,
    TASKS_PATH,
    image_key,
    load_info,
    read_json,
    read_parquet,
    read_tasks,
)
from visuomotor.recording.video import iter_video

__all__ = ['DatasetError', 'DatasetReader', 'Episode']


def _video_error(path: Path, episode: int, camera: str, exc: Exception) -> DatasetError:
    return DatasetError(f'{path}: episode {episode} camera {camera}: the video cannot be '
                        f'decoded ({exc}); restore it from a copy of the dataset, or '
                        f'leave the episode out (visuomotor train --exclude-episodes '
                        f'{episode})')


@dataclass(frozen=True)
class Episode:
    """One episode's rows (numpy columns) and where its videos are."""

    index: int
    task: str
    columns: dict[str, npt.NDArray[Any]]
    videos: dict[str, Path]
    marks: list[str]
    provenance: dict[str, Any]

    @property
    def length(self) -> int:
        """Rows."""
        return len(self.columns['frame_index'])

    @property
    def flags(self) -> npt.NDArray[np.int64]:
        """Per-row quality flags (episode.py; zeros where the dataset has no such column)."""
        if FLAGS in self.columns:
            return np.asarray(self.columns[FLAGS]).astype(np.int64)
        return np.zeros(self.length, dtype=np.int64)

    def frames(self, camera: str) -> list[npt.NDArray[np.uint8]]:
        """Every frame of a camera, decoded (rgb8; for long episodes prefer iter_frames)."""
        return list(self.iter_frames(camera))

    def iter_frames(self, camera: str) -> Iterator[npt.NDArray[np.uint8]]:
        """The frames of a camera, decoded one at a time (rgb8)."""
        import av

        path = self.videos[camera]
        if not path.is_file():
            raise DatasetError(f'{path}: missing (episode {self.index} camera {camera}); '
                               'restore it from a copy of the dataset, or leave the episode '
                               f'out (visuomotor train --exclude-episodes {self.index})')
        try:
            yield from iter_video(path)
        except (av.FFmpegError, OSError) as exc:
            raise _video_error(path, self.index, camera, exc) from None


class DatasetReader:
    """A LeRobot v3.0 dataset on disk (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_symlink() and not self.path.exists():
            raise DatasetError(f'{self.path}: a link to {self.path.readlink()}, which does not '
                               'exist (an old snapshot-layout dataset copied without its '
                               'hidden .store directory); copy it again with the store')
        if not self.path.exists():
            building = self.path.parent / f'.{self.path.name}.converting'
            hint = (f'; an interrupted conversion left {building}: open the dataset for '
                    'recording to finish it' if building.is_dir() else '')
            raise DatasetError(f'{self.path}: no such dataset{hint}')
        root = self.path.resolve()
        self.info: dict[str, Any] = load_info(root)
        # Files are read through the given path: an old snapshot-link dataset converted
        # meanwhile has every committed episode at the same path.
        self.root = self.path
        self.fps = float(self.info['fps'])
        self.features: dict[str, Any] = self.info['features']
        self.cameras = [k.removeprefix('observation.images.') for k, v in self.features.items()
                        if isinstance(v, dict) and v.get('dtype') == 'video']
        for key in ('data_path', *(['video_path'] if self.cameras else [])):
            if not isinstance(self.info.get(key), str):
                raise DatasetError(f'{root / "meta" / "info.json"}: {key!r} is '
                                   f'{self.info.get(key)!r}, expected a path template; '
                                   'restore meta/info.json from a copy of the dataset')
        total = int(self.info['total_episodes'])
        self.episode_rows = self._episode_rows(root, total)
        frames = sum(int(r['length']) for r in self.episode_rows)
        if frames != int(self.info['total_frames']):
            raise DatasetError(f'{root / "meta" / "info.json"}: total_frames '
                               f'{self.info["total_frames"]}, but the episodes hold {frames} '
                               'rows; restore meta/ from a copy of the dataset')
        tasks_file = root / TASKS_PATH
        # rows beyond total_tasks: a commit not (yet) made
        self.tasks: list[str] = read_tasks(tasks_file)[:int(self.info.get('total_tasks', 0))] \
            if tasks_file.exists() else []
        stats_file = root / STATS_PATH
        self.stats = read_json(stats_file, 'the dataset statistics') \
            if stats_file.exists() else {}

    @staticmethod
    def _episode_rows(root: Path, total: int) -> list[dict[str, Any]]:
        """Rows of episodes 0..total-1 from every meta/episodes file, as LeRobot globs them.

        The per-episode statistics are not read.
        """
        import pyarrow.parquet as pq

        rows: dict[int, dict[str, Any]] = {}
        for file in sorted(root.glob('meta/episodes/*/*.parquet')):
            try:
                names = pq.read_schema(file).names
            except Exception:  # noqa: BLE001 - read_parquet names the file and the fix
                names = None
            columns = [n for n in names if not n.startswith('stats/')] if names else None
            if columns is not None and 'episode_index' not in columns:
                raise DatasetError(f'{file}: no episode_index column; restore it from a copy '
                                   'of the dataset')
            for row in read_parquet(file, 'episodes metadata', columns).to_pylist():
                index = int(row['episode_index'])
                if index < total:  # later ones: a commit not (yet) made
                    rows.setdefault(index, row)
        missing = [i for i in range(total) if i not in rows]
        if missing:
            raise DatasetError(f'{root / "meta" / "episodes"}: no metadata for episodes '
                               f'{missing[:5]}{"..." if len(missing) > 5 else ""} (info.json '
                               f'says {total}); restore meta/episodes from a copy of the '
                               'dataset')
        return [rows[i] for i in range(total)]

    def __len__(self) -> int:
        return len(self.episode_rows)

    def episode(self, index: int) -> Episode:
        """One episode's columns and videos."""
        if not 0 <= index < len(self.episode_rows):
            raise DatasetError(f'{self.path}: no episode {index} (it has '
                               f'{len(self.episode_rows)}: 0..{len(self.episode_rows) - 1})')
        row = self.episode_rows[index]
        try:
            data_file = self.root / self.info['data_path'].format(
                chunk_index=row['data/chunk_index'], file_index=row['data/file_index'])
        except (KeyError, ValueError) as exc:
            raise DatasetError(f'{self.path}: episode {index} metadata lacks its data file '
                               f'({exc}); restore meta/ from a copy of the dataset') from None
        table = read_parquet(data_file, f'episode {index} data')
        columns: dict[str, npt.NDArray[Any]] = {}
        for name in table.column_names:
            column = table.column(name)
            if column.type.__class__.__name__ == 'FixedSizeListType':
                width = column.type.list_size
                flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
                columns[name] = flat.reshape(-1, width)
            else:
                columns[name] = column.to_numpy()
        if 'episode_index' not in columns or 'frame_index' not in columns:
            raise DatasetError(f'{data_file}: no episode_index/frame_index column; restore it '
                               'from a copy of the dataset')
        mine = columns['episode_index'] == index
        columns = {k: v[mine] for k, v in columns.items()}
        if len(columns['frame_index']) != int(row['length']):
            raise DatasetError(f'{data_file}: episode {index} has {len(columns["frame_index"])} '
                               f'rows, its metadata says {row["length"]}; restore the file from '
                               'a copy of the dataset')
        videos = {}
        for camera in self.cameras:
            key = image_key(camera)
            videos[camera] = self.root / self.info['video_path'].format(
                video_key=key, chunk_index=row[f'videos/{key}/chunk_index'],
                file_index=row[f'videos/{key}/file_index'])
        task_index = int(columns['task_index'][0]) if len(columns.get('task_index', [])) else 0
        try:
            provenance = json.loads(row.get('visuomotor/provenance') or '{}')
        except json.JSONDecodeError:
            provenance = {}
        return Episode(index, self.tasks[task_index] if task_index < len(self.tasks) else '',
                       columns, videos, list(row.get('visuomotor/marks') or []), provenance)
