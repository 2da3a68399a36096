"""TensorRT backend: an FP16 engine built from the bundle's ONNX, cached on disk.

Written against the TensorRT 10 Python API (name-based tensors, `execute_async_v3`,
`build_serialized_network`; NVIDIA's "Migrating Python Code from TensorRT 8.x to 10.x").
Device buffers are torch CUDA tensors (no pycuda needed).

The engine cache key is the ONNX file's SHA-256, the GPU (name and compute capability), the
TensorRT version and the precision: a new model, GPU or TensorRT rebuilds; anything else
reuses the engine (Isaac ROS rebuilds at every launch by default: `force_engine_update`). A
timing cache per GPU and TensorRT version makes rebuilds of similar models fast.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.policy.backends.base import Arrays
from visuomotor.policy.bundle import PolicyBundle
from visuomotor.policy.errors import BackendError

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """Where engines and timing caches are kept ($VISUOMOTOR_TENSORRT_CACHE, e.g. a volume)."""
    configured = os.environ.get('VISUOMOTOR_TENSORRT_CACHE')
    return Path(configured) if configured else Path.home() / '.cache' / 'visuomotor' / 'tensorrt'


def engine_key(onnx_sha256: str, gpu: str, capability: tuple[int, int], trt_version: str,
               precision: str) -> str:
    """The cache file stem for one model on one GPU with one TensorRT version."""
    gpu_slug = re.sub(r'[^A-Za-z0-9]+', '-', gpu).strip('-').lower()
    return (f'{onnx_sha256[:16]}_{gpu_slug}_sm{capability[0]}{capability[1]}_'
            f'trt{trt_version}_{precision}')


class TensorRtBackend:
    """A deserialized TensorRT engine with one execution context and static buffers."""

    def __init__(self, bundle: PolicyBundle, *, fp16: bool = True,
                 cache_dir: Path | None = None, workspace_bytes: int = 1 << 30) -> None:
        try:
            import tensorrt as trt
            import torch
        except ImportError as exc:
            raise BackendError(f'TensorRT backend unavailable ({exc}); install tensorrt and a '
                               'CUDA build of torch on the robot PC') from None
        if not torch.cuda.is_available():
            raise BackendError('TensorRT backend needs a CUDA GPU; none is visible')
        self._trt, self._torch = trt, torch
        self.precision = 'float16' if fp16 else 'float32'
        gpu = torch.cuda.get_device_name(0)
        capability = torch.cuda.get_device_capability(0)
        cache = cache_dir or default_cache_dir()
        cache.mkdir(parents=True, exist_ok=True)
        key = engine_key(bundle.onnx_sha256, gpu, capability, trt.__version__, self.precision)
        engine_path = cache / f'{key}.engine'
        timing_path = cache / f'timing_{key.split("_", 1)[1].rsplit("_", 1)[0]}.cache'
        self._logger = trt.Logger(trt.Logger.WARNING)
        if engine_path.is_file():
            log.info('TensorRT: reusing engine %s', engine_path)
            serialized = engine_path.read_bytes()
        else:
            log.info('TensorRT: building %s engine for %s (first run on this GPU/TensorRT; '
                     'cached at %s)', self.precision, gpu, engine_path)
            serialized = self._build(bundle, fp16, timing_path, workspace_bytes)
            partial = engine_path.with_suffix('.partial')
            partial.write_bytes(serialized)
            os.replace(partial, engine_path)  # never a truncated engine under the real name
        runtime = trt.Runtime(self._logger)
        self.engine = runtime.deserialize_cuda_engine(serialized)
        if self.engine is None:
            raise BackendError(f'TensorRT could not deserialize {engine_path}; delete it to '
                               'rebuild')
        self.context = self.engine.create_execution_context()
        self._stream = torch.cuda.Stream()  # type: ignore[no-untyped-call]
        self._buffers: dict[str, Any] = {}
        self._inputs: list[str] = []
        self._output = bundle.spec.output_name
        shapes = bundle.spec.input_shapes()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        for name in names:  # every input shape first: output shapes depend on them
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                if not self.context.set_input_shape(name, shapes[name]):
                    raise BackendError(f'TensorRT refused input {name!r} of shape '
                                       f'{list(shapes[name])}')
                self._inputs.append(name)
        for name in names:
            dtype = getattr(torch, np.dtype(trt.nptype(self.engine.get_tensor_dtype(name))).name)
            shape = (shapes[name] if name in self._inputs
                     else tuple(self.context.get_tensor_shape(name)))
            self._buffers[name] = torch.empty(shape, dtype=dtype, device='cuda')
            self.context.set_tensor_address(name, self._buffers[name].data_ptr())
        self.extra_outputs = tuple(n for n in names
                                   if n not in self._inputs and n != self._output)
        self.name = f'tensorrt[{trt.__version__}, {gpu}, {self.precision}]'

    def _build(self, bundle: PolicyBundle, fp16: bool, timing_path: Path,
               workspace_bytes: int) -> bytes:
        trt = self._trt
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(bundle.onnx_bytes):
            errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BackendError(f'TensorRT could not parse {bundle.onnx_path}: {errors}')
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
        if fp16:
            config.set_flag(trt.BuilderFlag.FP16)
        timing = config.create_timing_cache(timing_path.read_bytes()
                                            if timing_path.is_file() else b'')
        config.set_timing_cache(timing, ignore_mismatch=False)
        profile = builder.create_optimization_profile()
        for name, shape in bundle.spec.input_shapes().items():
            profile.set_shape(name, shape, shape, shape)  # batch 1: one observation per tick
        config.add_optimization_profile(profile)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BackendError(f'TensorRT failed to build an engine for {bundle.onnx_path} '
                               '(see the TensorRT log above)')
        timing_path.write_bytes(bytes(config.get_timing_cache().serialize()))
        return bytes(serialized)

    def run(self, inputs: Arrays) -> npt.NDArray[np.float32]:
        """One forward pass (see `InferenceBackend.run`)."""
        return self.run_with(inputs, ())[0]

    def run_with(self, inputs: Arrays, extras: tuple[str, ...]
                 ) -> tuple[npt.NDArray[np.float32], dict[str, npt.NDArray[np.float32]]]:
        """The spec's output and the named extra outputs from one pass (`ExtraOutputs`)."""
        torch = self._torch
        with torch.cuda.stream(self._stream):
            for name in self._inputs:
                buffer = self._buffers[name]
                buffer.copy_(torch.from_numpy(np.ascontiguousarray(inputs[name])),
                             non_blocking=False)
            if not self.context.execute_async_v3(self._stream.cuda_stream):
                raise BackendError('TensorRT execution failed (see the TensorRT log)')
            outs = [self._buffers[n].float().cpu() for n in (self._output, *extras)]
        self._stream.synchronize()
        out, *rest = (np.asarray(o.numpy(), dtype=np.float32) for o in outs)
        return out, dict(zip(extras, rest, strict=True))
