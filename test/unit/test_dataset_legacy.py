"""Datasets in the old snapshot-link layout: still read, converted when recorded into.

The old layout (commit cc944bc and before): the dataset path is a relative link
`NAME -> .NAME.store/v00000K`, the snapshot holds the LeRobot tree with every episode's
metadata in one meta/episodes/chunk-000/file-000.parquet and no `quality.flags` column.
`legacy_dataset` builds exactly that from a dataset recorded now (the old writer no longer
exists), with one episode whose actions are NaN, as the old recorder kept them.

What a user with such a dataset checks: it reads as it is (and the dataset check names the
NaN episode); opening it for recording converts it in place, says so in a log line, keeps
every episode (videos byte for byte), flags the NaN rows, leaves no hidden store behind unless
another link still uses it, and appends; a conversion killed half-way is finished or redone;
a link copied without its store is refused naming what is missing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import recording_worker as worker

from visuomotor.recording import legacy
from visuomotor.recording.check import check_dataset
from visuomotor.recording.episode import NO_ACTION
from visuomotor.recording.errors import DatasetError
from visuomotor.recording.lerobot_v3 import FLAGS, LeRobotWriter
from visuomotor.recording.reader import DatasetReader
from visuomotor.recording.recorder import Recorder

LENGTHS = (5, 6, 4)
NAN_EPISODE = 1


def legacy_dataset(folder: Path, name: str = 'dataset') -> Path:
    """A dataset in the old snapshot-link layout (see the module docstring)."""
    recorded = folder / 'recorded'
    writer = LeRobotWriter(recorded, worker.features())
    recorder = Recorder(worker.recorder_config(), writer.begin)
    clock = [1_700_000_000.0]
    for periods in LENGTHS:
        worker.record_episode(recorder, writer, periods, clock)
    store = folder / f'.{name}.store'
    snapshot = store / 'v000003'
    shutil.move(str(recorded), str(snapshot))
    info = json.loads((snapshot / 'meta' / 'info.json').read_text())
    del info['features'][FLAGS]
    (snapshot / 'meta' / 'info.json').write_text(json.dumps(info, indent=2) + '\n')
    for file in sorted(snapshot.glob('data/*/*.parquet')):
        table = pq.read_table(file).drop_columns([FLAGS])
        if file.name == f'file-{NAN_EPISODE:03d}.parquet':  # the old recorder's garbage
            nan = pa.array(np.full(table.num_rows * 3, np.nan, np.float32))
            table = table.set_column(table.schema.get_field_index('action'), 'action',
                                     pa.FixedSizeListArray.from_arrays(nan, 3))
        pq.write_table(table, file)
    files = sorted(snapshot.glob('meta/episodes/*/*.parquet'))
    rows = pa.concat_tables([pq.read_table(f) for f in files])
    rows = rows.set_column(rows.schema.get_field_index('meta/episodes/file_index'),
                           'meta/episodes/file_index', pa.array([0] * rows.num_rows))
    for file in files:
        file.unlink()
    pq.write_table(rows, snapshot / 'meta' / 'episodes' / 'chunk-000' / 'file-000.parquet')
    os.symlink(f'.{name}.store/v000003', folder / name)
    return folder / name


def test_an_old_dataset_reads_as_it_is(tmp_path: Path) -> None:
    path = legacy_dataset(tmp_path)
    reader = DatasetReader(path)
    assert len(reader) == len(LENGTHS)
    assert [reader.episode(i).length for i in range(3)] == list(LENGTHS)
    assert FLAGS not in reader.episode(0).columns
    assert (reader.episode(0).flags == 0).all()
    report = check_dataset(path, decode=False)
    assert not report.ok
    failures = [f for e in report.episodes for f in e.failures]
    assert f'episode {NAN_EPISODE} rows 0-{LENGTHS[NAN_EPISODE] - 1}: action has NaN in ' \
        'j0..2' in failures


def test_recording_into_an_old_dataset_converts_it_and_says_so(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = legacy_dataset(tmp_path)
    snapshot = path.resolve()
    videos = {p.relative_to(snapshot).as_posix(): p.read_bytes()
              for p in snapshot.glob('videos/*/*/*.mp4')}
    old = DatasetReader(path)
    old_episodes = [old.episode(i) for i in range(len(old))]
    with caplog.at_level(logging.WARNING):
        writer = LeRobotWriter(path, worker.features())
    assert writer.converted is not None
    assert 'converted from the old snapshot-link layout' in writer.converted
    assert f'({LENGTHS[NAN_EPISODE]} rows without a finite action flagged)' in writer.converted
    assert writer.converted in caplog.text
    assert path.is_dir() and not path.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['dataset']  # no store, no leftovers
    assert {p.relative_to(path).as_posix(): p.read_bytes()
            for p in path.glob('videos/*/*/*.mp4')} == videos
    reader = DatasetReader(path)
    for index, before in enumerate(old_episodes):
        episode = reader.episode(index)
        for name, values in before.columns.items():
            np.testing.assert_array_equal(episode.columns[name], values)
        expected = NO_ACTION if index == NAN_EPISODE else 0
        assert (episode.flags == expected).all()
    view = worker.lerobot_view(path)
    assert (view['episodes'], view['extra_rows'], view['extra_episodes']) == (3, 0, 0)
    recorder = Recorder(worker.recorder_config(), writer.begin)
    assert worker.record_episode(recorder, writer, 4, [1_800_000_000.0]) == (3, 4)
    assert len(DatasetReader(path)) == 4
    assert worker.lerobot_view(path)['episodes'] == 4  # converted and new metadata: one schema
    assert LeRobotWriter(path, worker.features()).converted is None  # once


def test_a_store_another_link_uses_is_kept(tmp_path: Path) -> None:
    path = legacy_dataset(tmp_path)
    copy = tmp_path / 'copy'
    subprocess.run(['cp', '-a', str(path), str(copy)], check=True)  # the old link: it points
    # into the same store
    assert copy.is_symlink() and copy.resolve() == path.resolve()
    writer = LeRobotWriter(copy, worker.features())
    assert writer.converted is not None and 'kept' in writer.converted
    assert copy.is_dir() and not copy.is_symlink()
    assert len(DatasetReader(path)) == len(DatasetReader(copy)) == 3  # both still read
    converted = LeRobotWriter(path, worker.features()).converted
    assert converted is not None and 'removed the old store .dataset.store' in converted
    assert sorted(p.name for p in tmp_path.iterdir()) == ['copy', 'dataset']
    assert len(DatasetReader(copy)) == 3  # hard links: the copy kept its files


def test_an_interrupted_conversion_is_redone_or_finished(tmp_path: Path) -> None:
    path = legacy_dataset(tmp_path)
    # killed while building: the old link is intact, the partial build is redone
    (tmp_path / '.dataset.converting' / 'data').mkdir(parents=True)
    assert len(DatasetReader(path)) == 3
    writer = LeRobotWriter(path, worker.features())
    assert writer.converted is not None and path.is_dir()
    assert not (tmp_path / '.dataset.converting').exists()
    assert len(DatasetReader(path)) == 3
    # killed between removing the link and renaming the build (file systems without an
    # atomic exchange): the next open for recording moves the build into place
    build = tmp_path / '.dataset.converting'
    path.rename(build)
    with pytest.raises(DatasetError, match='interrupted conversion left'):
        DatasetReader(path)
    message = legacy.finish_interrupted(path)
    assert message is not None and 'finished an interrupted conversion' in message
    assert len(DatasetReader(path)) == 3


def test_a_link_copied_without_its_store_is_refused_by_name(tmp_path: Path) -> None:
    path = legacy_dataset(tmp_path / 'home')
    elsewhere = tmp_path / 'backup'
    elsewhere.mkdir()
    os.symlink(os.readlink(path), elsewhere / 'dataset')  # what `cp -r dataset backup/` made
    with pytest.raises(DatasetError, match=r'\.dataset\.store/v000003, which does not exist'):
        DatasetReader(elsewhere / 'dataset')
    with pytest.raises(DatasetError, match='copy the dataset again with the store'):
        LeRobotWriter(elsewhere / 'dataset', worker.features())
