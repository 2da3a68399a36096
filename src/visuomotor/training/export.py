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
    feature_points_output,
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


class _WithFeaturePoints(nn.Module):
    """The policy, also returning each camera's feature points in network-input pixels.

    The points are read from the encoders' spatial softmax during the policy's own forward
    pass (a hook), so the exported graph computes every encoder once and the extra outputs
    cost a reshape and an affine map.
    """

    def __init__(self, module: nn.Module, history: int) -> None:
        super().__init__()
        from visuomotor.explain.feature_points import camera_encoders, map_geometry

        self.module, self.history = module, history
        self._points: list[torch.Tensor] = []
        encoders = camera_encoders(module)
        for index, encoder in enumerate(encoders):
            geometry = map_geometry(encoder)
            span = [(geometry.map_size[a] - 1) * geometry.stride_px[a] for a in (0, 1)]
            self.register_buffer(f'offset{index}', torch.tensor(geometry.offset_px))
            self.register_buffer(f'half_span{index}', torch.tensor(span) / 2.0)
            encoder.softmax.register_forward_hook(  # type: ignore[union-attr]
                lambda _m, _i, out: self._points.append(out))
        self.cameras = len(encoders)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        self._points.clear()
        out = self.module(*inputs)
        points = []
        for index, raw in enumerate(self._points[:self.cameras]):
            b = inputs[index].shape[0]
            offset = getattr(self, f'offset{index}')
            half = getattr(self, f'half_span{index}')
            points.append((offset + (raw + 1.0) * half).reshape(b, self.history, -1, 2))
        return (out, *points)


def has_feature_points(module: nn.Module) -> bool:
    """Whether the architecture's encoders produce spatial-softmax feature points."""
    from visuomotor.explain.feature_points import camera_encoders
    try:
        camera_encoders(module)
    except ValueError:
        return False
    return True


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
    outputs = [spec.output_name]
    exported: nn.Module = module
    if has_feature_points(module):
        exported = _WithFeaturePoints(module, spec.observation_history).eval()
        outputs += [feature_points_output(c) for c in spec.camera_names]
    dynamic = {n: {0: 'batch'} for n in [*names, *outputs]}
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of torch.export, which needs
        # onnxscript (not installed here); PLATFORM.md: export with dynamo=False.
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', torch.jit.TracerWarning)  # type: ignore[attr-defined]
        torch.onnx.export(exported, tensors, buffer,  # type: ignore[arg-type]
                          input_names=names, output_names=outputs,
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


def reexport_bundle(bundle: PolicyBundle, directory: str | Path | None = None) -> PolicyBundle:
    """Export a bundle again from its torch weights (the current exporter's outputs).

    Use it to give an older bundle the feature-point outputs: the spec (with its execution
    block), the weights and the model card are kept; the golden outputs are recomputed and
    must equal the old ones (same network), or nothing is written.

    Raises:
        BundleError: the bundle has no weights, or the re-exported network answers differently.
    """
    from visuomotor.policy.bundle import load_weights
    from visuomotor.policy.errors import BundleError

    spec = bundle.spec
    if spec.architecture is None:
        raise BundleError('bundle', f'{bundle.directory}: the spec names no torch architecture '
                          'to rebuild')
    module = build_architecture(spec.architecture.name, spec.architecture.kwargs)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in load_weights(bundle).items()},
                           strict=True)
    names = list(spec.input_shapes())
    with torch.inference_mode():
        answer = module.eval()(*(torch.from_numpy(bundle.golden_inputs[n]) for n in names))
    error = float(np.abs(answer.numpy() - bundle.golden_outputs[spec.output_name]).max())
    if error > 1e-5:
        raise BundleError('bundle', f'{bundle.directory}: the weights answer the golden inputs '
                          f'{error:.2e} away from the recorded outputs; not re-exporting')
    card = bundle.card_path.read_text() if bundle.card_path is not None else None
    out = bundle.directory if directory is None else Path(directory)
    return export_bundle(module, spec, out, card=card)
