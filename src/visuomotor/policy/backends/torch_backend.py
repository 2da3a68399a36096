"""PyTorch backend (for debugging): the bundle's registered architecture with its weights.

Rebuilds `spec.architecture` from `visuomotor.training.nets` (a fixed registry: nothing is
imported by a name read from the file) and loads `torch_weights.npz` (plain arrays, no
pickle). Slower than the ONNX paths; useful to compare against them and for saliency.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.policy.backends.base import Arrays
from visuomotor.policy.bundle import PolicyBundle, load_weights
from visuomotor.policy.errors import BackendError


class TorchBackend:
    """Eager PyTorch on CPU or CUDA."""

    def __init__(self, bundle: PolicyBundle, *, device: str = 'cpu', threads: int = 0) -> None:
        try:
            import torch

            from visuomotor.training.nets import build_architecture
        except ImportError as exc:
            raise BackendError(f'PyTorch backend unavailable ({exc}); pip install torch') \
                from None
        spec = bundle.spec
        if spec.architecture is None:
            raise BackendError(f'{bundle.directory}: the spec names no torch architecture, so '
                               'the PyTorch backend cannot rebuild the network; use '
                               'onnxruntime or tensorrt')
        if device.startswith('cuda') and not torch.cuda.is_available():
            raise BackendError(f'PyTorch device {device!r} requested but CUDA is unavailable')
        if threads > 0:
            torch.set_num_threads(threads)
        try:
            module = build_architecture(spec.architecture.name, spec.architecture.kwargs)
            state = {k: torch.from_numpy(v) for k, v in load_weights(bundle).items()}
            module.load_state_dict(state, strict=True)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise BackendError(f'{bundle.directory}: cannot rebuild {spec.architecture.name} '
                               f'with its weights ({exc})') from None
        self._torch = torch
        self.module = module.to(device).eval()
        self.device = device
        self._names = list(spec.input_shapes())
        self.name = f'torch[{device}]'
        self._cameras = spec.camera_names
        self.extra_outputs: tuple[str, ...] = ()
        from visuomotor.training.export import has_feature_points
        if has_feature_points(self.module):
            from visuomotor.policy.spec import feature_points_output
            self.extra_outputs = tuple(feature_points_output(c) for c in self._cameras)
        self.precision = 'float32'

    def run(self, inputs: Arrays) -> npt.NDArray[np.float32]:
        """One forward pass (see `InferenceBackend.run`)."""
        torch = self._torch
        tensors: list[Any] = [torch.from_numpy(np.ascontiguousarray(inputs[n], np.float32))
                              .to(self.device) for n in self._names]
        with torch.inference_mode():
            out = self.module(*tensors)
        return np.asarray(out.float().cpu().numpy(), dtype=np.float32)

    def run_with(self, inputs: Arrays, extras: tuple[str, ...]
                 ) -> tuple[npt.NDArray[np.float32], dict[str, npt.NDArray[np.float32]]]:
        """The spec's output and the named extras (`ExtraOutputs`).

        Feature points are read from the encoders in a second pass (this backend is for
        debugging, not speed).
        """
        from visuomotor.explain.feature_points import feature_points_px
        from visuomotor.policy.spec import feature_points_output, image_input

        out = self.run(inputs)
        if not extras:
            return out, {}
        torch = self._torch
        images = [torch.from_numpy(np.ascontiguousarray(inputs[image_input(c)], np.float32))
                  .to(self.device) for c in self._cameras]
        points = feature_points_px(self.module, images)
        named = {feature_points_output(c): p.astype(np.float32)
                 for c, p in zip(self._cameras, points, strict=True)}
        unknown = [e for e in extras if e not in named]
        if unknown:
            raise BackendError(f'the torch backend has no outputs {unknown}; it offers '
                               f'{list(named)}')
        return out, {e: named[e] for e in extras}
