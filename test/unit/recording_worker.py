"""Subprocess entry point of test_recording_crash.py: records episodes until it is killed.

    python recording_worker.py DATASET --seed N [--episodes M] [--pause-at WHERE]

Every episode goes through the whole pipeline (Recorder -> encoders -> LeRobotWriter ->
SnapshotStore) with synthetic frames, h264 at 64x48, for a random 3-15 camera periods (ticks
at twice the rate). A frame's content and the joint positions are known from its sequence
number, which every row stores (`timing.seq.<camera>`). After each commit returns, the
worker prints `COMMITTED <index> <rows>` and flushes, so the parent knows what must be in
the dataset when it kills the worker with SIGKILL.

`--pause-at` makes a commit stop forever at a chosen point so the parent can kill it there:
`build` just after the first new file was moved into the half-built snapshot, `swap` just
before the new snapshot link is renamed over the dataset path (the commit point), `swapped`
just after that rename (before the previous snapshot is removed and before the commit
returns, so the episode is in the dataset but `COMMITTED` is never printed). The pause
happens in the commit of the second episode of this run (the first one is committed
normally, so there is a previous state to keep); the worker prints `PAUSED <commits>`
first.

The module is also imported by the tests (features, colours, recording one episode).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

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
                   clock: list[float]) -> tuple[int, int]:
    """Record `periods` camera periods and commit the episode; returns (index, rows)."""
    # started between the last period's ticks and the next frames
    index = recorder.start(TASKS[periods % 2], {'worker': os.getpid()}, clock[0] + 0.08)
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


def say(line: str) -> None:
    """One line to the parent, flushed at once (it may be killed right after)."""
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def _pause_in_commit(dataset: Path, where: str, after_commits: list[int]) -> None:
    """Make the next commit after the first one stop forever at `where`."""
    real_replace = os.replace
    store = dataset.parent / f'.{dataset.name}.store'

    def replace(src: object, dst: object, *args: object, **kwargs: object) -> None:
        target = Path(str(dst))
        armed = after_commits[0] >= 1
        if armed and where == 'swap' and target == dataset:
            say(f'PAUSED {after_commits[0]}')
            time.sleep(3600)
        real_replace(src, dst, *args, **kwargs)  # type: ignore[arg-type]
        built = where == 'build' and target.parent != store and store in target.parents
        if armed and (built or (where == 'swapped' and target == dataset)):
            say(f'PAUSED {after_commits[0]}')
            time.sleep(3600)

    os.replace = replace  # type: ignore[assignment]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument('dataset', type=Path)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--episodes', type=int, default=1_000_000)
    parser.add_argument('--pause-at', choices=('build', 'swap', 'swapped'))
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
        index, length = record_episode(recorder, writer, int(rng.integers(3, 16)), clock)
        commits[0] += 1
        say(f'COMMITTED {index} {length}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
