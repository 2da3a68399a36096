"""Export a torch policy as a bundle.

The bundle holds the ONNX file (spec and golden I/O in its metadata), a model card and the
weights as plain arrays (for the PyTorch debug backend).

Golden inputs are drawn at random in the ranges the network sees (preprocessed images and
normalised proprio around 0); the golden outputs are the torch module's answers to them, so
every backend is later held to the training framework's numbers.
"""

from __future__ import annotations

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
    PolicySpec,
)

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

    module = module.eval().cpu()
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
        torch.onnx.export(module, tensors, buffer,  # type: ignore[arg-type]
                          input_names=names, output_names=[spec.output_name],
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    model = onnx.load_model_from_string(buffer.getvalue())
    weights = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    return write_bundle(directory, model, spec, inputs, {spec.output_name: expected},
                        weights=weights, card=card)
