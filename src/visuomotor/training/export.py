"""Export a torch policy as a bundle.

The bundle holds the ONNX file (spec and golden I/O in its metadata), a model card and the
weights as plain arrays (for the PyTorch debug backend).

Golden inputs are drawn at random in the ranges the network sees (preprocessed images and
normalised proprio around 0); the golden outputs are the torch module's answers to them, so
every backend is later held to the training framework's numbers.
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from visuomotor.policy.bundle import PolicyBundle, write_bundle
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
from visuomotor.training.nets import build_architecture

#: ONNX opset: supported by ONNX Runtime 1.17+ and TensorRT 10.
OPSET = 17


def golden_inputs(spec: PolicySpec, seed: int = 0) -> dict[str, np.ndarray]:
    """Random network inputs of the spec's shapes (batch of one)."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, shape in spec.input_shapes().items():
        if name == TIMESTEP_INPUT:
            steps = spec.scheduler.train_steps if spec.scheduler else 1
            out[name] = np.array([rng.integers(0, steps)], dtype=np.float32)
        elif name == NOISY_ACTION_INPUT:
            out[name] = rng.standard_normal(shape).astype(np.float32)
        else:
            out[name] = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    return out


def export_bundle(module: nn.Module, spec: PolicySpec, directory: str | Path, *,
                  card: str | None = None, seed: int = 0) -> PolicyBundle:
    """Write `module` (already trained) as a bundle in `directory` and load it back."""
    import onnx

    module = copy.deepcopy(module).eval().cpu()  # the caller's model keeps its device/mode
    inputs = golden_inputs(spec, seed)
    names = list(spec.input_shapes())
    tensors = tuple(torch.from_numpy(inputs[n]) for n in names)
    with torch.inference_mode():
        expected = module(*tensors).numpy()
    buffer = io.BytesIO()
    dynamic = {n: {0: 'batch'} for n in [*names, spec.output_name]}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of torch.export, which needs
        # onnxscript (not installed here); PLATFORM.md: export with dynamo=False.
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', torch.jit.TracerWarning)  # type: ignore[attr-defined]
        torch.onnx.export(module, tensors, buffer,  # type: ignore[arg-type]
                          input_names=names, output_names=[spec.output_name],
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    model = onnx.load_model_from_string(buffer.getvalue())
    weights = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    return write_bundle(directory, model, spec, inputs, {spec.output_name: expected},
                        weights=weights, card=card)


def untrained_bundle(directory: str | Path, *, robot: str = 'fr3', size: int = 32,
                     cameras: tuple[str, ...] = ('scene_camera', 'wrist_camera'),
                     history: int = 2, chunk_length: int = 8, rate_hz: float = 10.0,
                     gripper: bool = True, family: str = 'single_pass',
                     seed: int = 0) -> PolicyBundle:
    """A small policy with random weights (Levine encoder, MLP head), for tests and demos.

    Its action statistics centre the outputs on the robot's home pose with a 0.01 rad spread,
    so the untrained network commands small motions around home. It knows nothing: use it to
    exercise the runtime, never to judge a policy.
    """
    description = load_robot(robot)
    joints = tuple(description.joint_names)
    pre = PreprocessSpec(input_encoding='rgb8', input_height=size, input_width=size)
    dim = len(joints) + int(gripper)
    name = 'chunk_mlp' if family == 'single_pass' else 'denoising_mlp'
    kwargs = {'cameras': [{'name': c, 'channels': 3, 'height': size, 'width': size}
                          for c in cameras],
              'history': history, 'proprio_dim': len(joints), 'action_dim': dim,
              'chunk_length': chunk_length, 'encoder': 'levine', 'hidden': [32]}
    scheduler = (DenoisingScheduler(50, 5, 'squaredcos_cap_v2', 1e-4, 2e-2, 'epsilon', 1.0)
                 if family == 'denoising' else None)
    home = tuple(description.home_rad)
    mean = home + ((description.gripper.max_width_m / 2,) if gripper else ())
    spec = PolicySpec(
        name=f'untrained-{robot}', cameras=tuple(CameraInput(c, pre) for c in cameras),
        observation_history=history,
        proprio=ProprioSpec(joints, Normalisation(home, (1.0,) * len(joints))),
        action=ActionSpec('joint_position', joints, gripper,
                          Normalisation(mean, (0.01,) * dim)),
        chunk_length=chunk_length, control_rate_hz=rate_hz, family=family,
        scheduler=scheduler, architecture=Architecture(name, kwargs),
        provenance={'training': 'none: random weights (tests and demos only)'})
    torch.manual_seed(seed)
    return export_bundle(build_architecture(name, kwargs), spec, directory, seed=seed)
