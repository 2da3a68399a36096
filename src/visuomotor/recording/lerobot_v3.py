"""Episodes into the LeRobot dataset v3.0 layout, one crash-safe commit per episode.

Format facts (LeRobot 0.4.4 and 0.6.1, `codebase_version` "v3.0"; details and citations in
docs/lerobot_v3_format.md):

- `data/chunk-CCC/file-FFF.parquet`: one row per frame, every column declared in
  `meta/info.json` features (an undeclared column fails LeRobot's load); float32 vectors as
  fixed-size lists; `timestamp` = frame_index / fps (float32) because video frames are looked
  up at from_timestamp + timestamp within 1e-4 s; `index` = the global row position.
- `videos/<key>/chunk-CCC/file-FFF.mp4`: constant frame rate, frame k at k / fps.
- `meta/episodes/chunk-000/file-000.parquet`: one row per episode in order (LeRobot indexes
  it by position) with data/video file indices, global index ranges and per-episode stats.
- `meta/tasks.parquet`: the task string as the pandas index named `task`, column
  `task_index`, rows in task_index order.
- `meta/stats.json`: min, max, mean, std, count, q01, q10, q50, q90, q99 per feature; images
  per channel, shape (3, 1, 1), scaled to [0, 1].

Here every episode gets its own data file and its own mp4 per camera (file index = episode
index; LeRobot loads per-episode files, from_timestamp 0), which makes each commit a set of
new files plus rewritten metadata: published atomically by the snapshot store. Real capture
times live in `timing.*` int64-nanosecond columns (floats come back from LeRobot as float32),
named without an `observation.`/`action` prefix so policies never take them as inputs. The
policy/teleop target before the safety bridge is `command.raw`.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.recording.episode import CameraFormat, EpisodeData
from visuomotor.recording.snapshots import SnapshotStore
from visuomotor.recording.video import VideoSettings, iter_video

CODEBASE_VERSION = 'v3.0'
CHUNK_SIZE = 1000
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
STATS = ('min', 'max', 'mean', 'std', 'count', *(f'q{int(q * 100):02d}' for q in QUANTILES))
EPISODES_FILE = 'meta/episodes/chunk-000/file-000.parquet'
DATA_PATH = 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
VIDEO_PATH = 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4'


def image_key(camera: str) -> str:
    """The LeRobot feature key of a camera."""
    return f'observation.images.{camera}'


def _files(index: int) -> tuple[int, int]:
    return index // CHUNK_SIZE, index % CHUNK_SIZE


@dataclass(frozen=True)
class DatasetFeatures:
    """What a dataset holds: its rate, cameras and the state/action layout."""

    fps: float
    cameras: tuple[CameraFormat, ...]
    state_names: tuple[str, ...]
    robot_type: str
    video: VideoSettings = VideoSettings()

    def features(self) -> dict[str, Any]:
        """The `features` block of info.json."""
        n = len(self.state_names)
        vector = {'dtype': 'float32', 'shape': [n], 'names': list(self.state_names)}
        out: dict[str, Any] = {
            'observation.state': dict(vector), 'action': dict(vector),
            'command.raw': dict(vector),
        }
        for camera in self.cameras:
            out[image_key(camera.name)] = {
                'dtype': 'video', 'shape': [camera.height, camera.width, 3],
                'names': ['height', 'width', 'channels'],
                'info': {'video.height': camera.height, 'video.width': camera.width,
                         'video.codec': self.video.codec, 'video.pix_fmt': self.video.pix_fmt,
                         'video.is_depth_map': False, 'video.fps': self.fps,
                         'video.channels': 3, 'has_audio': False}}
        scalar = {'shape': [1], 'names': None}
        out['timing.tick_ns'] = {'dtype': 'int64', **scalar}
        out['timing.reference_ns'] = {'dtype': 'int64', **scalar}
        for camera in self.cameras:
            out[f'timing.capture_ns.{camera.name}'] = {'dtype': 'int64', **scalar}
            out[f'timing.seq.{camera.name}'] = {'dtype': 'int64', **scalar}
        out['timestamp'] = {'dtype': 'float32', **scalar}
        for name in ('frame_index', 'episode_index', 'index', 'task_index'):
            out[name] = {'dtype': 'int64', **scalar}
        return out


def _numeric_stats(values: npt.NDArray[np.float64]) -> dict[str, list[Any]]:
    """LeRobot's per-feature statistics over the first axis (NaN entries ignored)."""
    with np.errstate(all='ignore'), warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN columns (no raw command)
        finite = np.where(np.isfinite(values), values, np.nan)
        if values.shape[0] == 0 or np.isnan(finite).all():
            zeros = [0.0] * values.shape[1]
            out: dict[str, list[Any]] = {k: list(zeros) for k in STATS if k != 'count'}
            out['count'] = [int(values.shape[0])]
            return out
        out = {'min': np.nanmin(finite, 0).tolist(), 'max': np.nanmax(finite, 0).tolist(),
               'mean': np.nanmean(finite, 0).tolist(), 'std': np.nanstd(finite, 0).tolist(),
               'count': [int(values.shape[0])]}
        for q in QUANTILES:
            out[f'q{int(q * 100):02d}'] = np.nanquantile(finite, q, axis=0).tolist()
    return {k: [0.0 if isinstance(v, float) and math.isnan(v) else v for v in vals]
            for k, vals in out.items()}


def _image_stats(video: Path, length: int, max_samples: int = 100) -> dict[str, list[Any]]:
    """Per-channel statistics of a video of `length` frames, (3, 1, 1) in [0, 1].

    From about 100 of its frames, decoded one at a time and downsampled 4x.
    """
    step = max(1, length // max_samples)
    kept = [frame[::4, ::4] for k, frame in enumerate(iter_video(video)) if k % step == 0]
    if not kept:
        return {k: [[[0.0]]] * 3 if k != 'count' else [0] for k in STATS}
    pixels = np.stack(kept).astype(np.float64).reshape(-1, 3) / 255.0
    stats = _numeric_stats(pixels)
    out: dict[str, list[Any]] = {k: [[[v]] for v in vals] for k, vals in stats.items()
                                 if k != 'count'}
    out['count'] = [len(kept)]
    return out


def aggregate(per_episode: Sequence[Mapping[str, list[Any]]]) -> dict[str, list[Any]]:
    """Dataset statistics from episode statistics (count-weighted, as LeRobot aggregates)."""
    counts = np.array([float(s['count'][0]) for s in per_episode])
    total = counts.sum()
    weights = counts / total if total > 0 else np.full(len(counts), 1.0 / len(counts))

    def arr(key: str) -> npt.NDArray[np.float64]:
        return np.array([np.asarray(s[key], dtype=np.float64) for s in per_episode])
    shape = (len(per_episode),) + (1,) * (arr('mean').ndim - 1)
    w = weights.reshape(shape)
    mean = (w * arr('mean')).sum(0)
    second = (w * (arr('std') ** 2 + arr('mean') ** 2)).sum(0)
    out: dict[str, list[Any]] = {
        'min': arr('min').min(0).tolist(), 'max': arr('max').max(0).tolist(),
        'mean': mean.tolist(), 'std': np.sqrt(np.maximum(second - mean ** 2, 0.0)).tolist(),
        'count': [int(total)]}
    for key in STATS[5:]:
        out[key] = (w * arr(key)).sum(0).tolist()
    return out


class LeRobotWriter:
    """A LeRobot v3.0 dataset that grows by one committed episode at a time."""

    def __init__(self, dataset: Path, features: DatasetFeatures) -> None:
        self.store = SnapshotStore(dataset)
        self.features = features
        self.recovered = self.store.recover()
        self.store.create()
        self._check_compatible()

    @property
    def path(self) -> Path:
        """The dataset path (a link to the current snapshot)."""
        return self.store.dataset

    def _root(self) -> Path | None:
        return self.store.current()

    def _info(self) -> dict[str, Any] | None:
        root = self._root()
        if root is None:
            return None
        return dict(json.loads((root / 'meta' / 'info.json').read_text()))

    def _check_compatible(self) -> None:
        info = self._info()
        if info is None:
            return
        mine = self.features.features()
        if info.get('fps') != self.features.fps or info.get('features') != mine:
            changed = sorted(k for k in set(mine) | set(info.get('features', {}))
                             if mine.get(k) != info.get('features', {}).get(k))
            raise ValueError(f'dataset {self.path} was recorded with other features or rate '
                             f'(fps {info.get("fps")} vs {self.features.fps}; differing: '
                             f'{changed[:6]}); record into a new dataset')

    @property
    def episodes(self) -> int:
        """Committed episodes."""
        info = self._info()
        return int(info['total_episodes']) if info else 0

    def begin(self) -> tuple[int, Path]:
        """The next episode's index and a fresh staging directory for it."""
        index = self.episodes
        return index, self.store.episode_staging(f'episode_{index:06d}')

    # -- commit ------------------------------------------------------------------------------

    def commit(self, episode: EpisodeData) -> Path:
        """Publish a finished episode (one atomic snapshot swap). Returns the snapshot."""
        import pyarrow.parquet as pq

        if episode.length == 0:
            raise ValueError(f'episode {episode.index} has no rows; discard it instead')
        info = self._info() or self._empty_info()
        if episode.index != info['total_episodes']:
            raise ValueError(f'episode {episode.index} is out of order: the dataset has '
                             f'{info["total_episodes"]} episodes')
        tasks = self._tasks()
        if episode.task not in tasks:
            tasks.append(episode.task)
        task_index = tasks.index(episode.task)
        start = int(info['total_frames'])
        table, ep_stats = self._data_table(episode, start, task_index)
        chunk, file = _files(episode.index)
        staging = episode.videos[next(iter(episode.videos))].parent
        data_file = staging / 'data.parquet'
        pq.write_table(table, data_file)
        new_files: dict[str, Path] = {DATA_PATH.format(chunk_index=chunk,
                                                       file_index=file): data_file}
        duration = episode.length / self.features.fps
        row: dict[str, Any] = {
            'episode_index': episode.index, 'tasks': [episode.task], 'length': episode.length,
            'data/chunk_index': chunk, 'data/file_index': file,
            'dataset_from_index': start, 'dataset_to_index': start + episode.length}
        for camera in self.features.cameras:
            key = image_key(camera.name)
            new_files[VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)] = \
                episode.videos[camera.name]
            row.update({f'videos/{key}/chunk_index': chunk, f'videos/{key}/file_index': file,
                        f'videos/{key}/from_timestamp': 0.0,
                        f'videos/{key}/to_timestamp': duration})
            ep_stats[key] = _image_stats(episode.videos[camera.name], episode.length)
        for feature, feature_stats in ep_stats.items():
            for stat, value in feature_stats.items():
                row[f'stats/{feature}/{stat}'] = value
        row['meta/episodes/chunk_index'], row['meta/episodes/file_index'] = 0, 0
        row['visuomotor/marks'] = list(episode.marks)
        row['visuomotor/provenance'] = json.dumps(episode.provenance, sort_keys=True,
                                                  default=str)
        episodes = self._episode_rows() + [row]
        info['total_episodes'] = episode.index + 1
        info['total_frames'] = start + episode.length
        info['total_tasks'] = len(tasks)
        info['splits'] = {'train': f'0:{episode.index + 1}'}
        stats = {feature: aggregate([_row_stats(e, feature) for e in episodes])
                 for feature in ep_stats}
        metadata = {
            'meta/info.json': (json.dumps(info, indent=2) + '\n').encode(),
            'meta/stats.json': (json.dumps(stats, indent=2) + '\n').encode(),
            'meta/tasks.parquet': _tasks_parquet(tasks),
            EPISODES_FILE: _parquet_bytes(_episodes_table(episodes)),
        }
        snapshot = self.store.commit(new_files, metadata)
        shutil.rmtree(staging, ignore_errors=True)  # its files now live in the snapshot
        return snapshot

    def _empty_info(self) -> dict[str, Any]:
        f = self.features
        return {'codebase_version': CODEBASE_VERSION, 'robot_type': f.robot_type,
                'total_episodes': 0, 'total_frames': 0, 'total_tasks': 0,
                'chunks_size': CHUNK_SIZE, 'data_files_size_in_mb': 100,
                'video_files_size_in_mb': 200, 'fps': f.fps, 'splits': {},
                'data_path': DATA_PATH, 'video_path': VIDEO_PATH if f.cameras else None,
                'features': f.features()}

    def _tasks(self) -> list[str]:
        import pyarrow.parquet as pq
        root = self._root()
        if root is None or not (root / 'meta' / 'tasks.parquet').is_file():
            return []
        table = pq.read_table(root / 'meta' / 'tasks.parquet')
        order = np.argsort(table.column('task_index').to_numpy())
        names = table.column('task').to_pylist()
        return [names[i] for i in order]

    def _episode_rows(self) -> list[dict[str, Any]]:
        import pyarrow.parquet as pq
        root = self._root()
        if root is None or not (root / EPISODES_FILE).is_file():
            return []
        return list(pq.read_table(root / EPISODES_FILE).to_pylist())

    def _data_table(self, episode: EpisodeData, start: int, task_index: int
                    ) -> tuple[Any, dict[str, dict[str, list[Any]]]]:
        import pyarrow as pa

        n = episode.length
        cols = episode.columns
        dim = len(self.features.state_names)

        def vectors(values: npt.NDArray[np.float64]) -> Any:
            flat = pa.array(values.astype(np.float32).reshape(-1), type=pa.float32())
            return pa.FixedSizeListArray.from_arrays(flat, dim)

        def nanoseconds(seconds: npt.NDArray[np.float64]) -> Any:
            return pa.array(np.round(seconds * 1e9).astype(np.int64), type=pa.int64())

        arrays: dict[str, Any] = {
            'observation.state': vectors(cols['state']), 'action': vectors(cols['action']),
            'command.raw': vectors(cols['action_raw']),
            'timing.tick_ns': nanoseconds(cols['tick_s']),
            'timing.reference_ns': nanoseconds(cols['reference_s'])}
        for camera in self.features.cameras:
            arrays[f'timing.capture_ns.{camera.name}'] = nanoseconds(
                cols[f'capture_s.{camera.name}'])
            arrays[f'timing.seq.{camera.name}'] = pa.array(
                cols[f'seq.{camera.name}'].astype(np.int64), type=pa.int64())
        frame_index = np.arange(n, dtype=np.int64)
        arrays['timestamp'] = pa.array((frame_index / self.features.fps).astype(np.float32))
        arrays['frame_index'] = pa.array(frame_index)
        arrays['episode_index'] = pa.array(np.full(n, episode.index, dtype=np.int64))
        arrays['index'] = pa.array(np.arange(start, start + n, dtype=np.int64))
        arrays['task_index'] = pa.array(np.full(n, task_index, dtype=np.int64))
        stats = {'observation.state': _numeric_stats(cols['state']),
                 'action': _numeric_stats(cols['action']),
                 'command.raw': _numeric_stats(cols['action_raw']),
                 'timestamp': _numeric_stats((frame_index / self.features.fps)[:, None]),
                 'frame_index': _numeric_stats(frame_index[:, None].astype(np.float64)),
                 'episode_index': _numeric_stats(np.full((n, 1), float(episode.index))),
                 'index': _numeric_stats(np.arange(start, start + n, dtype=np.float64)[:, None]),
                 'task_index': _numeric_stats(np.full((n, 1), float(task_index)))}
        return pa.table(arrays), stats


def _row_stats(row: Mapping[str, Any], feature: str) -> dict[str, list[Any]]:
    """One feature's statistics from an episodes-metadata row."""
    return {stat: row[f'stats/{feature}/{stat}'] for stat in STATS}


def _episodes_table(rows: Sequence[Mapping[str, Any]]) -> Any:
    """The episodes metadata table (string lists typed explicitly: they may all be empty)."""
    import pyarrow as pa
    table = pa.Table.from_pylist(list(rows))
    for name in ('tasks', 'visuomotor/marks'):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, table.column(name).cast(pa.list_(pa.string())))
    return table


def _parquet_bytes(table: Any) -> bytes:
    import pyarrow.parquet as pq
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _tasks_parquet(tasks: Sequence[str]) -> bytes:
    """tasks.parquet as pandas writes it: `task` is the (named) index, `task_index` a column.

    LeRobot reads it with pandas and looks the task string up as the row's index label, so
    the pandas metadata that marks `task` as the index is written explicitly.
    """
    import pyarrow as pa
    table = pa.table({'task_index': pa.array(range(len(tasks)), type=pa.int64()),
                      'task': pa.array(list(tasks), type=pa.string())})
    pandas_meta = {
        'index_columns': ['task'],
        'column_indexes': [{'name': None, 'field_name': None, 'pandas_type': 'unicode',
                            'numpy_type': 'object', 'metadata': {'encoding': 'UTF-8'}}],
        'columns': [
            {'name': 'task_index', 'field_name': 'task_index', 'pandas_type': 'int64',
             'numpy_type': 'int64', 'metadata': None},
            {'name': 'task', 'field_name': 'task', 'pandas_type': 'unicode',
             'numpy_type': 'object', 'metadata': None}],
        'creator': {'library': 'pyarrow', 'version': pa.__version__},
        'pandas_version': '2.2.3'}
    table = table.replace_schema_metadata({b'pandas': json.dumps(pandas_meta).encode()})
    return _parquet_bytes(table)
