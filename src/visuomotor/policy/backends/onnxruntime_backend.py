"""ONNX Runtime backend: TensorRT, CUDA or CPU execution providers, as installed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.policy.backends.base import Arrays
from visuomotor.policy.bundle import PolicyBundle
from visuomotor.policy.errors import BackendError

log = logging.getLogger(__name__)

#: Preferred order when the parameter does not name providers.
DEFAULT_PROVIDERS = ('TensorrtExecutionProvider', 'CUDAExecutionProvider',
                     'CPUExecutionProvider')


class OnnxRuntimeBackend:
    """An `onnxruntime.InferenceSession` over the bundle's ONNX file."""

    def __init__(self, bundle: PolicyBundle, *, providers: Sequence[str] = DEFAULT_PROVIDERS,
                 threads: int = 0, fp16: bool = True, cache_dir: Path | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError(f'onnxruntime is not installed ({exc}); pip install '
                               'onnxruntime (CPU) or onnxruntime-gpu') from None
        available = ort.get_available_providers()
        chosen = [p for p in providers if p in available]
        if not chosen:
            raise BackendError(f'none of the ONNX Runtime providers {list(providers)} is '
                               f'available (this install has {available})')
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        provider_options: list[tuple[str, dict[str, Any]]] = []
        for name in chosen:
            if name == 'TensorrtExecutionProvider':
                # ORT names cached engines after the model file and its node names, not its
                # weights: one directory per ONNX hash, so a retrained model never reuses them.
                root = cache_dir or Path.home() / '.cache' / 'visuomotor' / 'ort_trt'
                cache = str(root / bundle.onnx_sha256[:16])
                Path(cache).mkdir(parents=True, exist_ok=True)
                provider_options.append((name, {
                    'trt_fp16_enable': fp16, 'trt_engine_cache_enable': True,
                    'trt_engine_cache_path': cache, 'trt_timing_cache_enable': True,
                    'trt_timing_cache_path': cache}))
            else:
                provider_options.append((name, {}))
        try:
            self.session = ort.InferenceSession(
                str(bundle.onnx_path), sess_options=options,
                providers=[p for p, _ in provider_options],
                provider_options=[o for _, o in provider_options])
        except Exception as exc:  # ORT raises its own exception types
            raise BackendError(f'ONNX Runtime could not load {bundle.onnx_path}: {exc}') from None
        active = self.session.get_providers()
        self.name = f'onnxruntime[{active[0]}]'
        self.precision = 'float16' if active[0] == 'TensorrtExecutionProvider' and fp16 \
            else 'float32'
        self._output = bundle.spec.output_name
        self._input_names = [i.name for i in self.session.get_inputs()]
        self.extra_outputs = tuple(o.name for o in self.session.get_outputs()
                                   if o.name != self._output)

    def run(self, inputs: Arrays) -> npt.NDArray[np.float32]:
        """One forward pass (see `InferenceBackend.run`)."""
        feeds = {name: np.ascontiguousarray(inputs[name], dtype=np.float32)
                 for name in self._input_names}
        (out,) = self.session.run([self._output], feeds)
        return np.asarray(out, dtype=np.float32)

    def run_with(self, inputs: Arrays, extras: tuple[str, ...]
                 ) -> tuple[npt.NDArray[np.float32], dict[str, npt.NDArray[np.float32]]]:
        """The spec's output and the named extra outputs from one pass (`ExtraOutputs`)."""
        feeds = {name: np.ascontiguousarray(inputs[name], dtype=np.float32)
                 for name in self._input_names}
        out, *rest = self.session.run([self._output, *extras], feeds)
        return (np.asarray(out, dtype=np.float32),
                {n: np.asarray(v, dtype=np.float32) for n, v in zip(extras, rest, strict=True)})
