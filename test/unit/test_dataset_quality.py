"""Recording never keeps garbage silently: flagged rows, refused episodes, a failing check, and
training that skips what it must not learn from, and says so.

What a user recording and training checks: rows recorded while the safety bridge is not armed
(disarmed, stopping, fault), before its state arrived, or without a finite command are
flagged in `quality.flags` and counted in the episode's marks; an episode without a usable row
is refused at commit, naming it and why, and the dataset is unchanged; `visuomotor dataset
check` fails on NaN actions naming the episode, the rows and the joints; `visuomotor train`
skips flagged rows and episodes without a usable row, prints how many and why, and trains on
the episodes chosen with --episodes / --exclude-episodes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from visuomotor.cameras.sync import SyncConfig
from visuomotor.cli import main as cli_main
from visuomotor.recording.check import check_dataset, compact_names
from visuomotor.recording.episode import (
    NO_ACTION,
    NO_BRIDGE_STATE,
    NOT_ARMED,
    CameraFormat,
    EpisodeData,
)
from visuomotor.recording.errors import EpisodeRefusedError
from visuomotor.recording.lerobot_v3 import DATA_PATH, FLAGS, DatasetFeatures, LeRobotWriter
from visuomotor.recording.reader import DatasetReader
from visuomotor.recording.recorder import Recorder, RecorderConfig
from visuomotor.recording.video import VideoSettings
from visuomotor.robots.description import load_robot
from visuomotor.training.dataset import (
    TrainingDataError,
    load_demos,
    parse_episodes,
    select_episodes,
)

FPS = 10.0
ROBOT = load_robot('fr3')
JOINTS = tuple(ROBOT.joint_names)
CAMERAS = (CameraFormat('scene', 64, 48), CameraFormat('wrist', 64, 48))
VIDEO = VideoSettings('h264')


def features() -> DatasetFeatures:
    return DatasetFeatures(FPS, CAMERAS, JOINTS, ROBOT.name, VIDEO)


def recorder_config(*, follow_bridge_state: bool = True) -> RecorderConfig:
    return RecorderConfig(FPS, CAMERAS, JOINTS, sync=SyncConfig(frozen_repeats=0), video=VIDEO,
                          follow_bridge_state=follow_bridge_state)


@dataclass
class Session:
    """Synthetic streams into a recorder: frames, joint states, the bridge's commands/state."""

    recorder: Recorder
    seq: int = 0

    def stamp(self) -> float:
        return 1_700_000_000.0 + self.seq / FPS

    def period(self, *, command: bool = True, bridge: str | None = None) -> None:
        """One camera period; `bridge`: the state the bridge reports from now on."""
        t, seq = self.stamp(), self.seq
        if bridge is not None:
            self.recorder.on_bridge_state(t, bridge)
        for c, camera in enumerate(CAMERAS):
            image = np.full((camera.height, camera.width, 3), (40 * seq + 60 * c) % 200 + 20,
                            np.uint8)
            self.recorder.on_frame(camera.name, t, image, 'rgb8', seq=seq)
        q = np.array(ROBOT.home_rad) + 0.01 * seq
        self.recorder.on_joint_state(t, JOINTS, q.tolist())
        if command:
            self.recorder.on_command_sent(t, JOINTS, (q + 0.005).tolist())
        self.recorder.tick(t + 0.01)
        self.recorder.tick(t + 0.06)
        self.seq += 1

    def episode(self, plan: list[tuple[int, bool, str | None]], task: str = 'reach'
                ) -> EpisodeData:
        """Record an episode of (periods, command sent, bridge state) segments."""
        self.recorder.start(task, {}, self.stamp() - 0.02)
        for periods, command, bridge in plan:
            for k in range(periods):
                self.period(command=command, bridge=bridge if k == 0 else None)
        return self.recorder.stop()


def new_dataset(path: Path, *, follow_bridge_state: bool = True
                ) -> tuple[LeRobotWriter, Session]:
    writer = LeRobotWriter(path, features())
    return writer, Session(Recorder(recorder_config(follow_bridge_state=follow_bridge_state),
                                    writer.begin))


def flags(data: EpisodeData) -> list[int]:
    return [int(f) for f in data.columns['flags']]


# -- rows are flagged -----------------------------------------------------------------------

def test_rows_are_flagged_while_the_bridge_is_not_armed_or_sends_nothing(
        tmp_path: Path) -> None:
    _, session = new_dataset(tmp_path / 'ds')
    data = session.episode([(3, True, 'armed'), (2, True, 'holding'), (4, False, 'fault'),
                            (2, True, 'armed')])
    got = flags(data)
    assert len(got) == 11
    assert got[:5] == [0] * 5  # armed, and holding (armed, at the last command)
    assert all(f & NOT_ARMED for f in got[5:9])  # the fault
    assert got[5] == NOT_ARMED  # its last command is still within two periods
    assert got[7:9] == [NOT_ARMED | NO_ACTION] * 2  # nothing sent any more
    assert np.isnan(data.columns['action'][7:9]).all()
    assert got[9:] == [0, 0]
    assert "rows recorded while the safety bridge was 'fault' (x4)" in data.marks
    assert any(m.startswith('rows without a valid action') for m in data.marks)
    assert session.recorder.counters['rows_flagged'] == 4


def test_rows_before_the_bridge_state_arrives_are_flagged(tmp_path: Path) -> None:
    _, session = new_dataset(tmp_path / 'ds')
    data = session.episode([(2, True, None), (3, True, 'armed')])
    assert flags(data) == [NO_BRIDGE_STATE] * 2 + [0] * 3
    assert 'rows recorded before any state from the safety bridge (x2)' in data.marks


def test_without_a_bridge_only_a_missing_action_flags_a_row(tmp_path: Path) -> None:
    _, session = new_dataset(tmp_path / 'ds', follow_bridge_state=False)
    data = session.episode([(2, False, None), (4, True, 'fault')])
    assert flags(data) == [NO_ACTION] * 2 + [0] * 4


# -- an episode without a usable row is refused ---------------------------------------------

def test_an_episode_without_a_usable_row_is_refused_and_the_dataset_unchanged(
        tmp_path: Path) -> None:
    writer, session = new_dataset(tmp_path / 'ds')
    kept = session.episode([(4, True, 'armed')])
    writer.commit(kept)
    before = {p: p.read_bytes() for p in (tmp_path / 'ds').rglob('*') if p.is_file()}
    session.recorder.start('reach', {}, session.stamp() - 0.02)
    for k in range(6):
        session.period(command=False, bridge='fault' if k == 0 else None)
    recording = session.recorder.episode
    assert recording is not None
    why = recording.refusal()
    assert why is not None
    assert why.startswith('episode 1: none of its 6 rows has a valid action (6 rows: the safety '
                          'bridge was not armed; 5 rows: no valid action')
    assert 'Arm the safety bridge' in why
    data = session.recorder.stop()
    with pytest.raises(EpisodeRefusedError, match='episode 1: none of its 6 rows') as error:
        writer.commit(data)
    assert str(error.value) == why
    assert {p: p.read_bytes() for p in (tmp_path / 'ds').rglob('*') if p.is_file()} == before
    assert writer.episodes == 1 and not writer.dir.staging.exists()
    assert len(DatasetReader(tmp_path / 'ds')) == 1


# -- the dataset check fails on what is not finite ------------------------------------------

def test_the_check_fails_on_nan_actions_naming_episode_rows_and_joints(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    writer, session = new_dataset(tmp_path / 'ds')
    writer.commit(session.episode([(5, True, 'armed')]))
    session.seq += 5  # a pause: the last command is long gone
    writer.commit(session.episode([(3, False, 'armed'), (5, True, None)]))  # no command yet
    report = check_dataset(tmp_path / 'ds', decode=False)
    assert not report.ok
    assert report.episodes[0].failures == []
    failures = report.episodes[1].failures
    assert failures[0] == 'episode 1 rows 0-2: action has NaN in fr3_joint1..7'
    assert 'LeRobot trains on them' in failures[1]
    assert 'rows 0-2 flagged (no valid action (no finite command from the safety bridge)): ' \
        'visuomotor train skips them' in report.episodes[1].warnings
    assert cli_main(['dataset', 'check', str(tmp_path / 'ds'), '--sheet',
                     str(tmp_path / 'sheet.png')]) == 1
    out = capsys.readouterr().out
    assert 'FAIL episode 1 rows 0-2: action has NaN in fr3_joint1..7' in out
    assert out.rstrip().endswith('FAILED')


def test_joint_names_are_shortened_only_where_they_run_in_order() -> None:
    assert compact_names([f'fr3_joint{i}' for i in range(1, 8)]) == 'fr3_joint1..7'
    assert compact_names(['j0', 'j1', 'j2', 'gripper_width_m']) == 'j0..2, gripper_width_m'
    assert compact_names(['j1', 'j3']) == 'j1, j3'
    assert compact_names(['shoulder', 'elbow']) == 'shoulder, elbow'


# -- training skips what it must not learn from -------------------------------------------

@pytest.fixture(scope='module')
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """0: clean; 1: a stop in the middle (2 rows flagged, values finite); 2: clean; 3: every
    row flagged (as a converted old dataset can hold: the writer refuses such an episode)."""
    path = tmp_path_factory.mktemp('mixed') / 'ds'
    writer, session = new_dataset(path)
    writer.commit(session.episode([(6, True, 'armed')]))
    writer.commit(session.episode([(4, True, 'armed'), (2, True, 'stopping'),
                                   (4, True, 'holding')]))
    writer.commit(session.episode([(5, True, 'armed')]))
    writer.commit(session.episode([(5, True, 'armed')]))
    data_file = path / DATA_PATH.format(chunk_index=0, file_index=3)
    table = pq.read_table(data_file)
    table = table.set_column(table.schema.get_field_index(FLAGS), FLAGS,
                             pa.array([NOT_ARMED] * table.num_rows, type=pa.int64()))
    pq.write_table(table, data_file.with_name('new.parquet'))
    os.replace(data_file.with_name('new.parquet'), data_file)
    return path


def test_training_data_skips_flagged_rows_and_episodes_and_says_why(mixed: Path) -> None:
    data = load_demos(mixed)
    assert data.episodes == [0, 1, 2]
    assert len(data) == 6 + 8 + 5
    assert dict(data.skipped_rows) == {'the safety bridge was not armed': 2}
    assert list(data.skipped_episodes) == [3]
    assert data.skipped_episodes[3] == '5 rows: the safety bridge was not armed'
    # episode 1 is kept as two segments: no window spans the rows of the stop
    starts, ends = data.episode_start[6:14], data.episode_end[6:14]
    assert starts.tolist() == [6] * 4 + [10] * 4 and ends.tolist() == [10] * 4 + [14] * 4
    _, state, action = data.window(np.array([9]), history=2, chunk=3)
    assert np.isfinite(action).all()
    np.testing.assert_array_equal(action[0, 1], action[0, 2])  # held at the segment's end
    every = load_demos(mixed, include_flagged=True)
    assert every.episodes == [0, 1, 2, 3] and len(every) == 6 + 10 + 5 + 5
    assert not every.skipped_rows and not every.skipped_episodes


def test_episode_choices_are_parsed_and_checked() -> None:
    assert parse_episodes('0,3-5') == [0, 3, 4, 5]
    assert parse_episodes(' 7, 2 ,2-3') == [2, 3, 7]
    for wrong in ('', '1,,2', '3-1', 'a', '-1'):
        with pytest.raises(TrainingDataError, match='give indices and ranges like 0,3-5'):
            parse_episodes(wrong)
    assert select_episodes(5, [0, 3, 4], [3]) == [0, 4]
    with pytest.raises(TrainingDataError, match=r'no episode 7 \(it has 5: 0\.\.4\)'):
        select_episodes(5, [0, 7])
    with pytest.raises(TrainingDataError, match='no episode 9'):
        select_episodes(5, None, [9])


def test_train_takes_the_chosen_episodes_and_prints_what_it_skipped(
        mixed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / 'bundle'
    code = cli_main(['train', str(mixed), str(out), '--episodes', '0-3', '--exclude-episodes',
                     '2', '--head', 'chunk_mlp', '--steps', '2', '--batch-size', '4',
                     '--chunk-length', '2', '--crop', '0', '--threads', '1'])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert 'reading episodes 0-1 of 4 from' in printed.out and 'chosen: 0-1,3' in printed.out
    assert ('skipped 2 rows (2 the safety bridge was not armed) and 1 episode without a usable '
            'row (episode 3: 5 rows: the safety bridge was not armed); --include-flagged keeps '
            'flagged rows whose values are finite') in printed.out
    assert (out / 'policy.onnx').is_file() or any(out.iterdir())
    assert cli_main(['train', str(mixed), str(tmp_path / 'b2'), '--episodes', '3']) == 2
    assert 'none of episodes 3 has a usable row' in capsys.readouterr().err
    assert cli_main(['train', str(mixed), str(tmp_path / 'b3'), '--episodes', '0,x']) == 2
    assert "--episodes '0,x'" in capsys.readouterr().err
