"""Recording episodes into LeRobot v3.0 datasets: recorder, encoders, writer, reader, files.

What a user recording demonstrations checks: every committed episode comes back exactly as it
was recorded (rows, tasks, joint values at float32 precision, real capture stamps and sequence
numbers, one decoded frame per row with the row's content); the files follow the LeRobot v3.0
rules of docs/lerobot_v3_format.md (info.json, declared columns only, fixed-size float32
vectors, episodes/tasks/stats metadata); an episode records the frames captured while it runs,
one row per frame, each with the joint positions and commands of its capture time; malformed
frames are refused naming the camera and both formats and the episode says so; ticks that
cannot be aligned write no row and are counted; a discarded episode leaves no trace; a dataset
grows across sessions but refuses a rig with other features; the dataset path is a plain
directory in the LeRobot layout, written only by staging and renaming new files.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from visuomotor.cameras.sync import Refusal, SyncConfig
from visuomotor.recording.episode import CameraFormat, EpisodeData, EpisodeRecording, FrameRow
from visuomotor.recording.errors import DatasetError
from visuomotor.recording.lerobot_v3 import (
    DATA_PATH,
    EPISODES_PATH,
    STATS,
    VIDEO_PATH,
    DatasetFeatures,
    LeRobotWriter,
    image_key,
)
from visuomotor.recording.reader import DatasetReader
from visuomotor.recording.recorder import Recorder, RecorderConfig
from visuomotor.recording.store import DatasetDir
from visuomotor.recording.video import VideoEncoder, VideoSettings, read_video
from visuomotor.safety.commands import JointChunk

FPS = 10.0
WIDTH, HEIGHT = 64, 48
CAMERAS = (CameraFormat('scene', WIDTH, HEIGHT), CameraFormat('wrist', WIDTH, HEIGHT))
NAMES = [c.name for c in CAMERAS]
JOINTS = ('j0', 'j1', 'j2')
FINGERS = ('finger_left', 'finger_right')
VIDEO = VideoSettings('h264')
T0 = 1000.0
#: Camera i's frame of period `seq` is captured at stamp(seq) + i * CAMERA_OFFSET_S.
CAMERA_OFFSET_S = 0.002
#: The recorder ticks twice per camera period (twice the row rate), after the frames came.
TICK_DELAYS_S = (0.01, 0.06)
DEFAULT_FEATURES = ('timestamp', 'frame_index', 'episode_index', 'index', 'task_index')


def stamp(seq: int) -> float:
    """The capture time of period `seq` (the scene camera's stamp: the row's reference)."""
    return T0 + seq / FPS


def colour(seq: int, camera: int) -> np.ndarray:
    """The solid colour of frame `seq` of camera number `camera` (neighbours far apart)."""
    return np.array([(37 * seq + 90 * camera) % 200 + 28, (53 * seq + 17) % 200 + 28,
                     (71 * seq + 40 * camera + 101) % 200 + 28], dtype=np.uint8)


def image(seq: int, camera: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    out = np.empty((height, width, 3), np.uint8)
    out[:] = colour(seq, camera)
    return out


def arm(seq: int) -> list[float]:
    return [0.3 + 0.01 * seq, -1.2 + 0.02 * seq, 2.0 - 0.005 * seq]


def finger(seq: int) -> float:
    return 0.01 + 0.0005 * (seq % 20)


def sent(seq: int) -> list[float]:
    return [q + 0.05 for q in arm(seq)]


def gripper_command(seq: int) -> float:
    return 0.08 - 0.001 * (seq % 30)


def features(**overrides: Any) -> DatasetFeatures:
    values: dict[str, Any] = {'fps': FPS, 'cameras': CAMERAS,
                              'state_names': (*JOINTS, 'gripper_width_m'),
                              'robot_type': 'test_arm', 'video': VIDEO}
    values.update(overrides)
    return DatasetFeatures(**values)


def config(*, gripper: bool = True) -> RecorderConfig:
    return RecorderConfig(fps=FPS, cameras=CAMERAS, joint_names=JOINTS,
                          gripper_joints=FINGERS if gripper else (),
                          sync=SyncConfig(frozen_repeats=0), video=VIDEO)


Ticks = list[tuple[float, Refusal | None]]


@dataclass
class Rig:
    """Synthetic streams: every period one frame per camera, joint states and commands."""

    recorder: Recorder
    seq: int = 0

    def period(self, *, cameras: Sequence[str] = tuple(NAMES), commands: bool = True,
               joints: bool = True, replace: dict[str, tuple[np.ndarray, str]] | None = None,
               ) -> tuple[Ticks, dict[str, str | None]]:
        """Feed one camera period, tick twice; returns (tick time, refusal)s and frame answers."""
        seq, t = self.seq, stamp(self.seq)
        answers: dict[str, str | None] = {}
        for i, name in enumerate(NAMES):
            if name not in cameras:
                continue
            frame, encoding = (replace or {}).get(name, (image(seq, i), 'rgb8'))
            answers[name] = self.recorder.on_frame(name, t + i * CAMERA_OFFSET_S, frame,
                                                   encoding, seq=seq)
        if joints:  # in another order than the recorder's (the names map them)
            self.recorder.on_joint_state(t, [*FINGERS, *reversed(JOINTS)],
                                         [finger(seq), finger(seq), *reversed(arm(seq))])
        if commands:
            self.recorder.on_command_sent(t, JOINTS, sent(seq))
            self.recorder.on_gripper_command(t, gripper_command(seq))
        ticks: Ticks = [(t + delay, self.recorder.tick(t + delay)) for delay in TICK_DELAYS_S]
        self.seq += 1
        return ticks, answers

    @property
    def now(self) -> float:
        """A time between the last period's ticks and the next period's frames."""
        return stamp(self.seq) - 0.02

    def start(self, task: str, provenance: dict[str, object] | None = None) -> int:
        return self.recorder.start(task, provenance or {}, self.now)


def refusals(ticks: Ticks) -> list[Refusal]:
    return [r for _, r in ticks if r is not None]


def row_seqs(data: EpisodeData, camera: str = 'scene') -> list[int]:
    return [int(s) for s in data.columns[f'seq.{camera}']] if data.length else []


def expected_state(seqs: Sequence[int]) -> np.ndarray:
    return np.array([[*arm(s), sum([finger(s), finger(s)])] for s in seqs])


def assert_frames_match(frames: Sequence[np.ndarray], seqs: Sequence[int], camera: int) -> None:
    """Each decoded frame has its row's colour (lossy: a small tolerance)."""
    assert len(frames) == len(seqs)
    for frame, seq in zip(frames, seqs, strict=True):
        assert frame.shape == (HEIGHT, WIDTH, 3) and frame.dtype == np.uint8
        error = np.abs(frame.astype(np.int32) - colour(seq, camera).astype(np.int32))
        assert error.mean() < 4.0 and error.max() <= 12, (seq, camera, frame[0, 0])


def new_dataset(tmp: Path, name: str = 'dataset', **overrides: Any
                ) -> tuple[LeRobotWriter, Recorder, Rig]:
    writer = LeRobotWriter(tmp / name, features(**overrides))
    recorder = Recorder(config(), writer.begin)
    return writer, recorder, Rig(recorder)


def record(rig: Rig, writer: LeRobotWriter, task: str, periods: int, *,
           idle_before: int = 1) -> EpisodeData:
    """Record `periods` healthy camera periods as one episode and commit it."""
    for _ in range(idle_before):
        rig.period()  # between episodes: streams flow, nothing is recorded
    rig.start(task, {'operator': 'test'})
    for _ in range(periods):
        assert refusals(rig.period()[0]) == []
    data = rig.recorder.stop()
    assert data.length > 0 and data.marks == []
    writer.commit(data)
    return data


# -- a dataset of three episodes, shared by the round-trip and format tests ---------------------

EPISODES = (('pick the cube', 7), ('open the drawer', 4), ('pick the cube', 9))


@dataclass
class Recorded:
    path: Path
    data: list[EpisodeData]

    @property
    def seqs(self) -> list[list[int]]:
        return [row_seqs(d) for d in self.data]

    @property
    def lengths(self) -> list[int]:
        return [d.length for d in self.data]


@pytest.fixture(scope='module')
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    writer, _, rig = new_dataset(tmp_path_factory.mktemp('recorded'))
    data = [record(rig, writer, task, periods, idle_before=2) for task, periods in EPISODES]
    recorded = Recorded(writer.path, data)
    assert len(set(recorded.lengths)) == 3  # different lengths
    return recorded


def test_round_trip_rows_values_and_stamps(recorded: Recorded) -> None:
    reader = DatasetReader(recorded.path)
    assert len(reader) == 3 and reader.fps == FPS and reader.cameras == NAMES
    assert reader.tasks == ['pick the cube', 'open the drawer']
    total = 0
    for index, ((task, _), data) in enumerate(zip(EPISODES, recorded.data, strict=True)):
        episode = reader.episode(index)
        cols, length, seqs = episode.columns, data.length, row_seqs(data)
        assert episode.index == index and episode.task == task and episode.length == length
        assert episode.marks == [] and episode.provenance['operator'] == 'test'
        assert episode.provenance['measured'] == data.provenance['measured']
        np.testing.assert_array_equal(cols['frame_index'], np.arange(length))
        np.testing.assert_array_equal(cols['episode_index'], np.full(length, index))
        np.testing.assert_array_equal(cols['index'], np.arange(total, total + length))
        np.testing.assert_array_equal(cols['task_index'],
                                      np.full(length, reader.tasks.index(task)))
        assert cols['timestamp'].dtype == np.float32
        np.testing.assert_array_equal(cols['timestamp'],
                                      (np.arange(length) / FPS).astype(np.float32))
        total += length
        # the recorded values at float32, and they are those of each row's capture time
        for column, name in (('observation.state', 'state'), ('action', 'action'),
                             ('command.raw', 'action_raw')):
            assert cols[column].dtype == np.float32
            np.testing.assert_array_equal(cols[column], data.columns[name].astype(np.float32))
        np.testing.assert_array_equal(cols['observation.state'],
                                      expected_state(seqs).astype(np.float32))
        action = np.array([[*sent(s), gripper_command(s)] for s in seqs])
        np.testing.assert_array_equal(cols['action'], action.astype(np.float32))
        # no policy target was active: the arm part of command.raw is NaN, the gripper width
        # is the gripper command (it does not pass the arm's safety limiter)
        assert np.isnan(cols['command.raw'][:, :3]).all()
        np.testing.assert_array_equal(cols['command.raw'][:, 3],
                                      action[:, 3].astype(np.float32))
        # real stamps and sequence numbers, int64 nanoseconds
        for i, name in enumerate(NAMES):
            np.testing.assert_array_equal(cols[f'timing.seq.{name}'], seqs)
            captured = np.array([stamp(s) + i * CAMERA_OFFSET_S for s in seqs])
            ns = cols[f'timing.capture_ns.{name}']
            assert ns.dtype == np.int64
            np.testing.assert_array_equal(ns, np.round(captured * 1e9).astype(np.int64))
            exact = np.array([int(T0 * 1e9) + s * 100_000_000 + i * 2_000_000 for s in seqs])
            assert np.abs(ns - exact).max() <= 1
        np.testing.assert_array_equal(cols['timing.reference_ns'],
                                      cols['timing.capture_ns.scene'])
        np.testing.assert_array_equal(cols['timing.tick_ns'],
                                      np.round(data.columns['tick_s'] * 1e9).astype(np.int64))
        assert (cols['timing.tick_ns'] > cols['timing.reference_ns']).all()


def test_round_trip_frames(recorded: Recorded) -> None:
    reader = DatasetReader(recorded.path)
    for index, seqs in enumerate(recorded.seqs):
        episode = reader.episode(index)
        for i, name in enumerate(NAMES):
            assert_frames_match(episode.frames(name), seqs, i)


def test_rows_are_one_per_frame_in_capture_order(recorded: Recorded) -> None:
    for data in recorded.data:
        seqs = row_seqs(data)
        assert seqs == row_seqs(data, 'wrist')
        assert np.all(np.diff(seqs) == 1)  # every frame once, none skipped or repeated
        assert data.provenance['measured']['scene_distinct_frames_hz'] == pytest.approx(FPS)


def test_an_episode_records_the_frames_captured_while_it_runs(tmp_path: Path) -> None:
    writer, recorder, rig = new_dataset(tmp_path)
    for _ in range(3):
        rig.period()  # the streams run before the first episode
    rig.start('pick the cube')
    first = rig.seq
    for _ in range(5):
        rig.period()
    assert row_seqs(recorder.stop()) == list(range(first, first + 5))
    for _ in range(4):
        rig.period()  # reset between episodes: not recorded
    rig.start('pick the cube')
    first = rig.seq
    for _ in range(6):
        rig.period()
    assert row_seqs(recorder.stop()) == list(range(first, first + 6))


# -- the LeRobot v3.0 rules (docs/lerobot_v3_format.md), checked on the files --------------------

def test_info_json(recorded: Recorded) -> None:
    root = recorded.path.resolve()
    info = json.loads((root / 'meta' / 'info.json').read_text())
    lengths = recorded.lengths
    assert info['codebase_version'] == 'v3.0'
    assert info['fps'] == FPS and info['robot_type'] == 'test_arm'
    assert (info['total_episodes'], info['total_frames'], info['total_tasks']) == \
        (3, sum(lengths), 2)
    assert info['chunks_size'] == 1000
    assert info['data_files_size_in_mb'] > 0 and info['video_files_size_in_mb'] > 0
    assert info['data_path'] == 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet'
    assert info['video_path'] == \
        'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4'
    assert info['splits'] == {'train': '0:3'}
    feats = info['features']
    for name in DEFAULT_FEATURES:
        dtype = 'float32' if name == 'timestamp' else 'int64'
        assert feats[name] == {'dtype': dtype, 'shape': [1], 'names': None}, name
    for name in ('observation.state', 'action', 'command.raw'):
        assert feats[name] == {'dtype': 'float32', 'shape': [4],
                               'names': [*JOINTS, 'gripper_width_m']}
    for camera in CAMERAS:
        video = feats[image_key(camera.name)]
        assert video['dtype'] == 'video' and video['shape'] == [HEIGHT, WIDTH, 3]
        assert video['names'] == ['height', 'width', 'channels']
        assert video['info']['video.codec'] == 'h264'
        assert video['info']['video.fps'] == FPS
    for name, feature in feats.items():
        assert '/' not in name
        assert feature['dtype'] in ('float32', 'int64', 'video')
    # per-row quality flags (0: usable), named so that policies never take them as inputs
    assert feats['quality.flags'] == {'dtype': 'int64', 'shape': [1], 'names': None}
    # real clocks: int64 nanoseconds, named so that policies never take them as inputs
    timing = {name for name in feats if name.startswith('timing.')}
    assert timing == {'timing.tick_ns', 'timing.reference_ns',
                      *(f'timing.{kind}.{c}' for kind in ('capture_ns', 'seq') for c in NAMES)}
    assert all(feats[name] == {'dtype': 'int64', 'shape': [1], 'names': None}
               for name in timing)


def test_data_parquet_columns_are_the_declared_features(recorded: Recorded) -> None:
    root = recorded.path.resolve()
    info = json.loads((root / 'meta' / 'info.json').read_text())
    feats = info['features']
    columns = {k for k, v in feats.items() if v['dtype'] != 'video'}
    episodes = DatasetReader(root).episode_rows
    files = [root / info['data_path'].format(chunk_index=e['data/chunk_index'],
                                             file_index=e['data/file_index'])
             for e in episodes]
    # LeRobot concatenates data/*/*.parquet in path order: that is the episode order here
    assert sorted(root.glob('data/*/*.parquet')) == files
    indices = []
    for path in files:
        schema = pq.read_schema(path)
        assert set(schema.names) == columns, path
        for name in schema.names:
            kind = schema.field(name).type
            feature = feats[name]
            if feature['shape'] == [1]:
                expected = pa.float32() if feature['dtype'] == 'float32' else pa.int64()
                assert kind == expected, name
            else:
                assert pa.types.is_fixed_size_list(kind), name
                assert kind.list_size == feature['shape'][0]
                assert kind.value_type == pa.float32()
        indices.append(pq.read_table(path).column('index').to_numpy())
    np.testing.assert_array_equal(np.concatenate(indices), np.arange(info['total_frames']))


def test_episodes_parquet(recorded: Recorded) -> None:
    root = recorded.path.resolve()
    info = json.loads((root / 'meta' / 'info.json').read_text())
    # one metadata file per episode, one schema (LeRobot concatenates them in path order)
    files = sorted(root.glob('meta/episodes/*/*.parquet'))
    assert files == [root / EPISODES_PATH.format(chunk_index=0, file_index=i) for i in range(3)]
    tables = [pq.read_table(f) for f in files]
    assert [t.num_rows for t in tables] == [1, 1, 1]
    assert all(t.schema.equals(tables[0].schema) for t in tables)
    table = pa.concat_tables(tables)
    rows = table.to_pylist()
    assert [r['episode_index'] for r in rows] == [0, 1, 2]
    assert [(r['meta/episodes/chunk_index'], r['meta/episodes/file_index']) for r in rows] == \
        [(0, 0), (0, 1), (0, 2)]
    required = ['episode_index', 'tasks', 'length', 'data/chunk_index', 'data/file_index',
                'dataset_from_index', 'dataset_to_index', 'meta/episodes/chunk_index',
                'meta/episodes/file_index']
    for camera in NAMES:
        required += [f'videos/{image_key(camera)}/{k}' for k in
                     ('chunk_index', 'file_index', 'from_timestamp', 'to_timestamp')]
    assert set(required) <= set(table.column_names)
    assert table.schema.field('tasks').type == pa.list_(pa.string())
    for name in ('from_timestamp', 'to_timestamp'):
        assert table.schema.field(f'videos/{image_key("scene")}/{name}').type == pa.float64()
    start = 0
    episodes = zip(rows, EPISODES, recorded.lengths, strict=True)
    for index, (row, (task, _), length) in enumerate(episodes):
        assert row['tasks'] == [task] and row['length'] == length
        assert (row['dataset_from_index'], row['dataset_to_index']) == (start, start + length)
        start += length
        assert (row['data/chunk_index'], row['data/file_index']) == (0, index)
        assert DATA_PATH.format(chunk_index=0, file_index=index) == \
            f'data/chunk-000/file-{index:03d}.parquet'
        for camera in NAMES:
            key = image_key(camera)
            assert (row[f'videos/{key}/chunk_index'], row[f'videos/{key}/file_index']) == \
                (0, index)
            assert row[f'videos/{key}/from_timestamp'] == 0.0
            assert row[f'videos/{key}/to_timestamp'] == pytest.approx(length / FPS)
            path = root / info['video_path'].format(video_key=key, chunk_index=0,
                                                    file_index=index)
            assert path == root / VIDEO_PATH.format(video_key=key, chunk_index=0,
                                                    file_index=index)
            assert path.is_file()
    # per-episode stats for every feature of stats.json, typed as LeRobot writes them
    stats = json.loads((root / 'meta' / 'stats.json').read_text())
    for feature in stats:
        for stat in STATS:
            kind = table.schema.field(f'stats/{feature}/{stat}').type
            if stat == 'count':
                assert kind == pa.list_(pa.int64()), feature
            elif feature.startswith('observation.images.'):
                assert kind == pa.list_(pa.list_(pa.list_(pa.float64()))), feature
            else:
                assert kind == pa.list_(pa.float64()), (feature, stat)
    assert rows[1]['stats/observation.state/count'] == [recorded.lengths[1]]


def pandas_frame(path: Path) -> tuple[list[Any], str, dict[str, list[Any]]]:
    """Read a parquet file the way pandas does: (index values, index name, columns)."""
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[b'pandas'])
    (index_column,) = meta['index_columns']
    name = next(c['name'] for c in meta['columns'] if c['field_name'] == index_column)
    columns = {c: table.column(c).to_pylist() for c in table.column_names
               if c != index_column}
    return table.column(index_column).to_pylist(), name, columns


def test_tasks_parquet_has_the_task_as_its_pandas_index(recorded: Recorded) -> None:
    root = recorded.path.resolve()
    tasks = root / 'meta' / 'tasks.parquet'
    meta = json.loads(pq.read_schema(tasks).metadata[b'pandas'])
    assert meta['index_columns'] == ['task']
    index, name, columns = pandas_frame(tasks)
    assert name == 'task'
    assert index == ['pick the cube', 'open the drawer']
    assert columns == {'task_index': [0, 1]}  # rows in task_index order (positional lookup)
    reader = DatasetReader(recorded.path)
    for i, (task, _) in enumerate(EPISODES):  # LeRobot: tasks.iloc[task_index].name
        assert index[int(reader.episode(i).columns['task_index'][0])] == task


def test_stats_json(recorded: Recorded) -> None:
    root = recorded.path.resolve()
    stats = json.loads((root / 'meta' / 'stats.json').read_text())
    info = json.loads((root / 'meta' / 'info.json').read_text())
    total = info['total_frames']
    required = {'observation.state', 'action', 'command.raw', *DEFAULT_FEATURES,
                *(image_key(c) for c in NAMES)}
    assert required <= set(stats)
    for feature, values in stats.items():
        assert set(values) == set(STATS), feature
        assert np.asarray(values['count']).shape == (1,)
        if feature.startswith('observation.images.'):
            for stat in STATS:
                if stat == 'count':
                    continue
                array = np.asarray(values[stat])
                assert array.shape == (3, 1, 1), (feature, stat)
                assert ((array >= 0.0) & (array <= 1.0)).all(), (feature, stat)
        else:
            width = info['features'][feature]['shape'][0]
            assert values['count'] == [total], feature
            for stat in STATS:
                if stat != 'count':
                    assert np.asarray(values[stat]).shape == (width,), (feature, stat)
    # count-weighted aggregation equals a direct computation over every row
    state = expected_state([s for seqs in recorded.seqs for s in seqs])
    ours = stats['observation.state']
    np.testing.assert_allclose(ours['mean'], state.mean(0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours['std'], state.std(0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours['min'], state.min(0))
    np.testing.assert_allclose(ours['max'], state.max(0))
    for q in ('q01', 'q10', 'q50', 'q90', 'q99'):
        assert (np.asarray(ours[q]) >= state.min(0) - 1e-12).all()
        assert (np.asarray(ours[q]) <= state.max(0) + 1e-12).all()
    assert stats['index']['min'] == [0] and stats['index']['max'] == [total - 1]
    # image means are the frames' mean colour, per channel, in [0, 1]
    for i, name in enumerate(NAMES):
        frames = np.array([colour(s, i) for seqs in recorded.seqs for s in seqs]) / 255.0
        np.testing.assert_allclose(np.asarray(stats[image_key(name)]['mean']).reshape(3),
                                   frames.mean(0), atol=0.02)


def test_videos_are_constant_frame_rate_from_zero(recorded: Recorded) -> None:
    reader = DatasetReader(recorded.path)
    for index, length in enumerate(recorded.lengths):
        for name in NAMES:
            path = reader.episode(index).videos[name]
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                assert stream.codec_context.name == 'h264'
                assert stream.average_rate == FPS
                times = [frame.time for frame in container.decode(video=0)]
            assert len(times) == length
            np.testing.assert_allclose(times, np.arange(length) / FPS, atol=1e-4)


# -- malformed frames ----------------------------------------------------------------------------

def record_with_malformed_frames(rig: Rig) -> tuple[EpisodeData, str, str]:
    """Seven periods; the wrist frame of period 2 is too small, the scene frame of 4 is bgr8."""
    recorder = rig.recorder
    rig.start('pick the cube')
    for _ in range(2):
        rig.period()
    small = image(rig.seq, 1, width=32, height=24)
    _, answers = rig.period(replace={'wrist': (small, 'rgb8')})
    wrong_size = answers['wrist']
    assert wrong_size is not None and answers['scene'] is None
    rig.period()
    _, answers = rig.period(replace={'scene': (image(rig.seq, 0), 'bgr8')})
    wrong_encoding = answers['scene']
    assert wrong_encoding is not None and answers['wrist'] is None
    for _ in range(2):
        rig.period()
    return recorder.stop(), wrong_size, wrong_encoding


def test_malformed_frames_are_refused_and_mark_the_episode(tmp_path: Path) -> None:
    writer, recorder, rig = new_dataset(tmp_path)
    data, wrong_size, wrong_encoding = record_with_malformed_frames(rig)
    assert wrong_size == ('camera wrist: frame is rgb8 32x24, the rig records rgb8 64x48; '
                          'frame refused')
    assert wrong_encoding == ('camera scene: frame is bgr8 64x48, the rig records rgb8 '
                              '64x48; frame refused')
    assert recorder.counters['wrist_malformed'] == 1
    assert recorder.counters['scene_malformed'] == 1
    assert wrong_size in data.marks and wrong_encoding in data.marks
    writer.commit(data)
    episode = DatasetReader(writer.path).episode(0)
    assert wrong_size in episode.marks and wrong_encoding in episode.marks
    # no row is corrupted: one frame of the right size per row, each the row's own frame,
    # and the refused frames never reach a row
    assert episode.length == data.length >= 2
    for i, name in enumerate(NAMES):
        seqs = [int(s) for s in episode.columns[f'timing.seq.{name}']]
        assert seqs == row_seqs(data) and np.all(np.diff(seqs) > 0)
        assert_frames_match(episode.frames(name), seqs, i)
    assert 2 not in row_seqs(data, 'wrist') and 4 not in row_seqs(data, 'scene')
    np.testing.assert_array_equal(episode.columns['observation.state'],
                                  expected_state(row_seqs(data)).astype(np.float32))


def test_recording_goes_on_after_a_refused_frame(tmp_path: Path) -> None:
    _, _, rig = new_dataset(tmp_path)
    data, _, _ = record_with_malformed_frames(rig)
    # every period whose frames were all accepted gives its row
    assert row_seqs(data) == [0, 1, 3, 5, 6]


def test_encoder_refuses_a_frame_of_another_size(tmp_path: Path) -> None:
    encoder = VideoEncoder(tmp_path / 'cam.mp4', WIDTH, HEIGHT, FPS, VIDEO)
    assert encoder.add(image(0, 0))
    with pytest.raises(ValueError, match='cam: frame .* is not 48x64x3 uint8'):
        encoder.add(image(1, 0, width=32))
    with pytest.raises(ValueError, match='float64'):
        encoder.add(image(1, 0).astype(np.float64))  # type: ignore[arg-type]
    assert encoder.add(image(2, 0))
    assert encoder.close() == 2
    assert_frames_match(read_video(tmp_path / 'cam.mp4'), [0, 2], 0)


def _row(seq: int) -> FrameRow:
    return FrameRow(stamp(seq), stamp(seq), {n: image(seq, i) for i, n in enumerate(NAMES)},
                    dict.fromkeys(NAMES, stamp(seq)), dict.fromkeys(NAMES, seq),
                    np.zeros(3), np.zeros(3), np.zeros(3))


def test_an_encoder_falling_behind_skips_the_row_on_every_camera(tmp_path: Path) -> None:
    recording = EpisodeRecording(0, 'task', tmp_path, CAMERAS, FPS, VIDEO, {})
    assert recording.add(_row(0))
    wrist = recording.encoders['wrist']
    wrist.has_room = lambda: False  # type: ignore[method-assign]  # its queue is full
    assert not recording.add(_row(1))
    assert recording.marks == ['wrist: the video encoder fell behind; rows skipped']
    del wrist.has_room  # the class's own again
    assert recording.add(_row(2))
    data = recording.finish()
    assert data.length == 2
    for i, name in enumerate(NAMES):
        assert_frames_match(read_video(data.videos[name]), [0, 2], i)


# -- discard, reopen, incompatible rigs ----------------------------------------------------------

def store_entries(path: Path) -> set[str]:
    return {p.name for p in path.iterdir()}


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob('*') if not p.is_dir())


def published(path: Path) -> dict[str, bytes]:
    """Every file of the dataset outside staging (what LeRobot may read)."""
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in files_under(path)
            if not p.relative_to(path).as_posix().startswith('.staging/')}


def test_discarded_episode_leaves_no_trace(tmp_path: Path) -> None:
    writer, recorder, rig = new_dataset(tmp_path)
    record(rig, writer, 'pick the cube', 5)
    before = published(writer.path)
    assert rig.start('pick the cube') == 1
    staging = writer.dir.staging / 'episode_000001'
    for _ in range(4):
        rig.period()
    assert recorder.discard() == 1
    assert files_under(staging)  # what the encoders wrote, in staging (LeRobot never looks)
    assert recorder.counters['episodes_discarded'] == 1
    assert writer.episodes == 1 and len(DatasetReader(writer.path)) == 1
    assert published(writer.path) == before
    # the next episode reuses the index; a writer opening the dataset removes the staging
    reopened = LeRobotWriter(writer.path, features())
    assert any('episode_000001' in r for r in reopened.recovered)
    assert not staging.exists() and not reopened.dir.staging.exists()
    assert store_entries(writer.path) == {'meta', 'data', 'videos'}
    data = record(Rig(Recorder(config(), reopened.begin), seq=rig.seq), reopened, 'place', 3)
    assert data.index == 1
    reader = DatasetReader(writer.path)
    assert len(reader) == 2 and reader.episode(1).length == data.length
    assert_frames_match(reader.episode(1).frames('scene'), row_seqs(data), 0)


def test_recover_removes_a_discarded_episode(tmp_path: Path) -> None:
    writer, recorder, rig = new_dataset(tmp_path)
    record(rig, writer, 'pick the cube', 3)
    rig.start('pick the cube')
    rig.period()
    recorder.discard()
    removed = LeRobotWriter(writer.path, features()).recovered
    assert removed and all(r.startswith('.staging/') for r in removed)
    assert not writer.dir.staging.exists()
    assert len(DatasetReader(writer.path)) == 1


def test_a_committed_episode_leaves_nothing_in_staging(tmp_path: Path) -> None:
    writer, _, rig = new_dataset(tmp_path)
    record(rig, writer, 'pick the cube', 3)
    assert not writer.dir.staging.exists()
    assert LeRobotWriter(writer.path, features()).recovered == []


def test_reopening_appends_episodes_and_merges_tasks(tmp_path: Path) -> None:
    writer, _, rig = new_dataset(tmp_path)
    data = [record(rig, writer, 'pick the cube', 4), record(rig, writer, 'open the drawer', 3)]
    del writer
    again = LeRobotWriter(tmp_path / 'dataset', features())
    assert again.episodes == 2
    rig2 = Rig(Recorder(config(), again.begin), seq=rig.seq + 5)
    data.append(record(rig2, again, 'open the drawer', 5))
    data.append(record(rig2, again, 'wipe the table', 2))
    assert [d.index for d in data] == [0, 1, 2, 3]
    reader = DatasetReader(tmp_path / 'dataset')
    assert len(reader) == 4
    assert reader.tasks == ['pick the cube', 'open the drawer', 'wipe the table']
    assert [reader.episode(i).task for i in range(4)] == \
        ['pick the cube', 'open the drawer', 'open the drawer', 'wipe the table']
    assert [reader.episode(i).columns['task_index'][0] for i in range(4)] == [0, 1, 1, 2]
    lengths = [d.length for d in data]
    total = sum(lengths)
    index = np.concatenate([reader.episode(i).columns['index'] for i in range(4)])
    np.testing.assert_array_equal(index, np.arange(total))
    assert reader.info['total_frames'] == total and reader.info['total_tasks'] == 3
    assert reader.info['splits'] == {'train': '0:4'}
    assert [r['dataset_from_index'] for r in reader.episode_rows] == \
        [0, *np.cumsum(lengths)[:-1].tolist()]
    stats = reader.stats['observation.state']
    assert stats['count'] == [total]
    every_row = np.concatenate([d.columns['state'] for d in data])
    np.testing.assert_allclose(stats['mean'], every_row.mean(0), rtol=1e-9)
    for i, d in enumerate(data):
        assert_frames_match(reader.episode(i).frames('wrist'), row_seqs(d), 1)


@pytest.mark.parametrize(('overrides', 'differing'), [
    ({'fps': 15.0}, 'fps 10.0 vs 15.0'),
    ({'cameras': (*CAMERAS, CameraFormat('top', WIDTH, HEIGHT))}, 'observation.images.top'),
    ({'cameras': (CAMERAS[0], CameraFormat('wrist', 32, 24))}, 'observation.images.wrist'),
    ({'state_names': JOINTS}, 'observation.state'),
    ({'video': VideoSettings('av1')}, 'observation.images.scene'),
])
def test_a_writer_with_other_features_is_refused(tmp_path: Path, overrides: dict[str, Any],
                                                 differing: str) -> None:
    writer, _, rig = new_dataset(tmp_path)
    record(rig, writer, 'pick the cube', 2)
    before = published(writer.path)
    with pytest.raises(DatasetError, match='record into a new dataset') as error:
        LeRobotWriter(writer.path, features(**overrides))
    assert differing in str(error.value) and str(writer.path) in str(error.value)
    assert published(writer.path) == before and len(DatasetReader(writer.path)) == 1


def test_commit_refuses_empty_and_out_of_order_episodes(tmp_path: Path) -> None:
    writer, recorder, rig = new_dataset(tmp_path)
    rig.start('pick the cube')
    empty = recorder.stop()
    with pytest.raises(ValueError, match='no rows; discard it'):
        writer.commit(empty)
    data = record(rig, writer, 'pick the cube', 2)
    with pytest.raises(ValueError, match='out of order'):
        writer.commit(data)  # committed twice
    assert writer.episodes == 1
    with pytest.raises(RuntimeError, match='no episode is being recorded'):
        recorder.stop()
    recorder.start('x', {}, 0.0)
    with pytest.raises(RuntimeError, match='still recording'):
        recorder.start('y', {}, 0.0)
    recorder.discard()

# -- recorder ticks ------------------------------------------------------------------------------

@pytest.fixture
def bare_recorder(tmp_path: Path) -> Iterator[tuple[Recorder, Rig]]:
    staging = tmp_path / 'staging'

    def begin() -> tuple[int, Path]:
        staging.mkdir(exist_ok=True)
        return 0, staging
    recorder = Recorder(config(gripper=False), begin)
    yield recorder, Rig(recorder)
    if recorder.episode is not None:
        recorder.discard()


def test_a_missing_camera_writes_no_row(bare_recorder: tuple[Recorder, Rig]) -> None:
    recorder, rig = bare_recorder
    rig.start('pick')
    refused = []
    for _ in range(3):
        ticks, _ = rig.period(cameras=['scene'])
        assert all(r is not None for _, r in ticks)  # nothing to align: every tick refused
        refused += refusals(ticks)
    assert {(r.stream, r.reason) for r in refused} == {('wrist', 'missing')}
    assert recorder.counters['ticks_refused_missing'] == len(refused)
    assert recorder.counters['rows'] == 0
    assert recorder.last_refusal is not None and recorder.last_refusal.stream == 'wrist'
    data = recorder.stop()
    assert data.length == 0
    assert data.marks == [f'ticks without a row: wrist missing (x{len(refused)})']


def test_rows_start_when_a_late_camera_delivers(bare_recorder: tuple[Recorder, Rig]) -> None:
    recorder, rig = bare_recorder
    rig.start('pick')
    for _ in range(3):
        rig.period(cameras=['scene'])
    for _ in range(3):
        assert refusals(rig.period()[0]) == []
    assert recorder.last_refusal is None
    assert row_seqs(recorder.stop()) == [3, 4, 5]


def test_a_stale_camera_writes_no_row(bare_recorder: tuple[Recorder, Rig]) -> None:
    recorder, rig = bare_recorder
    rig.start('pick')
    for _ in range(3):
        assert refusals(rig.period()[0]) == []
    last_wrist = stamp(2) + CAMERA_OFFSET_S
    stale = 0
    for _ in range(7):  # the wrist camera stops
        for now, refusal in rig.period(cameras=['scene'])[0]:
            if now - last_wrist > SyncConfig().max_age_s:
                assert refusal is not None
                assert (refusal.stream, refusal.reason) == ('wrist', 'stale')
                stale += 1
            else:  # not stale yet: no row (the wrist has no frame that new)
                assert refusal is None or refusal.stream == 'wrist'
    assert stale >= 10
    assert recorder.counters['ticks_refused_stale'] == stale
    assert recorder.last_refusal is not None and recorder.last_refusal.reason == 'stale'
    data = recorder.stop()
    assert row_seqs(data) == row_seqs(data, 'wrist') == [0, 1, 2]
    assert f'ticks without a row: wrist stale (x{stale})' in data.marks


def test_missing_joint_states_write_no_row(bare_recorder: tuple[Recorder, Rig]) -> None:
    recorder, rig = bare_recorder
    rig.start('pick')
    refused = refusals(rig.period(joints=False)[0])
    assert refused and {(r.stream, r.reason) for r in refused} == {('joint_states', 'missing')}
    assert recorder.on_joint_state(0.0, ['j0'], [0.0]) == 'joint state lacks recorded joints'
    assert recorder.on_joint_state(stamp(rig.seq), JOINTS, [0.0, math.nan, 0.0]) == \
        'joint state has non-finite positions'
    assert recorder.counters['joint_states_incomplete'] == 1
    assert recorder.counters['joint_states_non_finite'] == 1
    data = recorder.stop()
    assert data.length == 0
    assert data.marks == [f'ticks without a row: joint_states missing (x{len(refused)})']


def test_action_and_raw_command_columns(bare_recorder: tuple[Recorder, Rig]) -> None:
    recorder, rig = bare_recorder
    rig.start('pick')
    # 1) no command sent yet: action NaN; no raw target: command.raw NaN
    for _ in range(2):
        rig.period(commands=False)
    # 2) commands sent, no raw target
    for _ in range(2):
        rig.period()
    # 3) a policy chunk starting between periods 4 and 5: linear in time, held after its end
    start = stamp(4) + 0.05
    chunk = JointChunk(start, np.array([start, start + 0.2, start + 0.4]),
                       np.array([[0.0, 1.0, -1.0], [0.2, 1.2, -1.4], [0.4, 1.0, -1.0]]))
    recorder.on_raw_target(chunk)
    for _ in range(8):
        rig.period()
    data = recorder.stop()
    assert row_seqs(data) == list(range(12))
    action, raw = data.columns['action'], data.columns['action_raw']
    assert np.isnan(action[:2]).all()
    assert not np.isnan(action[2:]).any()  # NaN-free once commands flow
    np.testing.assert_allclose(action[2:], [sent(s) for s in range(2, 12)], atol=1e-12)
    assert np.isnan(raw[:4]).all()  # the chunk starts more than one period after them
    assert not np.isnan(raw[4:]).any()
    for row in range(4, 12):
        np.testing.assert_allclose(raw[row], chunk.target_at(stamp(row)), atol=1e-12)
    np.testing.assert_allclose(raw[4], [0.0, 1.0, -1.0])  # just before its first point
    np.testing.assert_allclose(raw[5], [0.05, 1.05, -1.1], atol=1e-9)  # between points 0, 1
    np.testing.assert_allclose(raw[8], [0.35, 1.05, -1.1], atol=1e-9)  # between points 1, 2
    np.testing.assert_allclose(raw[11], [0.4, 1.0, -1.0])  # held after the last point
    np.testing.assert_allclose(data.columns['state'], [arm(s) for s in range(12)], atol=1e-12)


def test_a_raw_target_starting_later_is_not_used_early(
        bare_recorder: tuple[Recorder, Rig]) -> None:
    recorder, rig = bare_recorder
    rig.start('pick')
    later = stamp(5) - 0.03
    recorder.on_raw_target(JointChunk(later, np.array([later, later + 0.1]),
                                      np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])))
    for _ in range(7):
        rig.period()
    data = recorder.stop()
    assert row_seqs(data) == list(range(7))
    raw = data.columns['action_raw']
    assert np.isnan(raw[:4]).all()  # more than one period before the chunk starts
    assert not np.isnan(raw[4:]).any()
    np.testing.assert_allclose(raw[4], [1.0, 1.0, 1.0])  # before its first point: held
    np.testing.assert_allclose(raw[5], [1.3, 1.3, 1.3], atol=1e-9)
    np.testing.assert_allclose(raw[6], [2.0, 2.0, 2.0])


# -- the dataset directory ----------------------------------------------------------------------

def test_files_are_replaced_by_renaming_a_new_file_never_in_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy sharing the inodes (cp -al) keeps its version; readers see old or new whole."""
    root = tmp_path / 'ds'
    store = DatasetDir(root)
    store.make_dirs(root)
    store.write('meta/m.json', b'1')
    copy = tmp_path / 'copy'
    (copy / 'meta').mkdir(parents=True)
    os.link(root / 'meta' / 'm.json', copy / 'meta' / 'm.json')  # as cp -al does
    inode = (root / 'meta' / 'm.json').stat().st_ino
    seen: list[bytes] = []
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        seen.append((root / 'meta' / 'm.json').read_bytes())  # at the moment of the rename
        real_replace(src, dst)
    monkeypatch.setattr(os, 'replace', replace)
    store.write('meta/m.json', b'2')
    monkeypatch.undo()
    assert seen == [b'1']
    assert (root / 'meta' / 'm.json').read_bytes() == b'2'
    assert (root / 'meta' / 'm.json').stat().st_ino != inode  # a new file
    assert (copy / 'meta' / 'm.json').read_bytes() == b'1'  # the linked copy is untouched
    assert not store.staging.exists()  # nothing left in staging


def test_staging_leftovers_are_named_and_removed(tmp_path: Path) -> None:
    store = DatasetDir(tmp_path / 'ds')
    store.make_dirs(store.root)
    (store.episode_staging('episode_000004') / 'scene.mp4').write_bytes(b'mp4')
    store.stage_bytes(b'half a stats.json', '.json')
    removed = store.clear_staging()
    assert len(removed) == 2
    assert any(r.startswith('.staging/episode_000004 (an episode') for r in removed)
    assert any('a file that was being written' in r for r in removed)
    assert not store.staging.exists() and store.clear_staging() == []


def test_a_folder_that_is_not_a_dataset_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / 'ds'
    (plain / 'photos').mkdir(parents=True)
    (plain / 'photos' / 'a.png').write_bytes(b'png')
    with pytest.raises(DatasetError, match=re.escape(f'{plain} exists and is not a dataset')):
        LeRobotWriter(plain, features())
    assert sorted(p.name for p in plain.iterdir()) == ['photos']  # untouched
    (tmp_path / 'file').write_text('x')
    with pytest.raises(DatasetError, match='is a file, not a dataset directory'):
        LeRobotWriter(tmp_path / 'file', features())
    empty = tmp_path / 'empty'
    empty.mkdir()
    writer = LeRobotWriter(empty, features())  # an empty folder becomes a dataset
    assert writer.episodes == 0 and len(DatasetReader(empty)) == 0


def test_reader_refuses_what_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match='no meta/info.json'):
        DatasetReader(tmp_path)
    (tmp_path / 'meta').mkdir()
    (tmp_path / 'meta' / 'info.json').write_text(json.dumps({'codebase_version': 'v2.1'}))
    with pytest.raises(DatasetError, match="'v2.1'"):
        DatasetReader(tmp_path)
    writer, _, rig = new_dataset(tmp_path, 'ds')
    record(rig, writer, 'pick', 2)
    with pytest.raises(DatasetError, match='no episode 1'):
        DatasetReader(writer.path).episode(1)


# -- the dataset check and the HDF5 export ---------------------------------------------------

def test_dataset_check_passes_a_healthy_dataset_and_renders_a_contact_sheet(
        recorded: Recorded, tmp_path: Path) -> None:
    from visuomotor.cli import main
    sheet = tmp_path / 'sheet.png'
    assert main(['dataset', 'check', str(recorded.path), '--sheet', str(sheet)]) == 0
    assert sheet.stat().st_size > 1000
    from visuomotor.recording.check import check_dataset
    report = check_dataset(recorded.path)
    assert report.ok and len(report.episodes) == 3
    for episode, data in zip(report.episodes, recorded.data, strict=True):
        assert episode.length == data.length
        assert episode.row_rate_hz == pytest.approx(FPS, rel=0.01)
        assert all(d == 0 for d in episode.dropped.values())


def test_dataset_check_finds_drops_and_a_slow_loop(tmp_path: Path) -> None:
    from visuomotor.recording.check import check_episode
    from visuomotor.recording.reader import Episode
    n = 20
    reference = (1_000_000_000 + np.arange(n) * 1e9 / 7.0).astype(np.int64)  # 7 Hz, claims 10
    seq = np.arange(n) * 3
    seq[10:] += 6  # a 30 Hz camera at 10 rows/s: one step of 9 instead of 3 (6 frames lost)
    columns = {'timing.tick_ns': reference + 1000, 'timing.reference_ns': reference,
               'timing.capture_ns.scene': reference, 'timing.seq.scene': seq,
               'frame_index': np.arange(n)}
    report = check_episode(Episode(0, 't', columns, {'scene': tmp_path / 'none.mp4'}, [], {}),
                           FPS, decode=False)
    assert report.dropped['scene'] == 6  # camera frames beyond the usual step
    assert any('7.00 Hz' in f and 'claims 10 Hz' in f for f in report.failures)


def test_hdf5_export_holds_every_episode_in_the_robomimic_layout(
        recorded: Recorded, tmp_path: Path) -> None:
    import h5py

    from visuomotor.cli import main
    out = tmp_path / 'export.hdf5'
    assert main(['dataset', 'export-hdf5', str(recorded.path), str(out)]) == 0
    reader = DatasetReader(recorded.path)
    with h5py.File(out) as f:
        assert [n.decode() for n in f['mask/train'][:]] == ['demo_0', 'demo_1', 'demo_2']
        assert f['data'].attrs['total'] == sum(recorded.lengths)
        env = json.loads(f['data'].attrs['env_args'])
        assert env['fps'] == FPS and env['tasks'] == reader.tasks
        for index in range(3):
            episode = reader.episode(index)
            demo = f[f'data/demo_{index}']
            assert demo.attrs['num_samples'] == episode.length
            assert demo.attrs['task'] == episode.task
            np.testing.assert_array_equal(demo['actions'][:], episode.columns['action'])
            np.testing.assert_array_equal(demo['obs/joint_positions'][:],
                                          episode.columns['observation.state'])
            for camera in NAMES:
                frames = demo[f'obs/{camera}_image'][:]
                assert frames.shape[0] == episode.length
                np.testing.assert_array_equal(frames, np.stack(episode.frames(camera)))
            assert demo['dones'][-1] == 1 and demo['dones'][:-1].sum() == 0
    assert not out.with_name(out.name + '.partial').exists()
