"""Datasets survive ordinary file tools: cp -r, cp -a, cp -al, rsync -a and tar.

What a user backing up or duplicating a dataset checks: the copy is complete (every file,
byte for byte, no link and nothing pointing outside it), our reader and LeRobot's loader
(`lerobot_view`) load it, recording into the copy appends to the copy only and leaves the
original byte for byte as it was (files, inodes and modification times, no new file), and
recording into the original leaves a hard-linked copy (`cp -al`) as it was. A copy taken while
an episode is being recorded holds the committed episodes; the first recording into it removes
the half-recorded episode it copied.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import recording_worker as worker

from visuomotor.recording.lerobot_v3 import LeRobotWriter
from visuomotor.recording.reader import DatasetReader
from visuomotor.recording.recorder import Recorder

LENGTHS = (5, 7)


def record(path: Path, periods: tuple[int, ...], start_s: float) -> LeRobotWriter:
    """Open (or create) a dataset and record one episode per entry of `periods`."""
    writer = LeRobotWriter(path, worker.features())
    recorder = Recorder(worker.recorder_config(), writer.begin)
    clock = [start_s]
    for count in periods:
        worker.record_episode(recorder, writer, count, clock)
    return writer


def state_of(path: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under `path`: (contents, inode, mtime_ns)."""
    out = {}
    for file in sorted(path.rglob('*')):
        if file.is_file() or file.is_symlink():
            stat = file.lstat()
            out[file.relative_to(path).as_posix()] = (file.read_bytes(), stat.st_ino,
                                                      stat.st_mtime_ns)
    return out


def contents(path: Path) -> dict[str, bytes]:
    return {k: v[0] for k, v in state_of(path).items()}


def copy_with(tool: str, source: Path, target: Path) -> Path:
    """Copy a dataset folder with a command-line tool, as a user would; returns the copy."""
    if tool == 'tar':
        archive = target.parent / 'dataset.tar'
        subprocess.run(['tar', '-C', str(source.parent), '-cf', str(archive), source.name],
                       check=True)
        unpacked = target.parent / 'unpacked'
        unpacked.mkdir()
        subprocess.run(['tar', '-C', str(unpacked), '-xf', str(archive)], check=True)
        (unpacked / source.name).rename(target)
        return target
    if tool == 'cp -r into a folder':  # `cp -r ds backup/`: the copy is backup/ds
        backup = target.parent / 'backup'
        backup.mkdir()
        subprocess.run(['cp', '-r', str(source), f'{backup}/'], check=True)
        return backup / source.name
    commands = {'cp -r': ['cp', '-r', str(source), str(target)],
                'cp -a': ['cp', '-a', str(source), str(target)],
                'cp -al': ['cp', '-al', str(source), str(target)],
                'rsync -a': ['rsync', '-a', f'{source}/', f'{target}/']}
    subprocess.run(commands[tool], check=True)
    return target


def assert_same_episodes(copy: Path, original: Path) -> None:
    theirs, ours = DatasetReader(original), DatasetReader(copy)
    assert len(ours) == len(theirs) and ours.tasks == theirs.tasks
    for index in range(len(theirs)):
        a, b = theirs.episode(index), ours.episode(index)
        assert a.columns.keys() == b.columns.keys()
        for name in a.columns:
            np.testing.assert_array_equal(a.columns[name], b.columns[name])
        for camera in theirs.cameras:
            np.testing.assert_array_equal(np.stack(a.frames(camera)),
                                          np.stack(b.frames(camera)))


@pytest.fixture(scope='module')
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp('original') / 'dataset'
    record(path, LENGTHS, 1_700_000_000.0)
    return path


TOOLS = ['cp -r', 'cp -r into a folder', 'cp -a', 'cp -al',
         pytest.param('rsync -a', marks=pytest.mark.skipif(
             shutil.which('rsync') is None, reason='rsync is not installed')),
         'tar']


@pytest.mark.parametrize('tool', TOOLS)
def test_a_copy_is_complete_and_recording_into_it_leaves_the_original_alone(
        original: Path, tmp_path: Path, tool: str) -> None:
    before = state_of(original)
    copy = copy_with(tool, original, tmp_path / 'copy')
    assert contents(copy) == contents(original)  # complete, byte for byte
    assert worker.lerobot_view(copy) == worker.lerobot_view(original)  # no link inside
    assert_same_episodes(copy, original)

    writer = record(copy, (6,), 1_800_000_000.0)
    assert writer.recovered == []
    reader = DatasetReader(copy)
    assert len(reader) == 3 and reader.episode(2).length == 6
    view = worker.lerobot_view(copy)
    assert (view['episodes'], view['extra_rows'], view['extra_episodes']) == (3, 0, 0)
    assert state_of(original) == before  # not a byte, inode or mtime changed; no new file
    assert len(DatasetReader(original)) == len(LENGTHS)


def test_recording_into_the_original_leaves_a_hard_linked_copy_alone(tmp_path: Path) -> None:
    original = tmp_path / 'dataset'
    record(original, LENGTHS, 1_700_000_000.0)
    copy = copy_with('cp -al', original, tmp_path / 'copy')
    before = state_of(copy)
    assert all(before[k][1] == v[1] for k, v in state_of(original).items())  # shared inodes
    record(original, (4, 3), 1_800_000_000.0)  # replaces info.json, stats.json, tasks
    assert len(DatasetReader(original)) == 4
    assert state_of(copy) == before
    assert_same_episodes(copy, copy)  # and it still loads
    assert len(DatasetReader(copy)) == len(LENGTHS)


def test_a_copy_taken_while_recording_holds_the_committed_episodes(tmp_path: Path) -> None:
    original = tmp_path / 'dataset'
    writer = record(original, LENGTHS, 1_700_000_000.0)
    recorder = Recorder(worker.recorder_config(), writer.begin)
    recorder.start('pick the cube', {}, 1_800_000_000.0)  # its encoders are writing
    for k in range(4):
        t = 1_800_000_000.1 + 0.1 * k
        seq = int(round(t * worker.FPS))
        for c, camera in enumerate(worker.CAMERAS):
            image = np.empty((worker.HEIGHT, worker.WIDTH, 3), np.uint8)
            image[:] = worker.colour(seq, c)
            recorder.on_frame(camera.name, t, image, 'rgb8', seq=seq)
        recorder.on_joint_state(t, worker.JOINTS, worker.state(seq))
        recorder.on_command_sent(t, worker.JOINTS, worker.state(seq))
        recorder.tick(t + 0.01)
    copy = copy_with('cp -r', original, tmp_path / 'copy')
    assert (copy / '.staging' / 'episode_000002').is_dir()  # the episode being recorded
    assert len(DatasetReader(copy)) == len(LENGTHS)
    assert worker.lerobot_view(copy)['extra_rows'] == 0
    reopened = record(copy, (3,), 1_900_000_000.0)
    assert any(r.startswith('.staging/episode_000002') for r in reopened.recovered)
    assert len(DatasetReader(copy)) == 3 and not (copy / '.staging').exists()
    recorder.discard()
