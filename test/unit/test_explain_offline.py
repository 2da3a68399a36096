"""`visuomotor explain`: feature points and saliency over recorded episodes (explain.offline).

What a user explaining a policy on a recorded dataset checks: every file the run reports
exists and opens (the mp4 decodes to one frame per explained row, the contact sheet and the
point-trajectory figures load as images, points.npz holds (rows, K, 2) pixel coordinates inside
the image, and exactly the points the policy computes from that row's frames and state through
the deployment path); a dataset that lacks a camera or the state the policy reads, an episode
that does not exist and a stride of 0 are refused with a message naming the problem; the
bundled demo policy (transformer head) explains its own task's data; the CLI exits 0, and 2
with a message for a missing bundle.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from support import REPO
from visuomotor.cli import main
from visuomotor.errors import VisuomotorError
from visuomotor.explain.offline import (
    EpisodeExplanation,
    ExplainError,
    ExplainSettings,
    explain_dataset,
)
from visuomotor.explain.views import PolicyViews
from visuomotor.policy.backends.torch_backend import TorchBackend
from visuomotor.policy.bundle import PolicyBundle
from visuomotor.policy.errors import BundleError
from visuomotor.policy.runtime import Observation, PolicyRuntime
from visuomotor.recording.reader import DatasetReader
from visuomotor.recording.video import read_video
from visuomotor.training.demos import record_demos
from visuomotor.training.export import untrained_bundle

pytestmark = [
    pytest.mark.filterwarnings('ignore:You are using the legacy TorchScript:DeprecationWarning'),
    pytest.mark.filterwarnings('ignore:The feature will be removed:DeprecationWarning'),
    pytest.mark.filterwarnings('ignore:Converting a tensor to a Python boolean'),
]

CAMERAS = ('scene_camera', 'wrist_camera')
SIZE = 96  # the demo scene's cameras (config/sim/fr3_demo.yaml)
DEMO_BUNDLE = REPO / 'models' / 'pick_place_fr3'


@pytest.fixture(scope='module')
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scripted-expert episode on the FR3 demo twin (two 96x96 cameras, 10 rows/s)."""
    path = tmp_path_factory.mktemp('data') / 'ds'
    report = record_demos(path, [1000])
    assert report.committed == [1000]
    return path


@pytest.fixture(scope='module')
def bundle(tmp_path_factory: pytest.TempPathFactory) -> PolicyBundle:
    """An untrained FR3 policy for the dataset's cameras and frame size (joint proprio)."""
    b = untrained_bundle(tmp_path_factory.mktemp('bundle'), size=SIZE, cameras=CAMERAS)
    assert b.spec.camera_names == CAMERAS
    return b


@pytest.fixture(scope='module')
def explained(dataset: Path, bundle: PolicyBundle, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, list[EpisodeExplanation]]:
    """The dataset explained with the untrained bundle, every 10th row."""
    out = tmp_path_factory.mktemp('explained')
    messages: list[str] = []
    results = explain_dataset(bundle.directory, dataset, out, ExplainSettings(stride=10),
                              messages.append)
    return out, results


def test_dataset_fits_the_policy(dataset: Path, bundle: PolicyBundle) -> None:
    reader = DatasetReader(dataset)
    assert len(reader) == 1 and sorted(reader.cameras) == sorted(CAMERAS)
    frame = reader.episode(0).frames(CAMERAS[0])[0]
    assert frame.shape == (SIZE, SIZE, 3)
    names = reader.features['observation.state']['names']
    assert set(bundle.spec.proprio.joint_names) <= set(names)


def test_every_listed_file_exists_and_opens(explained: tuple[Path, list[EpisodeExplanation]],
                                            dataset: Path) -> None:
    out, results = explained
    (result,) = results
    length = DatasetReader(dataset).episode(0).length
    assert result.episode == 0
    assert result.rows == list(range(0, length, 10))
    names = [p.name for p in result.files]
    assert names == ['episode_0.mp4', 'episode_0_sheet.png',
                     'episode_0_scene_camera_points.png', 'episode_0_wrist_camera_points.png',
                     'episode_0_points.npz']
    assert all(p.parent == out and p.is_file() for p in result.files)
    frames = read_video(out / 'episode_0.mp4')
    assert len(frames) == len(result.rows)
    # per row: both cameras stacked, each feature points | saliency at scale 3, captioned
    panel_h, panel_w = SIZE * 3 + 16, 2 * SIZE * 3 + 4
    assert frames[0].shape == (16 + 2 * (panel_h + 2), panel_w, 3)
    sheet = cv2.imread(str(out / 'episode_0_sheet.png'))
    assert sheet is not None and sheet.ndim == 3
    # 8 rows on the sheet, 4 per line, each frame padded by 4 px
    assert sheet.shape[:2] == (2 * (frames[0].shape[0] + 4), 4 * (frames[0].shape[1] + 4))
    for camera in CAMERAS:
        figure = cv2.imread(str(out / f'episode_0_{camera}_points.png'))
        assert figure is not None
        # the first view with the paths, then x(t) and y(t) plots (320x240 + caption)
        assert figure.shape == (max(SIZE * 3 + 16, 256), SIZE * 3 + 4 + 320 + 4 + 320, 3)


def test_points_npz_holds_the_policys_points(explained: tuple[Path, list[EpisodeExplanation]],
                                             dataset: Path, bundle: PolicyBundle) -> None:
    out, (result,) = explained
    with np.load(out / 'episode_0_points.npz', allow_pickle=False) as data:
        assert sorted(data.files) == sorted(['rows', *CAMERAS])
        np.testing.assert_array_equal(data['rows'], result.rows)
        points = {c: np.array(data[c]) for c in CAMERAS}
    for camera in CAMERAS:
        array = points[camera]
        assert array.shape == (len(result.rows), 32, 2)
        assert np.isfinite(array).all()
        assert array.min() >= 0.0 and array.max() <= SIZE - 1
        np.testing.assert_array_equal(array, result.points[camera])
    # row 10 by hand, through the deployment path: frames 9 and 10 (history 2), their state
    episode = DatasetReader(dataset).episode(0)
    state = np.asarray(episode.columns['observation.state'])
    names = list(DatasetReader(dataset).features['observation.state']['names'])
    joints = [names.index(j) for j in bundle.spec.proprio.joint_names]
    frames = {c: episode.frames(c)[9:11] for c in CAMERAS}
    obs = Observation(frames, state[9:11][:, joints], 1.0, dict.fromkeys(CAMERAS, 'rgb8'))
    inputs = PolicyRuntime(bundle, TorchBackend(bundle)).network_inputs(obs)
    expected = PolicyViews(bundle).points(inputs)
    for camera in CAMERAS:
        np.testing.assert_allclose(points[camera][1], expected[camera][-1], atol=1e-5)


def test_the_bundled_demo_policy_explains_its_task(dataset: Path, tmp_path: Path) -> None:
    (result,) = explain_dataset(DEMO_BUNDLE, dataset, tmp_path,
                                ExplainSettings(episodes=(0,), stride=60, video=False))
    assert result.rows == [0, 60, 120, 180]
    assert [p.suffix for p in result.files] == ['.png', '.png', '.png', '.npz']
    for camera in CAMERAS:
        assert result.points[camera].shape == (4, 32, 2)
        assert result.points[camera].min() >= 0.0 and result.points[camera].max() <= SIZE - 1


def test_a_camera_the_dataset_lacks_is_refused(dataset: Path, tmp_path: Path) -> None:
    other = untrained_bundle(tmp_path / 'bundle', size=SIZE,
                             cameras=('scene_camera', 'top_camera'))
    with pytest.raises(ExplainError, match=r"\['top_camera'\] missing"):
        explain_dataset(other.directory, dataset, tmp_path / 'out')


def test_state_of_another_robot_is_refused(dataset: Path, tmp_path: Path) -> None:
    ur5e = untrained_bundle(tmp_path / 'bundle', robot='ur5e', size=SIZE)
    with pytest.raises(ExplainError, match='shoulder_pan_joint') as info:
        explain_dataset(ur5e.directory, dataset, tmp_path / 'out', ExplainSettings(video=False))
    assert 'fr3_joint1' in str(info.value)  # what the dataset has


def test_frames_of_another_size_are_refused(dataset: Path, tmp_path: Path) -> None:
    small = untrained_bundle(tmp_path / 'bundle', size=32)
    with pytest.raises(VisuomotorError, match='96x96') as info:
        explain_dataset(small.directory, dataset, tmp_path / 'out', ExplainSettings(video=False))
    assert '32x32' in str(info.value)


def test_a_missing_episode_is_refused(dataset: Path, bundle: PolicyBundle,
                                      tmp_path: Path) -> None:
    with pytest.raises(ExplainError, match=r'episodes \[3\] do not exist') as info:
        explain_dataset(bundle.directory, dataset, tmp_path / 'out',
                        ExplainSettings(episodes=(0, 3)))
    assert 'has 1' in str(info.value)
    with pytest.raises(ExplainError, match=r'episodes \[-1\] do not exist'):
        explain_dataset(bundle.directory, dataset, tmp_path / 'out',
                        ExplainSettings(episodes=(-1,)))
    assert not (tmp_path / 'out').exists()  # refused before anything is written


def test_stride_zero_is_refused(dataset: Path, bundle: PolicyBundle, tmp_path: Path) -> None:
    with pytest.raises(ExplainError, match='stride must be at least 1, got 0'):
        explain_dataset(bundle.directory, dataset, tmp_path / 'out', ExplainSettings(stride=0))


def test_cli_explains_without_video(dataset: Path, bundle: PolicyBundle, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / 'out'
    code = main(['explain', str(bundle.directory), str(dataset), '--out', str(out),
                 '--stride', '20', '--no-video'])
    assert code == 0
    printed = capsys.readouterr().out
    length = DatasetReader(dataset).episode(0).length
    assert f'episode 0: {len(range(0, length, 20))} rows explained' in printed
    assert sorted(p.name for p in out.iterdir()) == sorted([
        'episode_0_sheet.png', 'episode_0_scene_camera_points.png',
        'episode_0_wrist_camera_points.png', 'episode_0_points.npz'])
    with np.load(out / 'episode_0_points.npz', allow_pickle=False) as data:
        np.testing.assert_array_equal(data['rows'], np.arange(0, length, 20))


def test_cli_exits_2_for_a_missing_bundle(dataset: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / 'no_such_bundle'
    assert main(['explain', str(missing), str(dataset), '--out', str(tmp_path / 'out')]) == 2
    err = capsys.readouterr().err
    assert 'visuomotor explain: error:' in err and 'no_such_bundle' in err
    with pytest.raises(BundleError):  # the same from the library
        explain_dataset(missing, dataset, tmp_path / 'out')


def test_cli_exits_2_for_a_bad_stride_or_episode_list(dataset: Path, bundle: PolicyBundle,
                                                      tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    args = ['explain', str(bundle.directory), str(dataset), '--out', str(tmp_path / 'out')]
    assert main([*args, '--stride', '0']) == 2
    assert 'stride must be at least 1' in capsys.readouterr().err
    assert main([*args, '--episodes', '0,x']) == 2
    assert '--episodes' in capsys.readouterr().err
