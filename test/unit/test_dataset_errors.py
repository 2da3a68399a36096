"""Corrupt or missing dataset files get a clear error, never a traceback.

Table-driven: each damage (a truncated data or metadata parquet, a truncated or missing mp4, a
broken, missing or wrongly typed meta/info.json) against each way in (the reader API,
`visuomotor dataset check`, `dataset export-hdf5`, `train`, `explain` for info.json). What a
user checks: exit code 2, the damaged file named, the fix said (restore it from a copy, or
leave the episode out), no Python traceback; the reader raises DatasetError, one of the
project's errors; an export that failed leaves no file behind.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import recording_worker as worker

from visuomotor.cli import main as cli_main
from visuomotor.errors import VisuomotorError
from visuomotor.paths import share_dir
from visuomotor.recording.errors import DatasetError
from visuomotor.recording.lerobot_v3 import LeRobotWriter
from visuomotor.recording.reader import DatasetReader
from visuomotor.recording.recorder import Recorder

SCENE = 'videos/observation.images.scene/chunk-000/file-001.mp4'


def truncate(relative: str) -> Callable[[Path], str]:
    def damage(root: Path) -> str:
        path = root / relative
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
        return relative
    return damage


def delete(relative: str) -> Callable[[Path], str]:
    def damage(root: Path) -> str:
        (root / relative).unlink()
        return relative
    return damage


def rewrite_info(text: str) -> Callable[[Path], str]:
    def damage(root: Path) -> str:
        (root / 'meta' / 'info.json').write_text(text)
        return 'meta/info.json'
    return damage


def wrong_fps(root: Path) -> str:
    info = json.loads((root / 'meta' / 'info.json').read_text())
    info['fps'] = 'ten'
    (root / 'meta' / 'info.json').write_text(json.dumps(info))
    return 'meta/info.json'


DAMAGE = {
    'truncated data parquet': truncate('data/chunk-000/file-001.parquet'),
    'missing data parquet': delete('data/chunk-000/file-001.parquet'),
    'truncated episodes metadata': truncate('meta/episodes/chunk-000/file-001.parquet'),
    'truncated mp4': truncate(SCENE),
    'missing mp4': delete(SCENE),
    'broken info.json': rewrite_info('{"codebase_version": "v3.0", "fps": 10,'),
    'missing info.json': delete('meta/info.json'),
    'info.json fps not a number': wrong_fps,
}
FIXES = ('restore it from a copy', 'restore meta/info.json from a copy',
         'give the path the recorder wrote to')


@pytest.fixture(scope='module')
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp('healthy') / 'dataset'
    writer = LeRobotWriter(path, worker.features())
    recorder = Recorder(worker.recorder_config(), writer.begin)
    clock = [1_700_000_000.0]
    for periods in (4, 5):
        worker.record_episode(recorder, writer, periods, clock)
    return path


def damaged(healthy: Path, tmp_path: Path, case: str) -> tuple[Path, str]:
    path = tmp_path / 'dataset'
    shutil.copytree(healthy, path)
    return path, DAMAGE[case](path)


def read_everything(path: Path) -> None:
    reader = DatasetReader(path)
    for index in range(len(reader)):
        episode = reader.episode(index)
        for camera in reader.cameras:
            episode.frames(camera)


@pytest.mark.parametrize('case', sorted(DAMAGE))
def test_the_reader_names_the_file(healthy: Path, tmp_path: Path, case: str) -> None:
    path, relative = damaged(healthy, tmp_path, case)
    with pytest.raises(DatasetError) as error:
        read_everything(path)
    assert isinstance(error.value, VisuomotorError)
    message = str(error.value)
    assert relative in message or (case == 'missing info.json' and 'no meta/info.json' in
                                   message), message
    assert any(fix in message for fix in FIXES), message


COMMANDS: dict[str, Callable[[Path, Path], list[str]]] = {
    'dataset check': lambda ds, tmp: ['dataset', 'check', str(ds), '--sheet',
                                      str(tmp / 'sheet.png')],
    'dataset export-hdf5': lambda ds, tmp: ['dataset', 'export-hdf5', str(ds),
                                            str(tmp / 'out.hdf5')],
    'train': lambda ds, tmp: ['train', str(ds), str(tmp / 'bundle'), '--steps', '1'],
}


@pytest.mark.parametrize('command', sorted(COMMANDS))
@pytest.mark.parametrize('case', sorted(DAMAGE))
def test_commands_exit_2_naming_the_file(healthy: Path, tmp_path: Path, case: str,
                                         command: str, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    path, relative = damaged(healthy, tmp_path, case)
    code = cli_main(COMMANDS[command](path, tmp_path))
    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert code == 2, text
    assert 'Traceback' not in text
    assert relative in text or (case == 'missing info.json' and 'no meta/info.json' in text)
    assert any(fix in text for fix in FIXES), text
    assert not (tmp_path / 'out.hdf5').exists() and not (tmp_path / 'out.hdf5.partial').exists()


@pytest.mark.parametrize('case', ['broken info.json', 'missing info.json'])
def test_explain_exits_2_naming_the_file(healthy: Path, tmp_path: Path, case: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = damaged(healthy, tmp_path, case)
    bundle = share_dir() / 'models' / 'pick_place_fr3'
    code = cli_main(['explain', str(bundle), str(path), '--out', str(tmp_path / 'out')])
    printed = capsys.readouterr()
    assert code == 2, printed.err
    assert 'info.json' in printed.err and 'Traceback' not in printed.err


def test_the_check_reports_every_unreadable_episode_and_checks_the_others(
        healthy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, relative = damaged(healthy, tmp_path, 'truncated mp4')
    assert cli_main(['dataset', 'check', str(path), '--sheet', str(tmp_path / 's.png')]) == 2
    out = capsys.readouterr().out
    assert 'episode 0 (' in out  # the readable episode is still checked
    assert f'FAIL unreadable: {path / relative}' in out


@pytest.mark.parametrize('target', ['folder', 'missing folder'])
def test_an_export_to_a_folder_or_into_a_missing_folder_is_refused(
        healthy: Path, tmp_path: Path, target: str, capsys: pytest.CaptureFixture[str]
        ) -> None:
    out = tmp_path if target == 'folder' else tmp_path / 'nowhere' / 'out.hdf5'
    assert cli_main(['dataset', 'export-hdf5', str(healthy), str(out)]) == 2
    error = capsys.readouterr().err
    assert ('is a folder; give a file path' if target == 'folder' else
            'does not exist; create it first') in error
