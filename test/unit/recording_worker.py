"""Subprocess entry point of test_recording_crash.py: records episodes until it is killed.

    python recording_worker.py DATASET --seed N [--episodes M] [--pause-at WHERE]

Every episode goes through the whole pipeline (Recorder -> encoders -> LeRobotWriter ->
DatasetDir) with synthetic frames, h264 at 64x48, for a random 3-15 camera periods (ticks
at twice the rate). A frame's content and the joint positions are known from its sequence
number, which every row stores (`timing.seq.<camera>`). After each commit returns, the
worker prints `COMMITTED <index> <rows>` and flushes, so the parent knows what must be in
the dataset when it kills the worker with SIGKILL.

`--pause-at` makes a commit stop forever at a chosen point so the parent can kill it there.
A commit publishes, each by one rename: the episode's mp4s, its data parquet, tasks.parquet
(only when the episode brings a new task: the paused episode does), stats.json, its
episodes-metadata parquet and, last, info.json (the commit point). `staged` stops just before
the first of these renames (every file of the episode written in staging), `video`, `data`,
`tasks`, `stats`, `episodes` and `info` just after the rename of that file (after `info` the
episode is committed, but the commit has not returned, so `COMMITTED` is never printed). The
pause happens in the commit of the second episode of this run (the first one is committed
normally, so there is a previous state to keep); the worker prints `PAUSED <commits>` first.

The module is also imported by the tests: features, colours, recording one episode, and
`lerobot_view`, the invariants LeRobot's loader relies on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from visuomotor.cameras.sync import SyncConfig
from visuomotor.recording.episode import CameraFormat
from visuomotor.recording.lerobot_v3 import DatasetFeatures, LeRobotWriter
from visuomotor.recording.recorder import Recorder, RecorderConfig
from visuomotor.recording.video import VideoSettings

FPS = 10.0
WIDTH, HEIGHT = 64, 48
CAMERAS = (CameraFormat('scene', WIDTH, HEIGHT), CameraFormat('wrist', WIDTH, HEIGHT))
JOINTS = ('j0', 'j1', 'j2')
TASKS = ('pick the cube', 'open the drawer')
#: The task of the paused episode: new, so the paused commit rewrites tasks.parquet too.
NEW_TASK = 'stack the blocks'
#: --pause-at points (see the module docstring), in the order a commit passes them.
PAUSE_POINTS = ('staged', 'video', 'data', 'tasks', 'stats', 'episodes', 'info')
VIDEO = VideoSettings('h264')


def features() -> DatasetFeatures:
    """The features every crash-test dataset is recorded with."""
    return DatasetFeatures(FPS, CAMERAS, JOINTS, 'crash_test_arm', VIDEO)


def recorder_config() -> RecorderConfig:
    """The matching recorder configuration."""
    return RecorderConfig(fps=FPS, cameras=CAMERAS, joint_names=JOINTS,
                          sync=SyncConfig(frozen_repeats=0), video=VIDEO)


def colour(seq: int, camera: int) -> np.ndarray:
    """The solid colour of frame `seq` of camera number `camera` (neighbours far apart)."""
    return np.array([(37 * seq + 90 * camera) % 200 + 28, (53 * seq) % 200 + 28,
                     (71 * seq + 40 * camera) % 200 + 28], dtype=np.uint8)


def state(seq: int) -> list[float]:
    """The joint positions when frame `seq` was captured."""
    k = seq % 1000
    return [0.01 * k, -0.5 + 0.002 * k, 1.0 - 0.001 * k]


def record_episode(recorder: Recorder, writer: LeRobotWriter, periods: int,
                   clock: list[float], task: str | None = None) -> tuple[int, int]:
    """Record `periods` camera periods and commit the episode; returns (index, rows)."""
    # started between the last period's ticks and the next frames
    index = recorder.start(task or TASKS[periods % 2], {'worker': os.getpid()},
                           clock[0] + 0.08)
    for _ in range(periods):
        clock[0] += 1.0 / FPS
        t = clock[0]
        seq = int(round(t * FPS))
        for c, camera in enumerate(CAMERAS):
            image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
            image[:] = colour(seq, c)
            recorder.on_frame(camera.name, t, image, 'rgb8', seq=seq)
        recorder.on_joint_state(t, JOINTS, state(seq))
        recorder.on_command_sent(t, JOINTS, state(seq))
        recorder.tick(t + 0.01)
        recorder.tick(t + 0.06)  # ticks run at twice the row rate
    data = recorder.stop()
    if data.length == 0:
        raise RuntimeError(f'episode {index}: no rows ({data.marks})')
    writer.commit(data)
    return index, data.length


def lerobot_view(root: Path) -> dict[str, int]:
    """Assert what LeRobot's loader relies on; returns what it would see beyond info.json.

    From the lerobot sources (v0.4.4 `datasets/utils.py`, `datasets/lerobot_dataset.py`;
    v0.6.1 `datasets/io_utils.py`, `dataset_reader.py`, `dataset_metadata.py`, read via
    docs/lerobot_v3_format.md): it reads meta/info.json; concatenates every
    data/*/*.parquet in sorted path order, cast to the declared features (an undeclared or
    missing column fails), and takes len() from info.json total_frames, row i being global
    index i; it concatenates every meta/episodes/*/*.parquet in sorted order and looks an
    episode's metadata up by position; `_check_cached_episodes_sufficient` wants every
    episode 0..total_episodes-1 in the data and every one of their mp4s (found through
    info.json video_path and the episode's chunk/file indices) on disk; task i is row i of
    tasks.parquet. Nothing in the dataset may be a link or lead outside it.

    Returns: {'episodes', 'frames'} (info.json) and {'extra_rows', 'extra_episodes'}: rows
    and episode-metadata rows of files beyond the committed ones (a commit in progress; they
    sort after every committed row, so indices below total_frames are unaffected).
    """
    assert not [p for p in root.rglob('*') if p.is_symlink()], 'links inside the dataset'
    info = json.loads((root / 'meta' / 'info.json').read_text())
    total, frames = int(info['total_episodes']), int(info['total_frames'])
    columns = {k for k, v in info['features'].items() if v['dtype'] != 'video'}
    data = [pq.read_table(f) for f in sorted((root / 'data').glob('*/*.parquet'))]
    for table in data:
        assert set(table.column_names) == columns, (set(table.column_names) ^ columns)
    index = np.concatenate([t.column('index').to_numpy() for t in data]) if data else \
        np.zeros(0, np.int64)
    episode = np.concatenate([t.column('episode_index').to_numpy() for t in data]) if data \
        else np.zeros(0, np.int64)
    np.testing.assert_array_equal(index[:frames], np.arange(frames))
    assert set(range(total)) <= set(episode[:frames].tolist())
    assert (episode[:frames] < total).all()
    files = sorted((root / 'meta' / 'episodes').glob('*/*.parquet'))
    tables = [pq.read_table(f) for f in files]
    if tables:  # datasets concatenates them: one schema
        assert all(t.schema.equals(tables[0].schema) for t in tables), 'episodes schemas differ'
    rows: list[dict[str, Any]] = pa.concat_tables(tables).to_pylist() if tables else []
    for number in range(total):
        row = rows[number]
        assert row['episode_index'] == number
        start, end = row['dataset_from_index'], row['dataset_to_index']
        assert (episode[start:end] == number).all() and end - start == row['length']
        for key, feature in info['features'].items():
            if feature['dtype'] == 'video':
                video = root / info['video_path'].format(
                    video_key=key, chunk_index=row[f'videos/{key}/chunk_index'],
                    file_index=row[f'videos/{key}/file_index'])
                assert video.is_file(), video
    tasks = pq.read_table(root / 'meta' / 'tasks.parquet') if total else None
    assert tasks is None or tasks.num_rows >= info['total_tasks']
    if total:
        json.loads((root / 'meta' / 'stats.json').read_text())
    return {'episodes': total, 'frames': frames, 'extra_rows': len(index) - frames,
            'extra_episodes': len(rows) - total}


def say(line: str) -> None:
    """One line to the parent, flushed at once (it may be killed right after)."""
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def _pause_in_commit(dataset: Path, where: str, after_commits: list[int]) -> None:
    """Make the next commit after the first one stop forever at `where`."""
    real_replace = os.replace
    targets = {'video': 'videos', 'data': 'data', 'episodes': 'meta/episodes',
               'tasks': 'meta/tasks.parquet', 'stats': 'meta/stats.json',
               'info': 'meta/info.json'}
    root = dataset.resolve()

    def pause() -> None:
        say(f'PAUSED {after_commits[0]}')
        time.sleep(3600)

    def replace(src: object, dst: object, *args: object, **kwargs: object) -> None:
        target = Path(str(dst)).resolve()
        relative = target.relative_to(root).as_posix() if root in target.parents else ''
        armed = after_commits[0] >= 1
        if armed and where == 'staged':
            pause()  # the first rename of the commit: nothing published yet
        real_replace(src, dst, *args, **kwargs)  # type: ignore[arg-type]
        if armed and where != 'staged' and relative.startswith(targets[where]):
            pause()

    os.replace = replace  # type: ignore[assignment]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('dataset', type=Path)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--episodes', type=int, default=1_000_000)
    parser.add_argument('--pause-at', choices=PAUSE_POINTS)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    commits = [0]
    if args.pause_at:
        _pause_in_commit(args.dataset, args.pause_at, commits)
    writer = LeRobotWriter(args.dataset, features())
    recorder = Recorder(recorder_config(), writer.begin)
    # Every run gets its own time range (seconds since the epoch, like ROS stamps).
    clock = [1_700_000_000.0 + 1000.0 * args.seed]
    say(f'READY {writer.episodes}')
    for _ in range(args.episodes):
        task = NEW_TASK if args.pause_at and commits[0] == 1 else None
        index, length = record_episode(recorder, writer, int(rng.integers(3, 16)), clock, task)
        commits[0] += 1
        say(f'COMMITTED {index} {length}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
