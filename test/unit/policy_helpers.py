"""Small policy specs, bundles and fake backends shared by the policy bundle/backend tests.

Everything is tiny so a bundle exports in well under a second: 32x32 frames (the Levine
encoder needs at least 21x21), a 32-unit head, chunks of 4 actions, two frames of history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from visuomotor.policy.backends import BackendOptions
from visuomotor.policy.backends.base import InferenceBackend
from visuomotor.policy.bundle import PolicyBundle
from visuomotor.policy.runtime import Observation
from visuomotor.policy.spec import (
    NOISY_ACTION_INPUT,
    TIMESTEP_INPUT,
    ActionSpec,
    Architecture,
    CameraInput,
    DenoisingScheduler,
    Normalisation,
    PolicySpec,
    ProprioSpec,
)
from visuomotor.preprocessing import PreprocessSpec
from visuomotor.robots.description import load_robot

if TYPE_CHECKING:
    from visuomotor.training.nets import LevineEncoder

FR3 = load_robot('fr3')
FR3_JOINTS = tuple(FR3.joint_names)
UR5E_JOINTS = tuple(load_robot('ur5e').joint_names)
CAMERAS = ('scene', 'wrist')
SIZE = 32
HISTORY = 2
CHUNK = 4
RATE_HZ = 10.0
SCHEDULER = DenoisingScheduler(train_steps=50, inference_steps=5,
                               beta_schedule='squaredcos_cap_v2', beta_start=1e-4,
                               beta_end=2e-2, prediction='epsilon', clip_sample=1.0)
#: ONNX Runtime on the CPU only, so results do not depend on an installed GPU provider.
CPU_PROVIDERS = ('CPUExecutionProvider',)
CPU_OPTIONS = BackendOptions(onnxruntime_providers=CPU_PROVIDERS, warmup_runs=2)


def preprocess(size: int = SIZE, encoding: str = 'rgb8') -> PreprocessSpec:
    """Plain preprocessing of `size` x `size` frames (scale to [0, 1], CHW)."""
    return PreprocessSpec(input_encoding=encoding, input_height=size,  # type: ignore[arg-type]
                          input_width=size)


def make_spec(*, family: str = 'single_pass', kind: str = 'joint_position',
              gripper: bool = True, encoder: str = 'levine',
              encoder_kwargs: Mapping[str, Any] | None = None, size: int = SIZE,
              cameras: Sequence[str] = CAMERAS, joints: Sequence[str] = FR3_JOINTS,
              chunk_length: int = CHUNK, scheduler: DenoisingScheduler | None = None,
              proprio_stats: Normalisation | None = None,
              action_stats: Normalisation | None = None,
              provenance: Mapping[str, Any] | None = None,
              with_architecture: bool = True, name: str = 'tiny') -> PolicySpec:
    """A small, valid spec (and the architecture kwargs that fit it)."""
    joints = tuple(joints)
    arm = 6 if kind == 'ee_pose' else len(joints)
    dim = arm + int(gripper)
    if family == 'denoising' and scheduler is None:
        scheduler = SCHEDULER
    architecture = None
    if with_architecture:
        kwargs = {
            'cameras': [{'name': c, 'channels': 3, 'height': size, 'width': size}
                        for c in cameras],
            'history': HISTORY, 'proprio_dim': len(joints), 'action_dim': dim,
            'chunk_length': chunk_length, 'encoder': encoder,
            'encoder_kwargs': dict(encoder_kwargs or {}), 'hidden': [32]}
        architecture = Architecture('denoising_mlp' if family == 'denoising' else 'chunk_mlp',
                                    kwargs)
    return PolicySpec(
        name=name,
        cameras=tuple(CameraInput(c, preprocess(size)) for c in cameras),
        observation_history=HISTORY,
        proprio=ProprioSpec(joints, proprio_stats or Normalisation(
            (0.0,) * len(joints), (1.0,) * len(joints))),
        action=ActionSpec(kind, joints, gripper, action_stats or Normalisation(
            (0.0,) * dim, (1.0,) * dim)),
        chunk_length=chunk_length, control_rate_hz=RATE_HZ, family=family,
        scheduler=scheduler, architecture=architecture, provenance=dict(provenance or {}))


def export(spec: PolicySpec, directory: Path, seed: int = 0) -> PolicyBundle:
    """Build the spec's architecture with seeded weights and export it as a bundle."""
    import torch

    from visuomotor.training.export import export_bundle
    from visuomotor.training.nets import build_architecture

    assert spec.architecture is not None
    torch.manual_seed(seed)
    module = build_architecture(spec.architecture.name, spec.architecture.kwargs)
    return export_bundle(module, spec, directory)


def random_inputs(spec: PolicySpec, seed: int, batch: int = 1
                  ) -> dict[str, npt.NDArray[np.float32]]:
    """Network inputs drawn independently of the golden ones."""
    rng = np.random.default_rng(1000 + seed)
    out: dict[str, npt.NDArray[np.float32]] = {}
    for name, shape in spec.input_shapes().items():
        full = (batch, *shape[1:])
        if name == TIMESTEP_INPUT:
            steps = spec.scheduler.train_steps if spec.scheduler else 1
            out[name] = rng.integers(0, steps, size=full).astype(np.float32)
        elif name == NOISY_ACTION_INPUT:
            out[name] = rng.standard_normal(full).astype(np.float32)
        elif name.startswith('image.'):
            out[name] = rng.uniform(0.0, 1.0, full).astype(np.float32)
        else:
            out[name] = rng.uniform(-2.0, 2.0, full).astype(np.float32)
    return out


def observation(spec: PolicySpec, seed: int = 0, stamp_s: float = 12.5,
                q: npt.ArrayLike | None = None) -> Observation:
    """Random raw uint8 frames for every camera and joint positions near home."""
    rng = np.random.default_rng(seed)
    frames = {c.name: [rng.integers(0, 256, c.preprocess.input_shape, dtype=np.uint8)
                       for _ in range(spec.observation_history)] for c in spec.cameras}
    if q is None:
        home = np.array(FR3.home_rad[:len(spec.proprio.joint_names)])
        q = home + rng.uniform(-0.1, 0.1, (spec.observation_history, len(home)))
    return Observation(frames, np.asarray(q, dtype=np.float64), stamp_s)


class FakeBackend:
    """Wraps a real backend, optionally adding `offset` to (or replacing) its output."""

    def __init__(self, inner: InferenceBackend, *, precision: str = 'float32',
                 offset: float = 0.0, fill: float | None = None, name: str = 'fake') -> None:
        self.inner = inner
        self.name = name
        self.precision = precision
        self.offset = offset
        self.fill = fill
        self.calls = 0

    def run(self, inputs: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[np.float32]:
        """The wrapped backend's output, perturbed."""
        self.calls += 1
        out = self.inner.run(inputs)
        if self.fill is not None:
            return np.full_like(out, self.fill)
        return (out + np.float32(self.offset)).astype(np.float32)


def red_square_encoder(encoder: LevineEncoder) -> LevineEncoder:
    """Hand-set weights: response map 0 peaks where a 7x7 window is all red.

    conv1 channel 0 sums R - G - B over its 7x7 window (about +36 inside a red square, -25
    on grey, ReLU keeps the square); conv2 and conv3 pass channel 0 through with their
    centre tap; every other weight and bias is zero (the other 31 maps are flat); the
    spatial softmax's temperature is 0.1, so the plateau on the square dominates.
    """
    import torch
    from torch import nn

    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.zero_()
        first, second, third = [m for m in encoder.convs if isinstance(m, nn.Conv2d)]
        first.weight[0, 0] = 1.0
        first.weight[0, 1] = -1.0
        first.weight[0, 2] = -1.0
        second.weight[0, 0, 2, 2] = 1.0
        third.weight[0, 0, 2, 2] = 1.0
        encoder.softmax.log_temperature.fill_(math.log(0.1))
    return encoder
