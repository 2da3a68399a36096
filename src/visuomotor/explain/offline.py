"""`visuomotor explain <bundle> <dataset>`: what a policy looks at over recorded episodes.

For each chosen episode, every `stride`-th row goes through the same path as deployment: the
row's camera frames (with the bundle's observation history, padded with the episode's first
row like training windows) and its measured state become network inputs through the bundle's
own preprocessing and normalisation (`PolicyRuntime.network_inputs`, the shared library). The
bundle's PyTorch twin then gives each camera's feature points and FullGrad saliency, and per
episode this writes:

    episode_<i>.mp4                 per row: every camera's feature points | saliency
    episode_<i>_sheet.png           a contact sheet of `sheet_frames` evenly spaced rows
    episode_<i>_<camera>_points.png the feature points' paths over the first frame, and
                                    x(t), y(t) of every point
    episode_<i>_points.npz          (rows, K, 2) pixel coordinates per camera, the row indices
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from visuomotor.errors import VisuomotorError
from visuomotor.explain.overlay import Image, label
from visuomotor.explain.plots import trajectory_figure
from visuomotor.explain.views import PolicyViews
from visuomotor.policy.bundle import PolicyBundle, load_bundle
from visuomotor.policy.runtime import Observation, PolicyRuntime

if TYPE_CHECKING:
    from visuomotor.recording.reader import DatasetReader

log = logging.getLogger(__name__)


class ExplainError(VisuomotorError, ValueError):
    """The bundle and the dataset do not fit together; the message says why and what to do."""


@dataclass(frozen=True)
class ExplainSettings:
    """What to render.

    Attributes:
        episodes: dataset episode indices (None: all).
        stride: render every `stride`-th row.
        saliency: compute FullGrad maps (a backward pass per row).
        scale: enlargement of the network's view.
        sheet_frames: rows on each contact sheet.
        video: write the mp4 (contact sheets and plots are always written).
    """

    episodes: tuple[int, ...] | None = None
    stride: int = 1
    saliency: bool = True
    scale: int = 3
    sheet_frames: int = 8
    video: bool = True


@dataclass
class EpisodeExplanation:
    """What was written for one episode."""

    episode: int
    rows: list[int]
    points: dict[str, npt.NDArray[np.float64]]
    files: list[Path] = field(default_factory=list)


def _proprio_rows(state: npt.NDArray[np.float64], names: Sequence[str], runtime: PolicyRuntime
                  ) -> npt.NDArray[np.float64]:
    spec = runtime.spec
    wanted = list(spec.proprio.joint_names)
    if spec.proprio.gripper_joints:
        wanted.append('gripper_width_m')
    missing = [n for n in wanted if n not in names]
    if missing:
        raise ExplainError(f'the dataset state has {list(names)}; the policy reads {wanted} '
                           f'({missing} missing): explain it with a dataset of the robot it '
                           'was trained for')
    index = [list(names).index(n) for n in wanted]
    return np.asarray(state[:, index], dtype=np.float64)


def _even(image: Image) -> Image:
    """Pad to even width and height (yuv420p video)."""
    pad_h, pad_w = image.shape[0] % 2, image.shape[1] % 2
    return np.pad(image, ((0, pad_h), (0, pad_w), (0, 0))) if pad_h or pad_w else image


def _sheet(frames: list[Image], columns: int = 4) -> Image:
    height = max(f.shape[0] for f in frames)
    width = max(f.shape[1] for f in frames)
    tiles = [np.pad(f, ((0, height - f.shape[0] + 4), (0, width - f.shape[1] + 4), (0, 0)))
             for f in frames]
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)


def explain_dataset(bundle_path: str | Path, dataset_path: str | Path, out_dir: str | Path,
                    settings: ExplainSettings = ExplainSettings(),
                    progress: Callable[[str], None] | None = None
                    ) -> list[EpisodeExplanation]:
    """Render the explanations (see the module docstring); returns what was written.

    Raises:
        ExplainError: the dataset lacks a camera or state the policy reads, or an episode
            index does not exist.
        BundleError / BackendError: the bundle cannot be loaded or has no torch weights.
    """
    from visuomotor.policy.backends.torch_backend import TorchBackend
    from visuomotor.recording.reader import DatasetReader

    bundle: PolicyBundle = load_bundle(bundle_path)
    spec = bundle.spec
    reader = DatasetReader(dataset_path)
    missing = [c for c in spec.camera_names if c not in reader.cameras]
    if missing:
        raise ExplainError(f'{dataset_path} records cameras {list(reader.cameras)}; the policy '
                           f'reads {list(spec.camera_names)} ({missing} missing)')
    chosen = list(range(len(reader))) if settings.episodes is None else list(settings.episodes)
    bad = [i for i in chosen if not 0 <= i < len(reader)]
    if bad:
        raise ExplainError(f'episodes {bad} do not exist: {dataset_path} has {len(reader)} '
                           f'(0..{len(reader) - 1})')
    if settings.stride < 1:
        raise ExplainError(f'stride must be at least 1, got {settings.stride}')
    twin = TorchBackend(bundle)
    runtime = PolicyRuntime(bundle, twin)
    views = PolicyViews(bundle)
    if not views.has_points and not settings.saliency:
        raise ExplainError(f'{spec.name}: its encoder has no feature points and saliency is '
                           'off: nothing to show')
    names = list(reader.features['observation.state']['names'])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for index in chosen:
        results.append(_explain_episode(reader, index, runtime, views, names, out, settings,
                                        progress))
    return results


def _explain_episode(reader: DatasetReader, index: int, runtime: PolicyRuntime, views: PolicyViews,
                     names: list[str], out: Path, settings: ExplainSettings,
                     progress: Callable[[str], None] | None) -> EpisodeExplanation:
    from visuomotor.recording.video import VideoEncoder, VideoSettings

    episode = reader.episode(index)
    spec = runtime.spec
    history = spec.observation_history
    proprio = _proprio_rows(np.asarray(episode.columns['observation.state']), names, runtime)
    rate = float(reader.fps)
    fps = rate / settings.stride
    streams = [episode.iter_frames(c) for c in spec.camera_names]
    frames: dict[str, deque[npt.NDArray[np.uint8]]] = {
        c: deque(maxlen=history) for c in spec.camera_names}
    rows: list[int] = []
    points: dict[str, list[npt.NDArray[np.float64]]] = {c: [] for c in spec.camera_names}
    rendered: list[Image] = []
    first_views: dict[str, Image] = {}
    encoder = None
    result = EpisodeExplanation(index, rows, {})
    for row, row_frames in enumerate(zip(*streams, strict=False)):
        for camera, frame in zip(spec.camera_names, row_frames, strict=True):
            buffer = frames[camera]
            if not buffer:
                buffer.extend([frame] * history)  # pad like training windows
            else:
                buffer.append(frame)
        if row % settings.stride:
            continue
        past = np.maximum(np.arange(row - history + 1, row + 1), 0)
        obs = Observation({c: list(frames[c]) for c in spec.camera_names}, proprio[past],
                          row / rate,
                          dict.fromkeys(spec.camera_names, 'rgb8'))
        inputs = runtime.network_inputs(obs)
        camera_views = views.views(inputs, saliency=settings.saliency)
        panels = []
        for view in camera_views:
            if view.points_px is not None:
                points[view.camera].append(view.points_px)
            first_views.setdefault(view.camera, view.image)
            panels.append(view.render(settings.scale))
        width = max(p.shape[1] for p in panels)
        stacked = np.vstack([np.pad(p, ((0, 2), (0, width - p.shape[1]), (0, 0)))
                             for p in panels])
        frame_image = label(stacked, f'{spec.name}  episode {index}  row {row}  '
                                     f't {row / rate:.2f} s')
        frame_image = _even(frame_image)
        rows.append(row)
        rendered.append(frame_image)
        if settings.video:
            if encoder is None:
                path = out / f'episode_{index}.mp4'
                encoder = VideoEncoder(path, frame_image.shape[1], frame_image.shape[0],
                                       fps, VideoSettings('h264', queue_frames=1_000_000))
                result.files.append(path)
            encoder.add(frame_image)
        if progress is not None and len(rows) % 25 == 0:
            progress(f'episode {index}: {len(rows)} rows explained')
    if not rows:
        raise ExplainError(f'episode {index} has no frames')
    if encoder is not None:
        encoder.close()
    picks = np.unique(np.linspace(0, len(rendered) - 1, min(settings.sheet_frames,
                                                            len(rendered))).round().astype(int))
    sheet = out / f'episode_{index}_sheet.png'
    _write_png(sheet, cv2.cvtColor(_sheet([rendered[i] for i in picks]), cv2.COLOR_RGB2BGR))
    result.files.append(sheet)
    for camera, series in points.items():
        if not series:
            continue
        array = np.stack(series)
        result.points[camera] = array
        figure = trajectory_figure(first_views[camera], array, fps, camera, settings.scale)
        path = out / f'episode_{index}_{camera}_points.png'
        _write_png(path, cv2.cvtColor(figure, cv2.COLOR_RGB2BGR))
        result.files.append(path)
    if result.points:
        npz = out / f'episode_{index}_points.npz'
        arrays: dict[str, Any] = {'rows': np.asarray(rows), **result.points}
        np.savez(npz, allow_pickle=False, **arrays)
        result.files.append(npz)
    return result


def _write_png(path: Path, image: npt.NDArray[Any]) -> None:
    """Write an image, or say that it could not be (cv2.imwrite only returns False)."""
    if not cv2.imwrite(str(path), image):
        raise ExplainError(f'{path}: could not be written; check that its folder exists, is '
                           'writable and has space')
