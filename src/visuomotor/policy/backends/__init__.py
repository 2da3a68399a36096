"""Inference backends behind one interface, chosen by an ordered preference with fallback.

`open_backend(bundle, ['tensorrt', 'onnxruntime', 'torch'])` tries each in turn, logs why a
backend was skipped and which one was chosen, then runs the bundle's golden inputs through it
(a mismatch beyond the spec's tolerance refuses to start: no fallback past a wrong answer) and
warms it up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visuomotor.policy.backends.base import InferenceBackend
from visuomotor.policy.bundle import PolicyBundle
from visuomotor.policy.errors import BackendError

log = logging.getLogger(__name__)

BACKENDS = ('tensorrt', 'onnxruntime', 'torch')


@dataclass(frozen=True)
class BackendOptions:
    """Settings the backends share (node parameters)."""

    fp16: bool = True
    threads: int = 0
    torch_device: str = 'cpu'
    onnxruntime_providers: tuple[str, ...] = ()
    cache_dir: Path | None = None
    warmup_runs: int = 5


@dataclass(frozen=True)
class GoldenCheck:
    """How the chosen backend reproduced the bundle's golden outputs."""

    max_abs_error: float
    worst_excess: float
    atol: float
    rtol: float


@dataclass
class BackendReport:
    """What `open_backend` tried and found."""

    chosen: str = ''
    skipped: list[tuple[str, str]] = field(default_factory=list)
    golden: GoldenCheck | None = None
    warmup_ms: list[float] = field(default_factory=list)


def _factory(kind: str, options: BackendOptions
             ) -> Callable[[PolicyBundle], InferenceBackend]:
    if kind == 'tensorrt':
        from visuomotor.policy.backends.tensorrt_backend import TensorRtBackend
        return lambda b: TensorRtBackend(b, fp16=options.fp16, cache_dir=options.cache_dir)
    if kind == 'onnxruntime':
        from visuomotor.policy.backends.onnxruntime_backend import (
            DEFAULT_PROVIDERS,
            OnnxRuntimeBackend,
        )
        providers = options.onnxruntime_providers or DEFAULT_PROVIDERS
        return lambda b: OnnxRuntimeBackend(b, providers=providers, threads=options.threads,
                                            fp16=options.fp16, cache_dir=options.cache_dir)
    if kind == 'torch':
        from visuomotor.policy.backends.torch_backend import TorchBackend
        return lambda b: TorchBackend(b, device=options.torch_device, threads=options.threads)
    raise BackendError(f'unknown backend {kind!r}; choose from {list(BACKENDS)}')


def check_golden(bundle: PolicyBundle, backend: InferenceBackend) -> GoldenCheck:
    """Run the golden inputs; raise if any output element is beyond the spec's tolerance."""
    spec = bundle.spec
    tol = spec.tolerance_float16 if backend.precision == 'float16' else spec.tolerance_float32
    expected = bundle.golden_outputs[spec.output_name].astype(np.float64)
    got = backend.run(bundle.golden_inputs).astype(np.float64)
    if got.shape != expected.shape:
        raise BackendError(f'{backend.name} returned {spec.output_name} of shape '
                           f'{list(got.shape)}, the golden output is {list(expected.shape)}')
    error = np.abs(got - expected)
    allowed = tol.atol + tol.rtol * np.abs(expected)
    excess = np.where(np.isfinite(error), error - allowed, np.inf)
    worst = int(np.argmax(excess))
    result = GoldenCheck(float(np.max(np.where(np.isfinite(error), error, np.inf))),
                         float(excess.flat[worst]), tol.atol, tol.rtol)
    if result.worst_excess > 0.0:
        index = np.unravel_index(worst, expected.shape)
        raise BackendError(
            f'{backend.name} does not reproduce the golden outputs of {bundle.directory}: '
            f'{spec.output_name}{[int(i) for i in index]} = {got[index]:.6g}, expected '
            f'{expected[index]:.6g} (|error| {error[index]:.3g} > {allowed[index]:.3g} = atol '
            f'{tol.atol:g} + rtol {tol.rtol:g} x |expected|, {backend.precision}); refusing '
            'to start. Re-export the bundle, or check the backend/driver versions')
    return result


def open_backend(bundle: PolicyBundle, order: Sequence[str] = BACKENDS,
                 options: BackendOptions | None = None) -> tuple[InferenceBackend, BackendReport]:
    """The first backend in `order` that loads, checked against the golden I/O and warm.

    Raises:
        BackendError: none loaded (each reason is listed), or the chosen one failed the
            golden check.
    """
    opts = options or BackendOptions()
    unknown = [kind for kind in order if kind not in BACKENDS]
    if unknown or not order:
        name = unknown[0] if unknown else ''
        raise BackendError(f'unknown backend {name!r} in {list(order)}; choose from '
                           f'{list(BACKENDS)}')
    report = BackendReport()
    backend: InferenceBackend | None = None
    for kind in order:
        try:
            backend = _factory(kind, opts)(bundle)
            break
        except BackendError as exc:
            report.skipped.append((kind, str(exc)))
            log.info('policy backend %s skipped: %s', kind, exc)
        except Exception as exc:  # noqa: BLE001 - any failure to load falls back, with why
            reason = f'{type(exc).__name__}: {exc}'
            report.skipped.append((kind, reason))
            log.warning('policy backend %s failed to load (%s); trying the next', kind, reason)
    if backend is None:
        reasons = '; '.join(f'{k}: {r}' for k, r in report.skipped)
        raise BackendError(f'no inference backend could load {bundle.directory} ({reasons})')
    report.chosen = backend.name
    log.info('policy backend: %s (precision %s)', backend.name, backend.precision)
    report.golden = check_golden(bundle, backend)
    for _ in range(opts.warmup_runs):
        start = time.perf_counter()
        backend.run(bundle.golden_inputs)
        report.warmup_ms.append((time.perf_counter() - start) * 1e3)
    return backend, report
