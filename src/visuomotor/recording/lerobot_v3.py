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

Here every episode gets its own data file, its own mp4 per camera and its own
episodes-metadata file (file index = episode index; LeRobot loads per-episode files, and globs
every file under data/ and meta/episodes/), so a commit publishes new files and replaces only
tasks.parquet, stats.json and, last, info.json: the dataset path is a plain directory in
exactly the layout LeRobot writes and reads (crash safety: `LeRobotWriter`, store.py). Real
capture times live in `timing.*` int64-nanosecond columns (floats come back from LeRobot as
float32), and per-row quality flags in `quality.flags` (int64, 0: a usable row; episode.py),
named without an `observation.`/`action` prefix so policies never take them as inputs. The
policy/teleop target before the safety bridge is `command.raw`.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.recording.episode import CameraFormat, EpisodeData, refusal
from visuomotor.recording.errors import DatasetError, EpisodeRefusedError
from visuomotor.recording.store import STAGING, DatasetDir
from visuomotor.recording.video import VideoSettings, iter_video

log = logging.getLogger(__name__)

CODEBASE_VERSION = 'v3.0'
CHUNK_SIZE = 1000
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
STATS = ('min', 'max', 'mean', 'std', 'count', *(f'q{int(q * 100):02d}' for q in QUANTILES))
INFO_PATH = 'meta/info.json'
STATS_PATH = 'meta/stats.json'
TASKS_PATH = 'meta/tasks.parquet'
EPISODES_PATH = 'meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
DATA_PATH = 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
VIDEO_PATH = 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4'
#: The per-row quality flags column (episode.py: 0 is a usable row).
FLAGS = 'quality.flags'
_FILE_NAME = re.compile(r'chunk-(\d+)/file-(\d+)\.(?:parquet|mp4)$')


def image_key(camera: str) -> str:
    """The LeRobot feature key of a camera."""
    return f'observation.images.{camera}'


def _files(index: int) -> tuple[int, int]:
    return index // CHUNK_SIZE, index % CHUNK_SIZE


def file_episode(path: Path) -> int | None:
    """The episode a per-episode file belongs to (chunk-CCC/file-FFF: CCC * 1000 + FFF)."""
    match = _FILE_NAME.search(path.as_posix())
    return int(match[1]) * CHUNK_SIZE + int(match[2]) if match else None


def _staging_name(index: int) -> str:
    return f'episode_{index:06d}'


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2) + '\n').encode()


def read_json(path: Path, what: str) -> Any:
    """A JSON file, or a DatasetError naming it and the fix."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f'{path}: missing ({what}); restore it from a copy of the '
                           'dataset') from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f'{path}: cannot be read as JSON ({what}: {exc}); restore it from '
                           'a copy of the dataset') from None


def load_info(root: Path) -> dict[str, Any]:
    """meta/info.json, checked for what every reader and writer relies on."""
    path = root / INFO_PATH
    if not path.exists() and not path.is_symlink():
        raise DatasetError(f'{root}: no meta/info.json; this is not a recorded dataset (give '
                           'the path the recorder wrote to), or its info.json was lost '
                           '(restore it from a copy of the dataset)')
    info = read_json(path, "the dataset's commit record")
    if not isinstance(info, dict):
        raise DatasetError(f'{path}: holds {type(info).__name__}, not a JSON object; restore '
                           'it from a copy of the dataset')
    if info.get('codebase_version') != CODEBASE_VERSION:
        raise DatasetError(f'{path}: codebase_version {info.get("codebase_version")!r}, this '
                           f'reader reads {CODEBASE_VERSION!r} (LeRobot converts older '
                           'datasets with its convert_dataset_v21_to_v30 script)')
    for key, expected in (('fps', 'a number'), ('features', 'an object'),
                          ('total_episodes', 'an integer'), ('total_frames', 'an integer')):
        value = info.get(key)
        ok = {'a number': isinstance(value, (int, float)) and value > 0,
              'an object': isinstance(value, dict),
              'an integer': isinstance(value, int) and value >= 0}[expected]
        if not ok or isinstance(value, bool):
            raise DatasetError(f'{path}: {key!r} is {value!r}, expected {expected}; restore '
                               'meta/info.json from a copy of the dataset')
    return info


def read_parquet(path: Path, what: str, columns: Sequence[str] | None = None) -> Any:
    """A parquet table, or a DatasetError naming the file and the fix."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, columns=list(columns) if columns is not None else None)
    except FileNotFoundError:
        raise DatasetError(f'{path}: missing ({what}); restore it from a copy of the '
                           'dataset') from None
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(f'{path}: cannot be read as parquet ({what}: truncated or '
                           f'corrupt: {exc}); restore it from a copy of the dataset') from None


def read_tasks(path: Path) -> list[str]:
    """The tasks of tasks.parquet in task_index order."""
    table = read_parquet(path, 'the task list')
    if not {'task', 'task_index'} <= set(table.column_names):
        raise DatasetError(f'{path}: no task/task_index columns; restore it from a copy of '
                           'the dataset')
    order = np.argsort(table.column('task_index').to_numpy())
    names = table.column('task').to_pylist()
    return [str(names[i]) for i in order]


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
        out[FLAGS] = {'dtype': 'int64', **scalar}
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
    """A LeRobot v3.0 dataset directory that grows by one committed episode at a time.

    The commit of episode N (no file is modified in place; each step is a durable rename,
    store.py):

    1. its mp4 per camera, then its data parquet are published under their final names (new
       files: episode N's own);
    2. meta/tasks.parquet (if N has a new task: a row appended) and meta/stats.json (the
       aggregate including N) are replaced;
    3. its episodes-metadata parquet is published (a new file);
    4. meta/info.json (total_episodes N + 1, total_frames, total_tasks) is replaced: the
       commit point.

    Readers trust info.json: files of episodes >= total_episodes are ignored (ours reads the
    episodes 0..total-1 only; LeRobot takes len() from total_frames and the extra rows it
    globs sit after every committed one), so a kill before step 4 leaves the previous state,
    and a kill after it the new one, both loadable without repair (docs/lerobot_v3_format.md
    §10 goes through every point). Opening the dataset for writing removes such leftovers
    (staging, files of uncommitted episodes) and rewrites tasks/stats to match info.json. Old
    datasets in the snapshot-link layout are converted when opened (legacy.py).
    """

    def __init__(self, dataset: Path, features: DatasetFeatures) -> None:
        from visuomotor.recording import legacy

        self.path = Path(dataset)
        self.features = features
        self.converted: str | None = None
        old = legacy.snapshot_info(self.path)
        if old is not None:  # refuse before converting anything
            self._check_compatible(legacy.converted_features(old), old.get('fps'))
            self.converted = legacy.convert(self.path)
        else:
            self.converted = legacy.finish_interrupted(self.path)
        if self.converted:
            log.warning('%s', self.converted)
        self.dir = DatasetDir(self.path)
        self._info = self._open()
        self._check_compatible(self._info.get('features'), self._info.get('fps'))
        self._rows: list[dict[str, Any]] = []
        self._tasks: list[str] = []
        self.recovered = self._recover()

    # -- opening -----------------------------------------------------------------------------

    def _open(self) -> dict[str, Any]:
        path = self.path
        if path.exists() and not path.is_dir():
            raise DatasetError(f'{path} is a file, not a dataset directory; choose a new '
                               'dataset path')
        if (path / INFO_PATH).exists() or (path / INFO_PATH).is_symlink():
            return load_info(path)
        entries = sorted(p.name for p in path.iterdir() if p.name != STAGING) \
            if path.is_dir() else []
        if entries:
            raise DatasetError(f'{path} exists and is not a dataset (no meta/info.json; it '
                               f'holds {entries[:5]}); choose a new dataset path (or, if it '
                               'was a dataset, restore meta/info.json from a copy of it)')
        self.dir.make_dirs(path)
        info = self._empty_info()
        self.dir.write(INFO_PATH, _json_bytes(info))
        return info

    def _check_compatible(self, features: Any, fps: Any) -> None:
        mine = self.features.features()
        theirs = features if isinstance(features, dict) else {}
        if fps != self.features.fps or theirs != mine:
            changed = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            raise DatasetError(f'dataset {self.path} was recorded with other features or rate '
                               f'(fps {fps} vs {self.features.fps}; differing: {changed[:6]}); '
                               'record into a new dataset')

    def _recover(self) -> list[str]:
        """Remove what an interrupted run left; make tasks/stats match info.json."""
        removed = self.dir.clear_staging()
        total = int(self._info['total_episodes'])
        for pattern in ('videos/*/*/*.mp4', 'data/*/*.parquet', 'meta/episodes/*/*.parquet'):
            for file in sorted(self.path.glob(pattern)):
                index = file_episode(file)
                if index is not None and index >= total:
                    relative = file.relative_to(self.path).as_posix()
                    self.dir.remove(relative)
                    removed.append(f'{relative} (episode {index}, whose commit was '
                                   'interrupted)')
        self._rows = [self._episode_row(i) for i in range(total)]
        tasks = self._read_tasks()
        wanted = int(self._info.get('total_tasks', 0))
        if len(tasks) < wanted:
            raise DatasetError(f'{self.path / TASKS_PATH}: {len(tasks)} tasks, info.json says '
                               f'{wanted}; restore meta/tasks.parquet from a copy of the '
                               'dataset')
        if len(tasks) > wanted:
            self.dir.write(TASKS_PATH, _tasks_parquet(tasks[:wanted]))
            removed.append(f'{TASKS_PATH}: {len(tasks) - wanted} task(s) of an interrupted '
                           'commit')
        self._tasks = tasks[:wanted]
        stats = self._stats(self._rows)
        current = self._read_stats()
        if stats is None and current is not None:
            self.dir.remove(STATS_PATH)
            removed.append(f'{STATS_PATH} (of an interrupted first commit)')
        elif stats is not None and current != json.loads(_json_bytes(stats)):
            self.dir.write(STATS_PATH, _json_bytes(stats))
            removed.append(f'{STATS_PATH}: statistics of an interrupted commit (rewritten from '
                           'the committed episodes)')
        for line in removed:
            log.warning('dataset %s: removed %s', self.path, line)
        return removed

    def _episode_row(self, index: int) -> dict[str, Any]:
        chunk, file = _files(index)
        path = self.path / EPISODES_PATH.format(chunk_index=chunk, file_index=file)
        rows = read_parquet(path, f'episode {index} metadata').to_pylist()
        if len(rows) != 1 or rows[0].get('episode_index') != index:
            raise DatasetError(f'{path}: expected the one metadata row of episode {index}; '
                               'restore it from a copy of the dataset')
        return dict(rows[0])

    def _read_tasks(self) -> list[str]:
        path = self.path / TASKS_PATH
        if not path.exists():
            return []
        return read_tasks(path)

    def _read_stats(self) -> Any:
        path = self.path / STATS_PATH
        return read_json(path, 'the dataset statistics') if path.exists() else None

    def _stats(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
        if not rows:
            return None
        features = list(dict.fromkeys(key.split('/')[1] for key in rows[0]
                                      if key.startswith('stats/')))
        return {feature: aggregate([_row_stats(r, feature) for r in rows])
                for feature in features}

    @property
    def episodes(self) -> int:
        """Committed episodes."""
        return int(self._info['total_episodes'])

    def begin(self) -> tuple[int, Path]:
        """The next episode's index and a fresh staging directory for it."""
        index = self.episodes
        return index, self.dir.episode_staging(_staging_name(index))

    # -- commit ------------------------------------------------------------------------------

    def commit(self, episode: EpisodeData) -> Path:
        """Publish a finished episode (see the class docstring). Returns the dataset path.

        Raises:
            EpisodeRefusedError: no row of it is usable (its staged files are removed).
        """
        import pyarrow.parquet as pq

        if episode.length == 0:
            raise ValueError(f'episode {episode.index} has no rows; discard it instead')
        info = dict(self._info)
        if episode.index != info['total_episodes']:
            raise ValueError(f'episode {episode.index} is out of order: the dataset has '
                             f'{info["total_episodes"]} episodes')
        staging = self.dir.staging / _staging_name(episode.index)
        flags = episode.columns.get('flags', np.zeros(episode.length))
        why = refusal(episode.index, flags)
        if why is not None:
            self.dir.remove_staged(staging)
            raise EpisodeRefusedError(why)
        staging.mkdir(parents=True, exist_ok=True)
        tasks = list(self._tasks)
        new_task = episode.task not in tasks
        if new_task:
            tasks.append(episode.task)
        task_index = tasks.index(episode.task)
        start = int(info['total_frames'])
        table, ep_stats = self._data_table(episode, start, task_index)
        chunk, file = _files(episode.index)
        data_file = staging / 'data.parquet'
        pq.write_table(table, data_file)
        duration = episode.length / self.features.fps
        row: dict[str, Any] = {
            'episode_index': episode.index, 'tasks': [episode.task], 'length': episode.length,
            'data/chunk_index': chunk, 'data/file_index': file,
            'dataset_from_index': start, 'dataset_to_index': start + episode.length}
        videos: dict[str, Path] = {}
        for camera in self.features.cameras:
            key = image_key(camera.name)
            videos[VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)] = \
                episode.videos[camera.name]
            row.update({f'videos/{key}/chunk_index': chunk, f'videos/{key}/file_index': file,
                        f'videos/{key}/from_timestamp': 0.0,
                        f'videos/{key}/to_timestamp': duration})
            ep_stats[key] = _image_stats(episode.videos[camera.name], episode.length)
        for feature, feature_stats in ep_stats.items():
            for stat, value in feature_stats.items():
                row[f'stats/{feature}/{stat}'] = value
        row['meta/episodes/chunk_index'], row['meta/episodes/file_index'] = chunk, file
        row['visuomotor/marks'] = list(episode.marks)
        row['visuomotor/provenance'] = json.dumps(episode.provenance, sort_keys=True,
                                                  default=str)
        rows = [*self._rows, row]
        info['total_episodes'] = episode.index + 1
        info['total_frames'] = start + episode.length
        info['total_tasks'] = len(tasks)
        info['splits'] = {'train': f'0:{episode.index + 1}'}
        stats = self._stats(rows)
        # The order is the crash-safety argument (class docstring): the episode's own files,
        # then the shared metadata, then info.json.
        for relative, source in videos.items():
            self.dir.publish(relative, source)
        self.dir.publish(DATA_PATH.format(chunk_index=chunk, file_index=file), data_file)
        if new_task:
            self.dir.write(TASKS_PATH, _tasks_parquet(tasks))
        self.dir.write(STATS_PATH, _json_bytes(stats))
        # Its metadata row just before the commit point: LeRobot's meta.episodes (a glob) is
        # one row longer than info.json says only between these two renames.
        self.dir.write(EPISODES_PATH.format(chunk_index=chunk, file_index=file),
                       _parquet_bytes(_episodes_table([row])))
        self.dir.write(INFO_PATH, _json_bytes(info))  # the commit point
        self._info, self._rows, self._tasks = info, rows, tasks
        self.dir.remove_staged(staging)
        return self.path

    def _empty_info(self) -> dict[str, Any]:
        f = self.features
        return {'codebase_version': CODEBASE_VERSION, 'robot_type': f.robot_type,
                'total_episodes': 0, 'total_frames': 0, 'total_tasks': 0,
                'chunks_size': CHUNK_SIZE, 'data_files_size_in_mb': 100,
                'video_files_size_in_mb': 200, 'fps': f.fps, 'splits': {},
                'data_path': DATA_PATH, 'video_path': VIDEO_PATH if f.cameras else None,
                'features': f.features()}

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
        flags = cols.get('flags', np.zeros(n))
        arrays[FLAGS] = pa.array(np.asarray(flags).astype(np.int64), type=pa.int64())
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
