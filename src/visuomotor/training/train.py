"""Behaviour cloning on a recorded dataset, exported as a policy bundle.

The images go through the shared preprocessing's torch twin (`TorchPreprocessor`) with the
same spec the bundle embeds: random crops at train time, the centred crop at deployment.
Proprio and actions are normalised with statistics of the training rows, which travel in the
bundle's spec. Single-pass heads (`chunk_mlp`, `chunk_transformer`) learn the chunk with an
L1 (or L2) loss; the denoising head (`denoising_mlp`) learns to predict the noise added to the
chunk (Diffusion Policy's objective) and runs with DDIM in the policy runtime.

A few episodes are held out and their loss is reported, so over-fitting shows.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from visuomotor.policy.bundle import PolicyBundle
from visuomotor.policy.denoising import alphas_cumprod
from visuomotor.policy.spec import (
    ActionSpec,
    Architecture,
    CameraInput,
    DenoisingScheduler,
    Normalisation,
    PolicySpec,
    ProprioSpec,
)
from visuomotor.preprocessing import PreprocessSpec
from visuomotor.preprocessing.spec import Size
from visuomotor.preprocessing.torch_pipeline import TorchPreprocessor
from visuomotor.recording.episode import FLAG_REASONS
from visuomotor.robots.description import RobotDescription, load_robot
from visuomotor.training.config import HEADS, TrainConfig
from visuomotor.training.dataset import (
    DemoData,
    Normaliser,
    RowSelection,
    TrainingDataError,
    compact,
    describe_skipped,
    load_demos,
    select_episodes,
)
from visuomotor.training.export import export_bundle
from visuomotor.training.nets import build_architecture


@dataclass
class TrainResult:
    """What a training run produced."""

    bundle: PolicyBundle
    train_loss: list[tuple[int, float]]
    holdout_loss: list[tuple[int, float]]
    rows: int
    episodes: int
    wall_s: float
    config: TrainConfig
    holdout_episodes: int = 0


def _robot(names: Sequence[str], robot_type: str) -> tuple[RobotDescription, bool]:
    robot = load_robot(robot_type)
    gripper = names[-1] == 'gripper_width_m'
    arm = list(names[:-1] if gripper else names)
    if arm != list(robot.joint_names):
        raise TrainingDataError(f'the dataset records joints {arm}, but {robot.name} has '
                                f'{list(robot.joint_names)}; train with the robot it was '
                                'recorded on')
    return robot, gripper


def build_spec(data: DemoData, robot: RobotDescription, gripper: bool, config: TrainConfig,
               frame_shapes: dict[str, tuple[int, int]], name: str,
               provenance: dict[str, Any]) -> PolicySpec:
    """The bundle contract for a model trained on `data`."""
    cameras = []
    for camera in data.cameras:
        height, width = frame_shapes[camera]
        crop = Size(config.crop, config.crop) if config.crop else None
        cameras.append(CameraInput(camera, PreprocessSpec(
            input_encoding='rgb8', input_height=height, input_width=width, random_crop=crop)))
    proprio = Normaliser.fit(data.state)
    action = Normaliser.fit(data.action)
    fingers = tuple(robot.gripper.joint_names) if gripper else ()
    joints = tuple(robot.joint_names)
    family = 'denoising' if config.head == 'denoising_mlp' else 'single_pass'
    scheduler = (DenoisingScheduler(100, 10, 'squaredcos_cap_v2', 1e-4, 2e-2, 'epsilon', 1.0)
                 if family == 'denoising' else None)
    dims = {'cameras': [{'name': c.name, 'channels': 3,
                         'height': c.preprocess.output_shape[1],
                         'width': c.preprocess.output_shape[2]} for c in cameras],
            'history': config.history, 'proprio_dim': len(proprio.mean),
            'action_dim': len(action.mean), 'chunk_length': config.chunk_length,
            'encoder': config.encoder, **config.head_kwargs}
    return PolicySpec(
        name=name, cameras=tuple(cameras), observation_history=config.history,
        proprio=ProprioSpec(joints, Normalisation(tuple(proprio.mean), tuple(proprio.std)),
                            fingers),
        action=ActionSpec('joint_position', joints, gripper,
                          Normalisation(tuple(action.mean), tuple(action.std))),
        chunk_length=config.chunk_length, control_rate_hz=data.fps, family=family,
        scheduler=scheduler, architecture=Architecture(config.head, dims),
        provenance=provenance)


class _Batches:
    """Turns row indices into network inputs and targets (preprocessed, normalised)."""

    def __init__(self, data: DemoData, spec: PolicySpec, device: torch.device,
                 generator: torch.Generator, proprio_noise: float = 0.0) -> None:
        self.data, self.spec, self.device, self.generator = data, spec, device, generator
        self.proprio_noise = proprio_noise
        self.pre = {c.name: TorchPreprocessor(c.preprocess, device=device) for c in spec.cameras}
        self.proprio = Normaliser(np.array(spec.proprio.stats.mean),
                                  np.array(spec.proprio.stats.std))
        self.action = Normaliser(np.array(spec.action.stats.mean),
                                 np.array(spec.action.stats.std))

    def __call__(self, rows: np.ndarray, train: bool) -> tuple[list[torch.Tensor], torch.Tensor]:
        frames, state, action = self.data.window(rows, self.spec.observation_history,
                                                 self.spec.chunk_length)
        inputs = []
        for camera in self.spec.camera_names:
            raw = frames[camera]  # (B, T, H, W, 3)
            b, t = raw.shape[:2]
            images = self.pre[camera](raw.reshape(b * t, *raw.shape[2:]), train=train,
                                      generator=self.generator)
            inputs.append(images.reshape(b, t, *images.shape[1:]))
        proprio = torch.from_numpy(self.proprio(state))
        if train and self.proprio_noise > 0:
            arm = len(self.spec.proprio.joint_names)
            noise = torch.randn(proprio[..., :arm].shape, generator=self.generator)
            proprio[..., :arm] += self.proprio_noise * noise
        inputs.append(proprio.to(self.device))
        return inputs, torch.from_numpy(self.action(action)).to(self.device)


def _learning_rate(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _loss(model: torch.nn.Module, spec: PolicySpec, inputs: list[torch.Tensor],
          target: torch.Tensor, config: TrainConfig, generator: torch.Generator
          ) -> torch.Tensor:
    if spec.scheduler is not None:
        # Diffusion Policy's objective, batched: x_t = sqrt(ab) x0 + sqrt(1 - ab) eps, and
        # the network predicts eps (or x0), as policy.denoising defines for the runtime.
        schedule = spec.scheduler
        ab = torch.as_tensor(alphas_cumprod(schedule), dtype=torch.float32,
                             device=target.device)
        noise = torch.randn(target.shape, generator=generator).to(target.device)
        steps = torch.randint(0, schedule.train_steps, (target.shape[0],),
                              generator=generator).to(target.device)
        a = ab[steps][:, None, None]
        noisy = a.sqrt() * target + (1.0 - a).sqrt() * noise
        prediction = model(*inputs, noisy, steps.float())
        wanted = noise if schedule.prediction == 'epsilon' else target
        return torch.nn.functional.mse_loss(prediction, wanted)
    prediction = model(*inputs)
    if config.loss == 'l2':
        return torch.nn.functional.mse_loss(prediction, target)
    return torch.nn.functional.l1_loss(prediction, target)


def train(dataset: str | Path, out: str | Path, config: TrainConfig | None = None, *,
          name: str | None = None, log: Callable[[str], None] = print,
          episodes: Sequence[int] | None = None, exclude_episodes: Sequence[int] = (),
          include_flagged: bool = False) -> TrainResult:
    """Train on a recorded dataset and export the bundle to `out`.

    `episodes` / `exclude_episodes` choose the episodes (all by default). Rows flagged while
    recording and rows that are not finite are skipped, episodes without a usable row too
    (training/dataset.py), and the log says how many and why; `include_flagged` keeps flagged
    rows whose values are finite. The held-out episodes are the last usable ones.
    """
    config = config or TrainConfig()
    if config.head not in HEADS:
        raise TrainingDataError(f'head {config.head!r} is not one of {list(HEADS)}')
    if config.loss not in ('l1', 'l2'):
        raise TrainingDataError(f'loss {config.loss!r} is not l1 or l2')
    from visuomotor.recording.reader import DatasetReader

    start = time.perf_counter()
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    reader = DatasetReader(dataset)
    chosen = select_episodes(len(reader), episodes, exclude_episodes, dataset)
    unusable: dict[int, str] = {}
    for index in chosen:
        selection = RowSelection.of(reader.episode(index), include_flagged)
        if not selection.usable.any():
            unusable[index] = ', '.join(f'{n} rows: {why}'
                                        for why, n in selection.skipped.items())
    usable = [i for i in chosen if i not in unusable]
    if not usable:
        raise TrainingDataError(f'{dataset}: none of episodes {compact(chosen)} has a usable '
                                'row (flagged while recording, or not finite); check it with '
                                '`visuomotor dataset check`')
    holdout = min(config.holdout_episodes, max(0, len(usable) - 1))
    train_episodes = usable[:len(usable) - holdout]
    held_episodes = usable[len(usable) - holdout:]
    log(f'reading episodes {compact(usable)} of {len(reader)} from {dataset} ({holdout} held '
        f'out){"" if len(chosen) == len(reader) else f"; chosen: {compact(chosen)}"}')
    data = load_demos(dataset, train_episodes, include_flagged=include_flagged)
    held = load_demos(dataset, held_episodes, include_flagged=include_flagged) \
        if holdout else None
    rows = data.skipped_rows + (held.skipped_rows if held else Counter())
    skipped = describe_skipped(rows, unusable)
    flagged = any(why in FLAG_REASONS.values() for why in rows) or bool(unusable)
    log(skipped + ('; --include-flagged keeps flagged rows whose values are finite'
                   if flagged and not include_flagged else ''))
    robot, gripper = _robot(data.state_names, str(reader.info.get('robot_type')))
    shapes = {c: (int(v.shape[1]), int(v.shape[2])) for c, v in data.frames.items()}
    provenance = {'training': {'dataset': str(Path(dataset).resolve()),
                               'episodes': len(train_episodes), 'rows': len(data),
                               'episode_indices': compact(train_episodes),
                               'holdout_episodes': holdout, 'config': asdict(config),
                               'skipped': skipped},
                  'robot': robot.name}
    spec = build_spec(data, robot, gripper, config, shapes,
                      name or f'{config.head}-{robot.name}', provenance)
    assert spec.architecture is not None
    device = torch.device(config.device)
    model = build_architecture(spec.architecture.name, spec.architecture.kwargs).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    batches = _Batches(data, spec, device, generator, config.proprio_noise)
    held_batches = _Batches(held, spec, device, generator) if held is not None else None
    log(f'{len(data)} training rows from {len(train_episodes)} episodes '
        f'({len(data) - int(data.trainable.sum())} marked not to imitate); '
        f'{sum(p.numel() for p in model.parameters()):,} parameters; {config.steps} steps of '
        f'{config.batch_size}')
    starts = np.flatnonzero(data.trainable)  # rows a window may start at
    train_curve: list[tuple[int, float]] = []
    held_curve: list[tuple[int, float]] = []
    progress = _progress(config.steps)
    every = max(1, min(100, config.steps // 10))  # loss points on the curve
    running: list[float] = []
    for step in range(config.steps):
        model.train()
        for group in optimiser.param_groups:
            group['lr'] = _learning_rate(step, config)
        inputs, target = batches(rng.choice(starts, config.batch_size), train=True)
        loss = _loss(model, spec, inputs, target, config, generator)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimiser.step()
        running.append(float(loss.detach()))
        last = step + 1 == config.steps
        if (step + 1) % every == 0 or last:
            train_curve.append((step + 1, float(np.mean(running))))
            running = []
            note = f'loss {train_curve[-1][1]:.4f}'
            if held_batches is not None and ((step + 1) % (5 * every) == 0 or last):
                held_curve.append((step + 1, _evaluate(model, spec, held_batches, config,
                                                       generator)))
                note += f', held-out {held_curve[-1][1]:.4f}'
            progress(step + 1, note)
    progress.finish()
    log(f'trained in {time.perf_counter() - start:.0f} s')
    bundle = export_bundle(model, spec, out, seed=config.seed)
    return TrainResult(bundle, train_curve, held_curve, len(data), len(train_episodes),
                       time.perf_counter() - start, config, holdout)


def _evaluate(model: torch.nn.Module, spec: PolicySpec, batches: _Batches,
              config: TrainConfig, generator: torch.Generator) -> float:
    model.eval()
    starts = np.flatnonzero(batches.data.trainable)
    rows = starts[::max(1, len(starts) // 512)]
    losses = []
    with torch.no_grad():
        for chunk in np.array_split(rows, max(1, len(rows) // config.batch_size)):
            inputs, target = batches(chunk, train=False)
            losses.append(float(_loss(model, spec, inputs, target, config, generator)))
    return float(np.mean(losses))


class _progress:  # noqa: N801 - used like a function
    """A one-line progress bar on stderr (steps, rate, time left, the latest losses)."""

    def __init__(self, total: int) -> None:
        import sys

        self.total, self.start, self.stream = total, time.perf_counter(), sys.stderr
        self.tty = self.stream.isatty()

    def __call__(self, done: int, note: str) -> None:
        elapsed = time.perf_counter() - self.start
        left = elapsed / done * (self.total - done)
        filled = int(30 * done / self.total)
        line = (f'[{"#" * filled}{"." * (30 - filled)}] {done}/{self.total} '
                f'{done / elapsed:.1f} it/s, {left:.0f} s left, {note}')
        self.stream.write(('\r' + line) if self.tty else line + '\n')
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write('\n')
