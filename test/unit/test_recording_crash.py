"""kill -9 while recording: the dataset is always the last committed state, loadable as is.

A worker process (recording_worker.py) records short episodes continuously through the whole
pipeline and prints `COMMITTED <index> <length>` after each commit returns. It is killed with
SIGKILL at random moments, each trial reopening the dataset the previous kill left behind.
After every kill, without any repair, the dataset path is a plain directory that
DatasetReader opens and that satisfies what LeRobot's loader relies on (`lerobot_view`); it
holds every printed episode (plus at most the one whose commit returned but was not printed
yet) with the printed length, and every video decodes to exactly one frame per row with the
right content. A targeted kill at every point of a commit (before its first rename, after
each rename: mp4s, data, tasks, stats, episodes metadata, info.json) leaves the previous state
intact, its files byte for byte, until info.json is replaced, and the new state after. A new
writer then removes the leftovers and appends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import recording_worker as worker

from visuomotor.recording.lerobot_v3 import LeRobotWriter
from visuomotor.recording.reader import DatasetReader
from visuomotor.recording.recorder import Recorder

WORKER = Path(worker.__file__).resolve()
TRIALS = 10
SEED = 20260117


class Worker:
    """A recording worker process and what it printed."""

    def __init__(self, dataset: Path, seed: int, log: Path, *extra: str) -> None:
        self.log = open(log, 'w')  # noqa: SIM115 - closed in finish()
        self.process = subprocess.Popen(
            [sys.executable, str(WORKER), str(dataset), '--seed', str(seed), *extra],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=dict(os.environ))
        assert self.process.stdout is not None
        self.stdout = self.process.stdout
        # never hang the test run: a worker still alive after 60 s is killed
        self._guard = threading.Timer(60.0, self.process.kill)
        self._guard.start()
        self.lines: list[str] = []

    def wait_for(self, prefix: str) -> str:
        """Read lines until one starts with `prefix` (fails if the worker exits first)."""
        while True:
            line = self.stdout.readline()
            assert line, f'worker exited before {prefix!r}: {self.lines}, ' \
                f'{self.log.name}: {Path(self.log.name).read_text()[-2000:]}'
            self.lines.append(line.strip())
            if line.startswith(prefix):
                return line.strip()

    def kill(self) -> None:
        """SIGKILL, then collect everything it printed."""
        self.process.send_signal(signal.SIGKILL)
        self.finish()
        assert self.process.returncode == -signal.SIGKILL

    def finish(self) -> None:
        rest = self.stdout.read()
        self.lines += [line.strip() for line in rest.splitlines()]
        self.process.wait()
        self._guard.cancel()
        self.stdout.close()
        self.log.close()

    def committed(self) -> dict[int, int]:
        out = {}
        for line in self.lines:
            if line.startswith('COMMITTED '):
                _, index, length = line.split()
                out[int(index)] = int(length)
        return out


def check_dataset(dataset: Path, known: dict[int, int], *, decode_from: int = 0) -> int:
    """The state a kill left: every known episode intact; returns the episode count."""
    assert dataset.is_dir() and not dataset.is_symlink(), 'the dataset is a plain directory'
    view = worker.lerobot_view(dataset)
    assert view['extra_episodes'] <= 1  # at most the one whose commit was interrupted
    reader = DatasetReader(dataset)
    count = len(reader)
    assert count == reader.info['total_episodes'] == view['episodes']
    rows = reader.episode_rows
    assert [r['episode_index'] for r in rows] == list(range(count))
    lengths = [r['length'] for r in rows]
    assert sum(lengths) == reader.info['total_frames']
    for index, length in known.items():
        assert index < count and lengths[index] == length, (index, length, lengths)
    start = 0
    for index in range(count):
        assert rows[index]['dataset_from_index'] == start
        start += lengths[index]
        if index < decode_from:
            continue
        episode = reader.episode(index)
        length = lengths[index]
        assert episode.length == length
        np.testing.assert_array_equal(episode.columns['frame_index'], np.arange(length))
        seqs = episode.columns['timing.seq.scene']
        np.testing.assert_array_equal(episode.columns['timing.seq.wrist'], seqs)
        assert (np.diff(seqs) == 1).all()  # one row per frame, in order
        for k in (0, length - 1):  # the row's joint values are those of its frame
            np.testing.assert_allclose(episode.columns['observation.state'][k],
                                       worker.state(int(seqs[k])), atol=1e-6)
        for c, name in enumerate(reader.cameras):
            frames = episode.frames(name)
            assert len(frames) == length, (index, name, len(frames), length)
            for k in (0, length - 1):  # first and last frame: the row's content
                expected = worker.colour(int(seqs[k]), c).astype(int)
                error = np.abs(frames[k].astype(int) - expected)
                assert error.mean() < 4.0 and error.max() <= 12, (index, name, k)
    return count


def entries(dataset: Path) -> set[str]:
    return {p.name for p in dataset.iterdir()}


def reopen_and_append(dataset: Path, count: int) -> list[str]:
    """A new writer removes every leftover and appends one more episode; returns what it
    removed."""
    writer = LeRobotWriter(dataset, worker.features())
    assert entries(dataset) <= {'meta', 'data', 'videos'}  # no staging left
    view = worker.lerobot_view(dataset)
    assert (view['extra_rows'], view['extra_episodes']) == (0, 0)
    assert writer.episodes == count
    recorder = Recorder(worker.recorder_config(), writer.begin)
    index, length = worker.record_episode(recorder, writer, 6, [1_800_000_000.0])
    assert (index, length) == (count, 6)
    assert check_dataset(dataset, {index: length}, decode_from=count) == count + 1
    assert entries(dataset) == {'meta', 'data', 'videos'}  # nothing of the commit left over
    view = worker.lerobot_view(dataset)
    assert (view['extra_rows'], view['extra_episodes']) == (0, 0)
    return writer.recovered


@pytest.mark.slow
def test_kill_9_at_random_moments_leaves_a_loadable_dataset(tmp_path: Path) -> None:
    dataset = tmp_path / 'dataset'
    rng = np.random.default_rng(SEED)
    delays = rng.uniform(0.2, 2.2, TRIALS)
    known: dict[int, int] = {}
    count = 0
    for trial, delay in enumerate(delays):
        run = Worker(dataset, trial, tmp_path / f'worker-{trial}.log')
        ready = run.wait_for('READY')
        assert ready == f'READY {count}'  # the worker's writer reopened the last state
        time.sleep(float(delay))
        run.kill()
        printed = run.committed()
        assert sorted(printed) == list(range(count, count + len(printed)))
        known.update(printed)
        before = count
        count = check_dataset(dataset, known, decode_from=before)
        # every printed commit is there, and at most the one not printed yet
        assert len(known) <= count <= len(known) + 1, (trial, len(known), count)
        if count == len(known) + 1:
            known[count - 1] = DatasetReader(dataset).episode_rows[count - 1]['length']
    assert count >= TRIALS  # the kills did land while recording
    assert check_dataset(dataset, known) == count
    reopen_and_append(dataset, count)


def published_files(dataset: Path) -> dict[str, bytes]:
    """Every file LeRobot reads, by relative path."""
    return {p.relative_to(dataset).as_posix(): p.read_bytes() for p in dataset.rglob('*')
            if p.is_file() and not p.relative_to(dataset).as_posix().startswith('.')}


@pytest.mark.parametrize('where', worker.PAUSE_POINTS)
def test_kill_inside_a_commit(tmp_path: Path, where: str) -> None:
    """Killed in episode 3's commit: until info.json is replaced the dataset is the state
    after episode 2, untouched; after it, episode 3 is in (its COMMITTED line never
    printed)."""
    dataset = tmp_path / 'dataset'
    first = Worker(dataset, 1, tmp_path / 'first.log', '--episodes', '2')
    first.finish()
    assert first.process.returncode == 0
    known = first.committed()
    assert sorted(known) == [0, 1]
    before = published_files(dataset)

    run = Worker(dataset, 2, tmp_path / 'paused.log', '--pause-at', where)
    run.wait_for('PAUSED')  # episode 2 committed, now inside episode 3's commit
    after_2 = published_files(dataset)
    run.kill()
    known.update(run.committed())
    assert sorted(known) == [0, 1, 2]

    # readable as is, without any repair
    committed = where == 'info'
    count = check_dataset(dataset, known)
    assert count == (4 if committed else 3)
    view = worker.lerobot_view(dataset)
    published = worker.PAUSE_POINTS.index(where)
    assert view['extra_rows'] > 0 if not committed and published >= 2 else \
        view['extra_rows'] == 0
    assert view['extra_episodes'] == (1 if where == 'episodes' else 0)
    reader = DatasetReader(dataset)
    assert (worker.NEW_TASK in reader.tasks) == committed  # a task row beyond total_tasks
    assert len(reader.tasks) == reader.info['total_tasks']  # is not one
    # files of episodes 0 and 1 are byte for byte what they were, and no file the previous
    # state published changed before the commit point
    now = published_files(dataset)
    for relative, data in before.items():
        if not relative.startswith('meta/') or relative.startswith('meta/episodes/'):
            assert now[relative] == data, relative
    if not committed:
        episode_3 = {r for r in now if r not in after_2}
        assert all(r.endswith('file-003.mp4') or r.endswith('file-003.parquet')
                   for r in episode_3), episode_3
        changed = {r for r in after_2 if now[r] != after_2[r]}
        assert changed <= {'meta/tasks.parquet', 'meta/stats.json'}, changed
    removed = reopen_and_append(dataset, count)  # leftovers removed, the next one appended
    assert any(r.startswith('.staging/episode_000003') for r in removed), removed
    if not committed and published >= 1:
        assert any('episode 3, whose commit was interrupted' in r for r in removed), removed
    if where in ('tasks', 'stats'):
        assert any(r.startswith('meta/tasks.parquet') for r in removed), removed
    if where == 'stats':
        assert any(r.startswith('meta/stats.json') for r in removed), removed
