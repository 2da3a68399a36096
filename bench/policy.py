"""Benchmark: the policy runtime per stage on CPU, ONNX Runtime vs PyTorch eager; and how
smooth the chunk scheduler's command stream is across chunk boundaries.

Measured:
- per stage (median, p99 ms over N inferences): preprocess (two raw 640x480 rgb8 frames ->
  centre crop, area resize to S x S, ImageNet normalisation, the shared numpy pipeline),
  inference (the backend), postprocess (de-normalisation into joint targets), and the total;
  for a ResNet-18 (GroupNorm, spatial softmax) encoder per camera, 2 views, S = 96 and 224,
  and an MLP chunk head (bench/policy_models.py), on ONNX Runtime (CPU provider) and PyTorch
  eager, both with the same thread count. Target: ONNX Runtime >= 1.3x faster than PyTorch.
  Also the largest |ONNX Runtime - PyTorch| action difference on the same observation.
- smoothness: a simulated 10 Hz policy whose successive chunks disagree (a random offset per
  chunk, as real predictions do) with 0.15 s inference latency, executed through the chunk
  scheduler and interpolated at the bridge's 100 Hz: the largest joint acceleration of the
  command stream, overall and at chunk switches, for receding horizon (with and without
  blending) and temporal ensembling. The true trajectory's own peak acceleration is given
  for scale.

Run: make bench   (or: python bench/policy.py [--runs N] [--threads T])
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from policy_models import ACTION_DIM, CAMERAS, CHUNK, HISTORY, JOINTS, architecture_kwargs  # noqa: E402

from visuomotor.policy.backends import check_golden  # noqa: E402
from visuomotor.policy.backends.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402
from visuomotor.policy.backends.torch_backend import TorchBackend  # noqa: E402
from visuomotor.policy.chunking import ChunkScheduler, SchedulerConfig  # noqa: E402
from visuomotor.policy.runtime import ActionChunk, Observation, PolicyRuntime  # noqa: E402
from visuomotor.policy.spec import (  # noqa: E402
    ActionSpec,
    Architecture,
    CameraInput,
    Normalisation,
    PolicySpec,
    ProprioSpec,
)
from visuomotor.preprocessing import Crop, PreprocessSpec, Resize  # noqa: E402
from visuomotor.training.export import export_bundle  # noqa: E402
from visuomotor.training.nets import build_architecture  # noqa: E402

RESULTS = Path(__file__).resolve().parent / 'results'
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _spec(size: int) -> PolicySpec:
    pre = PreprocessSpec(input_encoding='rgb8', input_height=480, input_width=640,
                         crop=Crop('center', 480, 480), resize=Resize(size, size, 'area'),
                         mean=IMAGENET_MEAN, std=IMAGENET_STD)
    joints = tuple(f'fr3_joint{i + 1}' for i in range(JOINTS))
    return PolicySpec(
        name=f'bench-resnet18gn-{size}', cameras=tuple(CameraInput(c, pre) for c in CAMERAS),
        observation_history=HISTORY,
        proprio=ProprioSpec(joints, Normalisation((0.0,) * JOINTS, (1.0,) * JOINTS)),
        action=ActionSpec('joint_position', joints, True,
                          Normalisation((0.0,) * ACTION_DIM, (1.0,) * ACTION_DIM)),
        chunk_length=CHUNK, control_rate_hz=10.0,
        architecture=Architecture('chunk_mlp', architecture_kwargs(size)))


def _stats(samples: list[float]) -> dict[str, float]:
    return {'median_ms': float(np.median(samples)), 'p99_ms': float(np.percentile(samples, 99)),
            'n': len(samples)}


def runtime_stages(size: int, runs: int, threads: int, workdir: Path) -> dict[str, Any]:
    """Per-stage latency of both backends on the same bundle and observation."""
    torch.manual_seed(0)
    spec = _spec(size)
    bundle = export_bundle(build_architecture('chunk_mlp', architecture_kwargs(size)), spec,
                           workdir / f'resnet18gn_{size}')
    rng = np.random.default_rng(0)
    obs = Observation({c: [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)]
                       for c in CAMERAS}, np.zeros((HISTORY, JOINTS)), 1.0)
    out: dict[str, Any] = {}
    chunks = {}
    backends = {'onnxruntime': OnnxRuntimeBackend(bundle, providers=('CPUExecutionProvider',),
                                                  threads=threads),
                'torch_eager': TorchBackend(bundle, threads=threads)}
    for name, backend in backends.items():
        check_golden(bundle, backend)
        runtime = PolicyRuntime(bundle, backend)
        for _ in range(10):
            runtime(obs)
        stages: dict[str, list[float]] = {'preprocess': [], 'inference': [], 'postprocess': [],
                                          'total': []}
        for _ in range(runs):
            chunks[name] = runtime(obs)
            t = runtime.last_times
            stages['preprocess'].append(t.preprocess_ms)
            stages['inference'].append(t.inference_ms)
            stages['postprocess'].append(t.postprocess_ms)
            stages['total'].append(t.preprocess_ms + t.inference_ms + t.postprocess_ms)
        out[name] = {stage: _stats(values) for stage, values in stages.items()}
    out['speedup_inference'] = (out['torch_eager']['inference']['median_ms']
                                / out['onnxruntime']['inference']['median_ms'])
    out['speedup_total'] = (out['torch_eager']['total']['median_ms']
                            / out['onnxruntime']['total']['median_ms'])
    out['max_action_difference'] = float(np.abs(chunks['onnxruntime'].positions
                                                - chunks['torch_eager'].positions).max())
    return out


# -- smoothness of the command stream ---------------------------------------------------------


def _truth(t: np.ndarray) -> np.ndarray:
    phases = np.arange(JOINTS)[None, :] * 0.4
    return 0.3 * np.sin(2 * math.pi * 0.25 * t[:, None] + phases)


def smoothness(mode: str, blend_s: float, seconds: float = 30.0, latency_s: float = 0.15,
               offset_rad: float = 0.01, seed: int = 0) -> dict[str, float]:
    """Peak joint acceleration of the 100 Hz command stream under one scheduler setting."""
    period, bridge_dt, camera_latency = 0.1, 0.01, 0.03
    config = SchedulerConfig(mode=mode, execute_steps=8, blend_s=blend_s, max_age_s=CHUNK * period)
    scheduler = ChunkScheduler(config, period, CHUNK)
    rng = np.random.default_rng(seed)
    pending: list[tuple[float, ActionChunk]] = []
    plan = None
    commands, switches = [], []
    in_flight = switched = False
    steps = int(seconds / bridge_dt)
    last = _truth(np.array([0.0]))[0]
    for k in range(steps):
        now = k * bridge_dt
        for ready, chunk in [p for p in pending if p[0] <= now + 1e-9]:
            pending.remove((ready, chunk))
            scheduler.add(chunk, now)
            in_flight = False
            switched = True
        if k % int(round(period / bridge_dt)) == 0:
            if not in_flight and scheduler.inference_due(now, latency_s):
                stamp = now - camera_latency
                rows = _truth(stamp + period * np.arange(CHUNK))
                rows = rows + rng.normal(0.0, offset_rad, (1, JOINTS))
                pending.append((now + latency_s, ActionChunk(stamp, period, rows)))
                in_flight = True
            plan = scheduler.plan(now)
            if switched:  # the new chunk reaches the command stream with this plan
                switches.append(len(commands))
                switched = False
        if plan is not None:
            times = plan.times
            positions = plan.positions
            if now >= times[0] - 1e-9:
                last = np.array([np.interp(now, times, positions[:, j]) for j in range(JOINTS)])
        commands.append(last)
    q = np.array(commands)
    accel = np.abs(np.diff(q, 2, axis=0)) / bridge_dt ** 2
    warm = int(2.0 / bridge_dt)
    near = sorted({i + d for i in switches if i > warm for d in range(-2, 3)
                   if 0 <= i + d < len(accel)})
    truth_peak = 0.3 * (2 * math.pi * 0.25) ** 2
    return {'max_accel_rad_s2': float(accel[warm:].max()),
            'max_accel_at_switches_rad_s2': float(accel[near].max()) if near else 0.0,
            'max_accel_elsewhere_rad_s2': float(np.delete(accel, near, axis=0)[warm:].max()),
            'truth_peak_accel_rad_s2': truth_peak, 'chunks': len(switches)}


def main() -> None:
    """Run both benchmarks and write bench/results/policy.{json,md}."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=100)
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    results: dict[str, Any] = {
        'date': datetime.date.today().isoformat(), 'machine': platform.platform(),
        'cpus': os.cpu_count(), 'threads': args.threads, 'torch': torch.__version__,
        'views': len(CAMERAS), 'history': HISTORY, 'chunk': CHUNK, 'runs': args.runs}
    with tempfile.TemporaryDirectory() as tmp:
        for size in (96, 224):
            results[f'{size}x{size}'] = runtime_stages(size, args.runs, args.threads, Path(tmp))
    results['smoothness'] = {
        'receding_horizon (execute 8 of 16)': smoothness('receding_horizon', 0.0),
        'receding_horizon + blend 0.3 s': smoothness('receding_horizon', 0.3),
        'temporal_ensemble (k = 0.01)': smoothness('temporal_ensemble', 0.0),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'policy.json').write_text(json.dumps(results, indent=1) + '\n')
    (RESULTS / 'policy.md').write_text(render(results))
    print(render(results))  # noqa: T201


def render(results: dict[str, Any]) -> str:
    """The Markdown report."""
    lines = ['# Policy runtime benchmark', '',
             f"{results['date']}, {results['machine']}, {results['cpus']} CPUs, "
             f"{results['threads']} threads, torch {results['torch']}", '',
             f"ResNet-18 (GroupNorm, spatial softmax 32 keypoints) per camera, "
             f"{results['views']} views, history {results['history']}, MLP head, chunk "
             f"{results['chunk']} x 8; raw frames 640x480 rgb8; {results['runs']} runs. "
             'Target: ONNX Runtime >= 1.3x faster than PyTorch eager.', '',
             '| input | backend | preprocess ms | inference ms (p99) | postprocess ms | '
             'total ms (p99) |', '|---|---|---|---|---|---|']
    for size in ('96x96', '224x224'):
        block = results[size]
        for backend in ('onnxruntime', 'torch_eager'):
            s = block[backend]
            lines.append(
                f"| {size} | {backend} | {s['preprocess']['median_ms']:.2f} | "
                f"{s['inference']['median_ms']:.1f} ({s['inference']['p99_ms']:.1f}) | "
                f"{s['postprocess']['median_ms']:.3f} | {s['total']['median_ms']:.1f} "
                f"({s['total']['p99_ms']:.1f}) |")
        lines.append(f"| {size} | **speed-up** | | **{block['speedup_inference']:.2f}x** | | "
                     f"**{block['speedup_total']:.2f}x** |")
    lines += ['', 'Largest |ONNX Runtime - PyTorch| joint target on the same observation: '
              + ', '.join(f"{s} {results[s]['max_action_difference']:.1e} rad"
                          for s in ('96x96', '224x224')), '',
              '## Command smoothness across chunk boundaries', '',
              'A 10 Hz policy whose chunks each carry a random 0.01 rad offset (successive '
              'predictions disagree), 0.15 s inference latency, 30 s, commands interpolated at '
              '100 Hz.', '',
              '| scheduler | max accel (rad/s^2) | at chunk switches | elsewhere | chunks |',
              '|---|---|---|---|---|']
    for name, s in results['smoothness'].items():
        lines.append(f"| {name} | {s['max_accel_rad_s2']:.2f} | "
                     f"{s['max_accel_at_switches_rad_s2']:.2f} | "
                     f"{s['max_accel_elsewhere_rad_s2']:.2f} | {s['chunks']} |")
    truth = next(iter(results['smoothness'].values()))['truth_peak_accel_rad_s2']
    lines += ['', f'The true trajectory peaks at {truth:.2f} rad/s^2.', '']
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
