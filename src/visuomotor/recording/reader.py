"""Reading a recorded dataset back (pyarrow + PyAV; no LeRobot needed).

Used by the dataset check, the exports and the tests: episodes come back as numpy columns
and decoded frames, exactly as LeRobot would index them (rows by `index`, frames of episode e
at `from_timestamp + frame_index / fps` of its mp4).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.errors import VisuomotorError
from visuomotor.recording.lerobot_v3 import CODEBASE_VERSION, EPISODES_FILE, image_key
from visuomotor.recording.video import iter_video, read_video


class DatasetError(VisuomotorError, ValueError):
    """A dataset cannot be read; the message names the file and what is wrong."""


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

    def frames(self, camera: str) -> list[npt.NDArray[np.uint8]]:
        """Every frame of a camera, decoded (rgb8; for long episodes prefer iter_frames)."""
        return read_video(self.videos[camera])

    def iter_frames(self, camera: str) -> Iterator[npt.NDArray[np.uint8]]:
        """The frames of a camera, decoded one at a time (rgb8)."""
        return iter_video(self.videos[camera])


class DatasetReader:
    """A LeRobot v3.0 dataset on disk."""

    def __init__(self, path: str | Path) -> None:
        import pyarrow.parquet as pq

        self.path = Path(path)
        root = self.path.resolve()
        info_file = root / 'meta' / 'info.json'
        if not info_file.is_file():
            raise DatasetError(f'{self.path}: no meta/info.json; this is not a recorded '
                               'dataset (or nothing has been committed yet)')
        self.info: dict[str, Any] = json.loads(info_file.read_text())
        if self.info.get('codebase_version') != CODEBASE_VERSION:
            raise DatasetError(f'{info_file}: codebase_version '
                               f'{self.info.get("codebase_version")!r}, this reader reads '
                               f'{CODEBASE_VERSION}')
        # Files are read through the dataset link, not the snapshot it pointed at when opened:
        # a commit meanwhile replaces the snapshot, and every earlier episode's files are in
        # the new one too (so a check or a training job can read while recording goes on).
        self.root = self.path
        self.fps = float(self.info['fps'])
        self.features: dict[str, Any] = self.info['features']
        self.cameras = [k.removeprefix('observation.images.') for k, v in self.features.items()
                        if v.get('dtype') == 'video']
        episodes_file = root / EPISODES_FILE
        self.episode_rows = pq.read_table(episodes_file).to_pylist() \
            if episodes_file.is_file() else []
        tasks_file = root / 'meta' / 'tasks.parquet'
        self.tasks: list[str] = []
        if tasks_file.is_file():
            table = pq.read_table(tasks_file)
            order = np.argsort(table.column('task_index').to_numpy())
            names = table.column('task').to_pylist()
            self.tasks = [names[i] for i in order]
        stats_file = root / 'meta' / 'stats.json'
        self.stats = json.loads(stats_file.read_text()) if stats_file.is_file() else {}

    def __len__(self) -> int:
        return len(self.episode_rows)

    def episode(self, index: int) -> Episode:
        """One episode's columns and videos."""
        import pyarrow.parquet as pq

        if not 0 <= index < len(self.episode_rows):
            raise DatasetError(f'{self.path}: no episode {index} (it has '
                               f'{len(self.episode_rows)})')
        row = self.episode_rows[index]
        data_file = self.root / self.info['data_path'].format(
            chunk_index=row['data/chunk_index'], file_index=row['data/file_index'])
        table = pq.read_table(data_file)
        columns: dict[str, npt.NDArray[Any]] = {}
        for name in table.column_names:
            column = table.column(name)
            if column.type.__class__.__name__ == 'FixedSizeListType':
                width = column.type.list_size
                flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
                columns[name] = flat.reshape(-1, width)
            else:
                columns[name] = column.to_numpy()
        mine = columns['episode_index'] == index
        columns = {k: v[mine] for k, v in columns.items()}
        videos = {}
        for camera in self.cameras:
            key = image_key(camera)
            videos[camera] = self.root / self.info['video_path'].format(
                video_key=key, chunk_index=row[f'videos/{key}/chunk_index'],
                file_index=row[f'videos/{key}/file_index'])
        task_index = int(columns['task_index'][0]) if len(columns['task_index']) else 0
        provenance = json.loads(row.get('visuomotor/provenance') or '{}')
        return Episode(index, self.tasks[task_index] if self.tasks else '', columns, videos,
                       list(row.get('visuomotor/marks') or []), provenance)
