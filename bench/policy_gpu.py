"""Benchmark on a GPU machine: the policy of bench/policy.py (ResNet-18 GN + spatial softmax, 2
views, MLP chunk head) end to end excluding the camera, in every variant the machine can run.

Variants, each measured if possible and otherwise recorded with the reason:
- torch eager float32, torch eager float16 (weights and inputs in half precision),
- CUDA graphs (float32 and float16: the whole forward captured once, replayed per tick),
- TensorRT FP16 (through visuomotor's TensorRT backend, if `tensorrt` is installed),
- ONNX Runtime with the CUDA provider (if onnxruntime-gpu is installed).
End to end = upload of two raw 640x480 rgb8 frames, preprocessing on the GPU (the shared
library's torch twin, identical to deployment's numpy pipeline within 1e-5), the network, and
the chunk back on the host. Medians and p99 over N runs; target: 2 views at 224x224 under
3 ms end to end.

Run on the device machine: python bench/policy_gpu.py [--runs N] [--device cuda]
(`--device cpu` checks the script without a GPU; its numbers mean nothing.)
Writes bench/results/policy_gpu.json and .md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / 'src'))
from policy_models import CAMERAS, HISTORY, JOINTS, architecture_kwargs  # noqa: E402

from visuomotor.training.nets import build_architecture  # noqa: E402

RESULTS = HERE / 'results'


def _sync(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def _time(fn: Callable[[], Any], runs: int, device: str) -> dict[str, float]:
    for _ in range(20):
        fn()
    _sync(device)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        _sync(device)
        samples.append((time.perf_counter() - start) * 1e3)
    return {'median_ms': float(np.median(samples)), 'p99_ms': float(np.percentile(samples, 99)),
            'n': runs}


def _preprocessor(size: int, device: str) -> tuple[Callable[[torch.Tensor], torch.Tensor], str]:
    """GPU preprocessing: the shared library's torch twin, or a plain equivalent if the
    library cannot be imported here (it needs OpenCV for its deployment half)."""
    try:
        from visuomotor.preprocessing import Crop, PreprocessSpec, Resize
        from visuomotor.preprocessing.torch_pipeline import TorchPreprocessor
        spec = PreprocessSpec(input_encoding='rgb8', input_height=480, input_width=640,
                              crop=Crop('center', 480, 480), resize=Resize(size, size, 'area'),
                              mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
        pre = TorchPreprocessor(spec, device=device)
        return (lambda frames: pre(frames, train=False)), 'visuomotor TorchPreprocessor'
    except ImportError as exc:
        mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)

        def plain(frames: torch.Tensor) -> torch.Tensor:
            x = frames[:, :, 80:560].permute(0, 3, 1, 2).float() / 255.0
            x = torch.nn.functional.interpolate(x, size=(size, size), mode='area')
            return (x - mean) / std
        return plain, f'plain torch (visuomotor preprocessing unavailable: {exc})'


def measure(size: int, runs: int, device: str) -> dict[str, Any]:
    """Every variant at one input size."""
    torch.manual_seed(0)
    model = build_architecture('chunk_mlp', architecture_kwargs(size)).to(device).eval()
    rng = np.random.default_rng(0)
    frames_host = torch.from_numpy(rng.integers(0, 256, (len(CAMERAS), 480, 640, 3),
                                                dtype=np.uint8))
    if device.startswith('cuda'):
        frames_host = frames_host.pin_memory()
    proprio = torch.zeros(1, HISTORY, JOINTS, device=device)
    preprocess, pre_name = _preprocessor(size, device)
    out: dict[str, Any] = {'preprocessing': pre_name}

    def inputs(dtype: torch.dtype) -> list[torch.Tensor]:
        frames = frames_host.to(device, non_blocking=True)
        images = preprocess(frames).to(dtype)
        return [images[i:i + 1].unsqueeze(1) for i in range(len(CAMERAS))] + [
            proprio.to(dtype)]

    with torch.inference_mode():
        out['preprocess_only'] = _time(lambda: inputs(torch.float32), runs, device)
        out['eager_float32'] = _time(lambda: model(*inputs(torch.float32)).float().cpu(),
                                     runs, device)
        half = build_architecture('chunk_mlp', architecture_kwargs(size)).to(device).eval()
        half.load_state_dict(model.state_dict())
        half = half.half()
        if device.startswith('cuda'):
            out['eager_float16'] = _time(lambda: half(*inputs(torch.float16)).float().cpu(),
                                         runs, device)
        else:
            out['eager_float16'] = {'skipped': 'float16 convolutions need a GPU'}
    for name, net, dtype in (('cuda_graph_float32', model, torch.float32),
                             ('cuda_graph_float16', half, torch.float16)):
        if not device.startswith('cuda'):
            out[name] = {'skipped': 'CUDA graphs need a GPU'}
            continue
        static_frames = frames_host.to(device)
        with torch.inference_mode():
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    imgs = preprocess(static_frames).to(dtype)
                    net(*[imgs[i:i + 1].unsqueeze(1) for i in range(len(CAMERAS))],
                        proprio.to(dtype))
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                imgs = preprocess(static_frames).to(dtype)
                static_out = net(*[imgs[i:i + 1].unsqueeze(1) for i in range(len(CAMERAS))],
                                 proprio.to(dtype))

            def replay(frames: torch.Tensor = static_frames, g: Any = graph,
                       result: torch.Tensor = static_out) -> np.ndarray:
                frames.copy_(frames_host, non_blocking=True)
                g.replay()
                return result.float().cpu().numpy()
            out[name] = _time(replay, runs, device)
    out['tensorrt_fp16'] = _tensorrt(size, runs, device)
    out['onnxruntime_cuda'] = _onnxruntime_cuda(size, runs)
    return out


def _export(size: int, directory: Path) -> Any:
    """The same bundle bench/policy.py builds (needs the full visuomotor install)."""
    import policy as cpu_bench  # bench/policy.py

    from visuomotor.training.export import export_bundle
    torch.manual_seed(0)
    return export_bundle(build_architecture('chunk_mlp', architecture_kwargs(size)),
                         cpu_bench._spec(size), directory / f'resnet18gn_{size}')


def _tensorrt(size: int, runs: int, device: str) -> dict[str, Any]:
    try:
        import tensorrt  # noqa: F401
    except ImportError as exc:
        return {'skipped': f'tensorrt not installed ({exc})'}
    if not device.startswith('cuda'):
        return {'skipped': 'TensorRT needs a GPU'}
    from visuomotor.policy.backends.tensorrt_backend import TensorRtBackend
    from visuomotor.policy.runtime import Observation, PolicyRuntime
    with tempfile.TemporaryDirectory() as tmp:
        bundle = _export(size, Path(tmp))
        backend = TensorRtBackend(bundle, fp16=True, cache_dir=Path(tmp) / 'engines')
        runtime = PolicyRuntime(bundle, backend)
        rng = np.random.default_rng(0)
        obs = Observation({c: [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)]
                           for c in CAMERAS}, np.zeros((HISTORY, JOINTS)), 1.0)
        result = _time(lambda: runtime(obs), runs, device)
        result['note'] = 'preprocessing on the CPU (numpy pipeline), engine FP16'
        return result


def _onnxruntime_cuda(size: int, runs: int) -> dict[str, Any]:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return {'skipped': f'onnxruntime not installed ({exc})'}
    if 'CUDAExecutionProvider' not in ort.get_available_providers():
        return {'skipped': f'no CUDA provider in this onnxruntime build '
                           f'({ort.get_available_providers()})'}
    from visuomotor.policy.backends.onnxruntime_backend import OnnxRuntimeBackend
    from visuomotor.policy.runtime import Observation, PolicyRuntime
    with tempfile.TemporaryDirectory() as tmp:
        bundle = _export(size, Path(tmp))
        backend = OnnxRuntimeBackend(bundle, providers=('CUDAExecutionProvider',))
        runtime = PolicyRuntime(bundle, backend)
        rng = np.random.default_rng(0)
        obs = Observation({c: [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)]
                           for c in CAMERAS}, np.zeros((HISTORY, JOINTS)), 1.0)
        return _time(lambda: runtime(obs), runs, 'cpu')


def main() -> None:
    """Measure both sizes and write bench/results/policy_gpu.{json,md}."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=200)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--out', type=Path, default=RESULTS)
    args = parser.parse_args()
    gpu = torch.cuda.get_device_name(0) if args.device.startswith('cuda') else 'none (cpu)'
    results: dict[str, Any] = {'date': datetime.date.today().isoformat(),
                               'machine': platform.platform(), 'gpu': gpu,
                               'torch': torch.__version__, 'device': args.device,
                               'runs': args.runs}
    for size in (96, 224):
        results[f'{size}x{size}'] = measure(size, args.runs, args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'policy_gpu.json').write_text(json.dumps(results, indent=1) + '\n')
    (args.out / 'policy_gpu.md').write_text(render(results))
    print(render(results))  # noqa: T201


def render(results: dict[str, Any]) -> str:
    """The Markdown report."""
    lines = ['# Policy runtime on a GPU', '',
             f"{results['date']}, {results['gpu']}, torch {results['torch']}, "
             f"{results['runs']} runs. End to end excluding the camera: two raw 640x480 "
             'frames uploaded, preprocessed on the device, the network, the chunk on the host. '
             'Target: 224x224 under 3 ms.', '',
             '| input | variant | median ms | p99 ms |', '|---|---|---|---|']
    for size in ('96x96', '224x224'):
        for name, value in results[size].items():
            if not isinstance(value, dict):
                continue
            if 'skipped' in value:
                lines.append(f'| {size} | {name} | skipped: {value["skipped"]} | |')
            else:
                lines.append(f"| {size} | {name} | {value['median_ms']:.2f} | "
                             f"{value['p99_ms']:.2f} |")
    lines += ['', f"Preprocessing: {results['224x224']['preprocessing']}.", '']
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
