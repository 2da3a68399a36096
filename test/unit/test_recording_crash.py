"""kill -9 while recording: the dataset is always the last committed state, loadable as is.

A worker process (recording_worker.py) records short episodes continuously through the whole
pipeline and prints `COMMITTED <index> <length>` after each commit returns. It is killed with
SIGKILL at random moments, each trial reopening the dataset the previous kill left behind.
After every kill, without any repair, the dataset path resolves to a complete snapshot that
DatasetReader opens; it holds every printed episode (plus at most the one whose commit
returned but was not printed yet) with the printed length, and every video decodes to exactly
one frame per row with the right content. A targeted kill inside a commit (just before the
atomic rename, or while the new snapshot is half built) leaves the previous state intact. A
new writer then removes the leftovers and appends.
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
from visuomotor.recording.snapshots import SnapshotStore

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
    assert dataset.is_symlink(), 'the dataset path must be the snapshot link'
    root = dataset.resolve()
    assert root.is_dir() and root.parent.name == f'.{dataset.name}.store'
    reader = DatasetReader(dataset)
    count = len(reader)
    assert count == reader.info['total_episodes']
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


def store_entries(dataset: Path) -> set[str]:
    return {p.name for p in SnapshotStore(dataset).store.iterdir()}


def reopen_and_append(dataset: Path, count: int) -> list[str]:
    """A new writer removes every leftover and appends one more episode; returns what it
    removed."""
    writer = LeRobotWriter(dataset, worker.features())
    current = dataset.resolve().name
    assert store_entries(dataset) == {'staging', current}
    assert list(writer.store.staging.iterdir()) == []
    assert writer.episodes == count
    recorder = Recorder(worker.recorder_config(), writer.begin)
    index, length = worker.record_episode(recorder, writer, 6, [1_800_000_000.0])
    assert (index, length) == (count, 6)
    assert check_dataset(dataset, {index: length}, decode_from=count) == count + 1
    entries = store_entries(dataset)
    assert entries == {'staging', dataset.resolve().name}, entries  # no tmp, link, old snapshot
    assert not [p for p in writer.store.staging.rglob('*') if not p.is_dir()]
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
        if not dataset.is_symlink():  # killed before the first commit ever
            assert not known
            continue
        before = count
        count = check_dataset(dataset, known, decode_from=before)
        # every printed commit is there, and at most the one not printed yet
        assert len(known) <= count <= len(known) + 1, (trial, len(known), count)
        if count == len(known) + 1:
            known[count - 1] = DatasetReader(dataset).episode_rows[count - 1]['length']
    assert count >= TRIALS  # the kills did land while recording
    assert check_dataset(dataset, known) == count
    reopen_and_append(dataset, count)


@pytest.mark.parametrize('where', ['build', 'swap', 'swapped'])
def test_kill_inside_a_commit(tmp_path: Path, where: str) -> None:
    """Killed in episode 3's commit: before the rename the dataset is the state after
    episode 2, untouched; after it, episode 3 is in (its COMMITTED line never printed)."""
    dataset = tmp_path / 'dataset'
    first = Worker(dataset, 1, tmp_path / 'first.log', '--episodes', '2')
    first.finish()
    assert first.process.returncode == 0
    known = first.committed()
    assert sorted(known) == [0, 1]
    snapshot = dataset.resolve()
    version = int(snapshot.name[1:])
    files = {p.relative_to(snapshot): p.read_bytes() for p in snapshot.rglob('*')
             if p.is_file()}

    run = Worker(dataset, 2, tmp_path / 'paused.log', '--pause-at', where)
    run.wait_for('PAUSED')  # episode 2 committed, now inside episode 3's commit
    store = SnapshotStore(dataset).store
    building = store / f'v{version + 2:06d}'
    assert building.is_dir()  # the next snapshot is built beside the current one
    assert (building / 'data' / 'chunk-000' / 'file-003.parquet').is_file()
    assert (building / 'meta' / 'info.json').is_file() == (where != 'build')
    assert (store / f'.link-{version + 2:06d}').is_symlink() == (where == 'swap')
    previous = store / f'v{version + 1:06d}'
    assert previous.is_dir()  # episode 2's snapshot: removed only after the swap returned
    run.kill()
    known.update(run.committed())
    assert sorted(known) == [0, 1, 2]

    # readable as is, without any repair
    swapped = where == 'swapped'
    count = check_dataset(dataset, known)
    assert count == (4 if swapped else 3)
    current = dataset.resolve()
    assert current == (building if swapped else previous)
    for relative, data in files.items():  # episodes 0 and 1 are byte for byte what they were
        if not relative.as_posix().startswith('meta/'):
            assert (current / relative).read_bytes() == data, relative
    removed = reopen_and_append(dataset, count)  # leftovers removed, next version appended
    stale = previous if swapped else building
    assert any(r.startswith(f'{stale.name} ') for r in removed), removed
    assert (f'.link-{version + 2:06d}' in removed) == (where == 'swap')
    if not swapped:  # episode 3's files, never published
        assert any(r.startswith('staging/episode_000003 ') for r in removed), removed
    assert dataset.resolve().name == f'v{version + (3 if swapped else 2):06d}'
