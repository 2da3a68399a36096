"""Demonstrations -> dataset -> training -> bundle -> runtime -> rollout, on the twin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from visuomotor.cli import main as cli_main
from visuomotor.policy.backends import BackendOptions, open_backend
from visuomotor.policy.bundle import load_bundle
from visuomotor.policy.chunking import SchedulerConfig
from visuomotor.policy.runtime import Observation, PolicyRuntime
from visuomotor.recording.check import check_dataset
from visuomotor.recording.reader import DatasetReader, Episode
from visuomotor.safety.bridge import SafetyBridge, State
from visuomotor.safety.profile import load_safety_profile
from visuomotor.safety.workspace import load_workspace
from visuomotor.sim.config import load_scene
from visuomotor.sim.policy_rollout import RolloutSettings, rollout
from visuomotor.sim.task import PickPlaceTask
from visuomotor.sim.twin import Twin
from visuomotor.training.config import TrainConfig
from visuomotor.training.dataset import DemoData, TrainingDataError, _trainable, load_demos
from visuomotor.training.demos import DemoSettings, record_demos
from visuomotor.training.train import train

SEEDS = (1000, 1001, 1002)


@pytest.fixture(scope='module')
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp('demos') / 'dataset'
    report = record_demos(path, SEEDS)
    assert report.committed == list(SEEDS) and report.failed == []
    return path


@pytest.fixture(scope='module')
def trained(demos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp('bundle') / 'policy'
    config = TrainConfig(steps=40, batch_size=8, holdout_episodes=1, warmup_steps=5,
                         learning_rate=1e-3, threads=2)
    result = train(demos, out, config, name='tiny', log=lambda line: None)
    assert len(result.train_loss) == 10  # a point every 4 steps
    assert result.train_loss[-1][1] < 0.7 * result.train_loss[0][1]  # it learns
    return out


def test_expert_demonstrations_are_recorded_through_the_recorder(demos: Path) -> None:
    reader = DatasetReader(demos)
    assert len(reader) == len(SEEDS)
    assert reader.features['observation.state']['names'][-1] == 'gripper_width_m'
    episode = reader.episode(0)
    assert episode.provenance['seed'] == SEEDS[0]
    assert np.isfinite(episode.columns['action']).all()
    # The expert closes the gripper on the cube and opens it at the target.
    widths = episode.columns['action'][:, -1]
    assert widths.min() < 0.01 and widths[0] > 0.07 and widths[-1] > 0.07
    frames = episode.frames('wrist_camera')
    assert len(frames) == episode.length and frames[0].shape == (96, 96, 3)
    assert check_dataset(demos).ok


def test_a_recovery_demonstration_marks_its_deliberate_miss_not_to_imitate(
        tmp_path: Path) -> None:
    """The first grasp lands beside the cube, the expert grasps again; only the miss is
    excluded from training windows, the recovery is kept."""
    settings = DemoSettings(miss_fraction=1.0)
    report = record_demos(tmp_path / 'recovery', (1000,), settings)
    assert report.committed == [1000]  # the retry succeeded
    episode = DatasetReader(report.dataset).episode(0)
    assert episode.provenance['deliberate_miss'] is True
    (start, end), = episode.provenance['exclude_from_training']
    closed = episode.columns['action'][:, -1] < 0.01  # the gripper command
    grasps = np.flatnonzero(np.diff(closed.astype(int)) == 1) + 1
    assert len(grasps) == 2  # the miss, then the grasp that carried the cube
    data = load_demos(report.dataset)
    offset = episode.length - len(data)  # rows before the first command are dropped
    times = episode.columns['timing.reference_ns'][offset:] * 1e-9
    np.testing.assert_array_equal(data.trainable, (times < start) | (times > end))
    assert not data.trainable[grasps[0] - offset]  # the miss is not imitated
    assert data.trainable[grasps[1] - offset:].all()  # the recovery is
    assert 0.2 < data.trainable.mean() < 0.8


def test_excluded_spans_that_are_malformed_or_cover_everything_are_named() -> None:
    columns = {'timing.reference_ns': np.arange(10) * 100_000_000, 'frame_index': np.arange(10)}

    def episode(provenance: dict[str, object]) -> Episode:
        return Episode(3, 'task', columns, {}, [], provenance)

    assert _trainable(episode({}), 'd').all()
    np.testing.assert_array_equal(_trainable(episode({'exclude_from_training': [[0.2, 0.4]]}),
                                             'd'), [1, 1, 0, 0, 0, 1, 1, 1, 1, 1])
    with pytest.raises(TrainingDataError, match='episode 3 excludes every row'):
        _trainable(episode({'exclude_from_training': [[0.0, 5.0]]}), 'd')
    with pytest.raises(TrainingDataError, match=r'entry 0\.5 is not \[start_s, end_s\]'):
        _trainable(episode({'exclude_from_training': [0.5]}), 'd')


def test_windows_pair_the_observation_with_the_actions_from_its_row_on() -> None:
    frames = np.arange(7, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    rows = np.arange(7, dtype=np.float64)[:, None]
    data = DemoData(['cam'], {'cam': frames}, rows, rows + 100, np.array([0, 0, 0, 3, 3, 3, 3]),
                    np.array([3, 3, 3, 7, 7, 7, 7]), [0, 1], ['j'], 10.0, np.ones(7, bool))
    images, state, action = data.window(np.array([0, 2, 3]), history=2, chunk=3)
    assert state[:, :, 0].tolist() == [[0, 0], [1, 2], [3, 3]]  # history never crosses episodes
    assert images['cam'][:, :, 0, 0, 0].tolist() == [[0, 0], [1, 2], [3, 3]]
    assert action[:, :, 0].tolist() == [[100, 101, 102], [102, 102, 102], [103, 104, 105]]


def test_the_bundle_carries_the_training_statistics_and_preprocessing(
        demos: Path, trained: Path) -> None:
    bundle = load_bundle(trained)
    spec = bundle.spec
    data = load_demos(demos, range(len(SEEDS) - 1))  # the training episodes
    np.testing.assert_allclose(spec.action.stats.mean, data.action.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(spec.proprio.stats.mean, data.state.mean(axis=0), rtol=1e-9)
    assert spec.proprio.gripper_joints == ('fr3_finger_joint1', 'fr3_finger_joint2')
    assert spec.action.gripper and spec.control_rate_hz == 10.0
    for camera in spec.cameras:
        assert camera.preprocess.random_crop is not None
        assert camera.preprocess.output_shape == (3, 88, 88)  # the centred crop at deployment
    assert spec.provenance['training']['episodes'] == len(SEEDS) - 1


def test_onnx_runtime_and_pytorch_give_the_same_chunk_on_twin_frames(trained: Path) -> None:
    bundle = load_bundle(trained)
    scene = load_scene('fr3')
    with Twin(scene) as twin:
        PickPlaceTask(scene.task).apply(twin, PickPlaceTask(scene.task).sample(5000))
        frames = twin.render()
        q = np.append(twin.arm_positions(), twin.gripper_width_m())
    obs = Observation({n: [frames[n]] for n in bundle.spec.camera_names}, q[None], 1.0)
    chunks = []
    for kind in ('onnxruntime', 'torch'):
        backend, _ = open_backend(bundle, [kind], BackendOptions(threads=1))
        chunks.append(PolicyRuntime(bundle, backend)(obs))
    np.testing.assert_allclose(chunks[0].positions, chunks[1].positions, atol=1e-4)
    assert chunks[0].positions.shape == (16, 7) and chunks[0].gripper is not None


def test_a_rollout_infers_every_execute_steps_and_the_arm_follows(trained: Path) -> None:
    bundle = load_bundle(trained)
    backend, _ = open_backend(bundle, ['onnxruntime'], BackendOptions(threads=1))
    runtime = PolicyRuntime(bundle, backend)
    scene = load_scene('fr3')
    settings = RolloutSettings(max_duration_s=4.0, scheduler=SchedulerConfig(execute_steps=8))
    with Twin(scene) as twin:
        result = rollout(twin, PickPlaceTask(scene.task), runtime, 5001, settings)
        commanded = twin.controller.sample(twin.time_s).positions
        measured = twin.arm_positions()
    assert not result.success  # 40 steps of training do not solve the task
    assert result.duration_s == pytest.approx(4.0, abs=0.01)
    assert 4 <= result.inferences <= 6  # every 0.8 s (8 of 16 actions at 10 Hz)
    assert np.abs(commanded - measured).max() < 0.05


def test_a_rollout_through_the_pure_safety_bridge_moves_within_its_limits(trained: Path
                                                                          ) -> None:
    """The in-process rollout with the bridge in between, as the deploy graph runs it."""
    bundle = load_bundle(trained)
    backend, _ = open_backend(bundle, ['onnxruntime'], BackendOptions(threads=1))
    runtime = PolicyRuntime(bundle, backend)
    scene = load_scene('fr3')
    bridge = SafetyBridge(load_safety_profile('fr3', 'commissioning'), load_workspace('twin_fr3'))
    speeds = []
    with Twin(scene) as twin:
        def watch(t: float, images: object) -> None:
            speeds.append(np.abs(twin.joint_state().velocities[:7]).max())
        rollout(twin, PickPlaceTask(scene.task), runtime, 5001,
                RolloutSettings(max_duration_s=3.0), on_frame=watch, bridge=bridge)
    counts = bridge.counters.values
    assert bridge.state is State.ARMED, bridge.fault_reason
    assert counts['commands_accepted'] >= 20 and counts['gripper_non_finite'] == 0
    assert max(speeds) <= bridge.limits.velocity_rad_s.max() * 1.1


def test_training_data_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(Exception, match='no meta/info.json'):
        load_demos(tmp_path)
    assert cli_main(['train', str(tmp_path / 'missing'), str(tmp_path / 'out')]) == 2


def test_bad_training_settings_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='steps must be >= 1, got 0'):
        TrainConfig(steps=0)
    assert cli_main(['train', str(tmp_path), str(tmp_path / 'out'), '--crop', '-2']) == 2


def test_an_unknown_head_is_refused_before_reading_anything(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="head 'lstm' is not one of"):
        train(tmp_path, tmp_path / 'out', TrainConfig(head='lstm'))
