"""Inference backends, their golden check and fallback, the policy runtime and DDIM sampling.

What a user deploying a bundle checks: PyTorch and ONNX Runtime give the same actions on
inputs other than the golden ones (for both heads and both encoders); an unavailable backend
is skipped with its reason and the next one is used; a backend that does not reproduce the
golden outputs refuses to start (float16 engines get the looser tolerance); warm-up runs
happen; the runtime turns raw frames into a time-stamped chunk of joint targets and refuses
wrong frames, histories and non-finite outputs; DDIM recovers a known clean sample.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import pytest
from policy_helpers import (
    CHUNK,
    CPU_OPTIONS,
    CPU_PROVIDERS,
    FR3_JOINTS,
    HISTORY,
    RATE_HZ,
    FakeBackend,
    export,
    make_spec,
    observation,
    random_inputs,
)

from visuomotor.policy.backends import BACKENDS, BackendOptions, check_golden, open_backend
from visuomotor.policy.backends.onnxruntime_backend import OnnxRuntimeBackend
from visuomotor.policy.backends.torch_backend import TorchBackend
from visuomotor.policy.bundle import PolicyBundle, write_bundle
from visuomotor.policy.denoising import (
    alphas_cumprod,
    ddim_sample,
    inference_timesteps,
)
from visuomotor.policy.errors import BackendError, BundleMismatchError
from visuomotor.policy.runtime import PolicyRuntime
from visuomotor.policy.spec import ActionSpec, DenoisingScheduler, Normalisation
from visuomotor.preprocessing import FrameMismatchError

pytestmark = [
    pytest.mark.filterwarnings('ignore:You are using the legacy TorchScript:DeprecationWarning'),
    pytest.mark.filterwarnings('ignore:The feature will be removed:DeprecationWarning'),
    pytest.mark.filterwarnings('ignore:Converting a tensor to a Python boolean'),
]

TENSORRT_INSTALLED = importlib.util.find_spec('tensorrt') is not None
no_tensorrt = pytest.mark.skipif(TENSORRT_INSTALLED, reason='tensorrt is installed here, so '
                                 'open_backend does not fall back past it')

PROPRIO_STATS = Normalisation(tuple(0.1 * i - 0.3 for i in range(7)),
                              tuple(0.4 + 0.1 * i for i in range(7)))
ACTION_STATS = Normalisation(tuple(0.2 * i - 0.5 for i in range(8)),
                             tuple(0.05 + 0.05 * i for i in range(8)))


@pytest.fixture(scope='module')
def chunk_bundle(tmp_path_factory: pytest.TempPathFactory) -> PolicyBundle:
    spec = make_spec(proprio_stats=PROPRIO_STATS, action_stats=ACTION_STATS)
    return export(spec, tmp_path_factory.mktemp('chunk'))


@pytest.fixture(scope='module')
def denoising_bundle(tmp_path_factory: pytest.TempPathFactory) -> PolicyBundle:
    spec = make_spec(family='denoising', proprio_stats=PROPRIO_STATS,
                     action_stats=ACTION_STATS)
    return export(spec, tmp_path_factory.mktemp('denoising'), seed=1)


@pytest.fixture(scope='module')
def resnet_bundle(tmp_path_factory: pytest.TempPathFactory) -> PolicyBundle:
    # 64x64: at 32x32 the ResNet trunk ends at 1x1, where the spatial softmax is constant and
    # the images would not reach the output at all
    spec = make_spec(encoder='resnet18_gn', encoder_kwargs={'num_keypoints': 8}, size=64,
                     cameras=('scene',))
    return export(spec, tmp_path_factory.mktemp('resnet'), seed=2)


@pytest.fixture(scope='module')
def delta_bundle(tmp_path_factory: pytest.TempPathFactory) -> PolicyBundle:
    stats = Normalisation(tuple(0.01 * i for i in range(7)), tuple(0.02 + 0.01 * i
                                                                  for i in range(7)))
    spec = make_spec(kind='joint_delta', gripper=False, action_stats=stats)
    return export(spec, tmp_path_factory.mktemp('delta'), seed=3)


@pytest.fixture(scope='module')
def ort(chunk_bundle: PolicyBundle) -> OnnxRuntimeBackend:
    return OnnxRuntimeBackend(chunk_bundle, providers=CPU_PROVIDERS)


def rewritten(bundle: PolicyBundle, directory: Path, **changes: Any) -> PolicyBundle:
    """The same network rewritten with a changed spec, golden I/O or weights."""
    args: dict[str, Any] = {'spec': bundle.spec, 'golden_inputs': bundle.golden_inputs,
                            'golden_outputs': bundle.golden_outputs, 'weights': None}
    args.update(changes)
    return write_bundle(directory, onnx.load_model(str(bundle.onnx_path)), **args)


# -- parity ------------------------------------------------------------------------------------


@pytest.mark.parametrize('name', ['chunk_bundle', 'denoising_bundle', 'resnet_bundle'])
def test_torch_and_onnxruntime_agree_on_random_inputs(
        name: str, request: pytest.FixtureRequest) -> None:
    bundle: PolicyBundle = request.getfixturevalue(name)
    onnx_backend = OnnxRuntimeBackend(bundle, providers=CPU_PROVIDERS)
    torch_backend = TorchBackend(bundle)
    outputs = []
    for seed in range(3):
        inputs = random_inputs(bundle.spec, seed)
        got = onnx_backend.run(inputs)
        want = torch_backend.run(inputs)
        assert got.dtype == want.dtype == np.float32
        assert got.shape == want.shape == bundle.spec.output_shape()
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3)
        outputs.append(got)
    assert not np.allclose(outputs[0], outputs[1], atol=1e-4)  # the inputs reach the output
    # the images alone change the output too (the encoder is part of what is compared)
    inputs = random_inputs(bundle.spec, 0)
    camera = f'image.{bundle.spec.camera_names[0]}'
    inputs[camera] = 1.0 - inputs[camera]
    changed = onnx_backend.run(inputs)
    assert not np.allclose(changed, outputs[0], atol=1e-5)
    np.testing.assert_allclose(changed, torch_backend.run(inputs), atol=1e-4, rtol=1e-3)


def test_backends_agree_on_a_batch(denoising_bundle: PolicyBundle) -> None:
    inputs = random_inputs(denoising_bundle.spec, 7, batch=3)
    got = OnnxRuntimeBackend(denoising_bundle, providers=CPU_PROVIDERS).run(inputs)
    want = TorchBackend(denoising_bundle).run(inputs)
    assert got.shape == (3, CHUNK, 8)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3)


# -- open_backend: fallback --------------------------------------------------------------------


@no_tensorrt
def test_missing_tensorrt_is_skipped_with_its_reason(chunk_bundle: PolicyBundle) -> None:
    backend, report = open_backend(chunk_bundle, ['tensorrt', 'onnxruntime'], CPU_OPTIONS)
    assert report.chosen == backend.name == 'onnxruntime[CPUExecutionProvider]'
    assert backend.precision == 'float32'
    assert [kind for kind, _ in report.skipped] == ['tensorrt']
    assert 'tensorrt' in report.skipped[0][1].lower()
    assert report.golden is not None
    assert report.golden.worst_excess <= 0.0
    assert report.golden.max_abs_error < report.golden.atol
    assert (report.golden.atol, report.golden.rtol) == (1e-4, 1e-3)


@no_tensorrt
def test_no_loadable_backend_lists_every_reason(chunk_bundle: PolicyBundle) -> None:
    with pytest.raises(BackendError) as error:
        open_backend(chunk_bundle, ['tensorrt'], CPU_OPTIONS)
    message = str(error.value)
    assert 'no inference backend could load' in message
    assert str(chunk_bundle.directory) in message
    assert 'tensorrt: TensorRT backend unavailable' in message


def test_unknown_backend_lists_the_valid_names(chunk_bundle: PolicyBundle) -> None:
    with pytest.raises(BackendError) as error:
        open_backend(chunk_bundle, ['onnxrutime'], CPU_OPTIONS)
    assert "unknown backend 'onnxrutime'" in str(error.value)
    assert str(list(BACKENDS)) in str(error.value)


def test_torch_backend_without_architecture_falls_back(
        chunk_bundle: PolicyBundle, tmp_path: Path) -> None:
    no_arch = rewritten(chunk_bundle, tmp_path / 'no_arch',
                        spec=dataclasses.replace(chunk_bundle.spec, architecture=None))
    backend, report = open_backend(no_arch, ['torch', 'onnxruntime'], CPU_OPTIONS)
    assert report.chosen == backend.name == 'onnxruntime[CPUExecutionProvider]'
    assert report.skipped[0][0] == 'torch'
    assert 'names no torch architecture' in report.skipped[0][1]
    # the architecture without its weights file: skipped, naming the file
    no_weights = rewritten(chunk_bundle, tmp_path / 'no_weights')
    assert no_weights.weights_path is None
    _, report = open_backend(no_weights, ['torch', 'onnxruntime'], CPU_OPTIONS)
    assert report.skipped[0][0] == 'torch'
    assert 'torch_weights.npz' in report.skipped[0][1]


def test_torch_backend_with_weights_passes_the_golden_check(chunk_bundle: PolicyBundle) -> None:
    backend, report = open_backend(chunk_bundle, ['torch', 'onnxruntime'], CPU_OPTIONS)
    assert report.chosen == backend.name == 'torch[cpu]'
    assert report.skipped == []
    assert report.golden is not None and report.golden.max_abs_error < 1e-6


def test_torch_backend_with_weights_of_another_shape_is_skipped(
        chunk_bundle: PolicyBundle, tmp_path: Path) -> None:
    wrong = rewritten(chunk_bundle, tmp_path, weights={'head.0.weight': np.zeros((2, 2))})
    _, report = open_backend(wrong, ['torch', 'onnxruntime'], CPU_OPTIONS)
    assert report.skipped[0][0] == 'torch'
    assert 'cannot rebuild chunk_mlp' in report.skipped[0][1]


def test_torch_backend_with_a_corrupt_weights_file_falls_back(
        chunk_bundle: PolicyBundle, tmp_path: Path) -> None:
    corrupt = rewritten(chunk_bundle, tmp_path, weights={'w': np.ones((64, 64), np.float32)})
    assert corrupt.weights_path is not None
    corrupt.weights_path.write_bytes(corrupt.weights_path.read_bytes()[:200])
    _, report = open_backend(corrupt, ['torch', 'onnxruntime'], CPU_OPTIONS)
    assert report.chosen == 'onnxruntime[CPUExecutionProvider]'
    assert report.skipped[0][0] == 'torch'


# -- golden check ------------------------------------------------------------------------------


def tampered(bundle: PolicyBundle, directory: Path) -> PolicyBundle:
    name = bundle.spec.output_name
    return rewritten(bundle, directory,
                     golden_outputs={name: bundle.golden_outputs[name] * np.float32(1.1)})


def test_backend_that_misses_the_golden_outputs_refuses_to_start(
        chunk_bundle: PolicyBundle, tmp_path: Path) -> None:
    bad = tampered(chunk_bundle, tmp_path)
    with pytest.raises(BackendError) as error:
        open_backend(bad, ['onnxruntime', 'torch'], CPU_OPTIONS)  # no fallback past it
    message = str(error.value)
    assert 'does not reproduce the golden outputs' in message
    assert 'onnxruntime[CPUExecutionProvider]' in message and str(tmp_path) in message
    assert 'action[' in message and 'float32' in message


def test_golden_mismatch_names_the_worst_index(
        chunk_bundle: PolicyBundle, ort: OnnxRuntimeBackend, tmp_path: Path) -> None:
    bad = tampered(chunk_bundle, tmp_path)
    expected = bad.golden_outputs['action'].astype(np.float64)
    got = ort.run(bad.golden_inputs).astype(np.float64)
    excess = np.abs(got - expected) - (1e-4 + 1e-3 * np.abs(expected))
    index = [int(i) for i in np.unravel_index(int(np.argmax(excess)), expected.shape)]
    with pytest.raises(BackendError) as error:
        check_golden(bad, ort)
    assert f'action{index}' in str(error.value)


def test_float16_backend_gets_the_looser_tolerance(
        chunk_bundle: PolicyBundle, ort: OnnxRuntimeBackend) -> None:
    golden = chunk_bundle.golden_outputs['action']
    assert np.abs(golden).min() < 0.5  # an offset of 1e-3 exceeds the float32 tolerance there
    half = FakeBackend(ort, precision='float16', offset=1e-3)
    result = check_golden(chunk_bundle, half)
    assert (result.atol, result.rtol) == (2e-2, 2e-2)
    assert result.max_abs_error == pytest.approx(1e-3, rel=1e-2)
    full = FakeBackend(ort, precision='float32', offset=1e-3, name='fake32')
    with pytest.raises(BackendError) as error:
        check_golden(chunk_bundle, full)
    assert 'fake32 does not reproduce the golden outputs' in str(error.value)
    assert 'float32' in str(error.value)
    # and float16 is not a free pass
    with pytest.raises(BackendError):
        check_golden(chunk_bundle, FakeBackend(ort, precision='float16', offset=0.1))


def test_golden_check_refuses_nan_and_wrong_shapes(
        chunk_bundle: PolicyBundle, ort: OnnxRuntimeBackend) -> None:
    with pytest.raises(BackendError) as error:
        check_golden(chunk_bundle, FakeBackend(ort, fill=math.nan, name='nan'))
    assert 'nan does not reproduce the golden outputs' in str(error.value)

    class Truncated(FakeBackend):
        def run(self, inputs: Any) -> npt.NDArray[np.float32]:
            return super().run(inputs)[:, :2]

    with pytest.raises(BackendError) as error:
        check_golden(chunk_bundle, Truncated(ort))
    assert f'of shape [1, 2, 8], the golden output is [1, {CHUNK}, 8]' in str(error.value)


# -- warm-up -----------------------------------------------------------------------------------


@pytest.mark.parametrize('runs', [0, 3])
def test_warmup_runs_happen(chunk_bundle: PolicyBundle, monkeypatch: pytest.MonkeyPatch,
                            runs: int) -> None:
    calls: list[int] = []
    original = OnnxRuntimeBackend.run

    def counting(self: OnnxRuntimeBackend, inputs: Any) -> npt.NDArray[np.float32]:
        calls.append(1)
        return original(self, inputs)

    monkeypatch.setattr(OnnxRuntimeBackend, 'run', counting)
    options = BackendOptions(onnxruntime_providers=CPU_PROVIDERS, warmup_runs=runs)
    _, report = open_backend(chunk_bundle, ['onnxruntime'], options)
    assert len(report.warmup_ms) == runs
    assert all(ms >= 0.0 for ms in report.warmup_ms)
    assert len(calls) == 1 + runs  # the golden check, then the warm-up runs


# -- runtime -----------------------------------------------------------------------------------


def test_runtime_turns_raw_frames_into_a_timed_chunk(
        chunk_bundle: PolicyBundle, ort: OnnxRuntimeBackend) -> None:
    runtime = PolicyRuntime(chunk_bundle, ort)
    obs = observation(chunk_bundle.spec, seed=1, stamp_s=12.5)
    chunk = runtime(obs)
    assert chunk.positions.shape == (CHUNK, len(FR3_JOINTS))
    assert chunk.gripper is not None and chunk.gripper.shape == (CHUNK,)
    np.testing.assert_allclose(chunk.times(), 12.5 + np.arange(CHUNK) / RATE_HZ, atol=1e-12)
    assert chunk.period_s == pytest.approx(1.0 / RATE_HZ)
    # what reached the network: frames scaled to [0, 1] in CHW, normalised proprio
    inputs = runtime.network_inputs(obs)
    for name, frames in obs.frames.items():
        want = np.stack([f.transpose(2, 0, 1) / 255.0 for f in frames])[None]
        np.testing.assert_allclose(inputs[f'image.{name}'], want, atol=1e-6)
    np.testing.assert_allclose(
        inputs['proprio'][0], (obs.joint_positions - PROPRIO_STATS.mean) / PROPRIO_STATS.std,
        atol=1e-6)
    # and the chunk is the network's output de-normalised
    actions = ort.run(inputs)[0].astype(np.float64) * ACTION_STATS.std + ACTION_STATS.mean
    np.testing.assert_allclose(chunk.positions, actions[:, :7], atol=1e-9)
    np.testing.assert_allclose(chunk.gripper, actions[:, 7], atol=1e-9)
    assert runtime.last_times.inference_ms > 0.0


def test_joint_delta_actions_are_added_to_the_observed_positions(
        delta_bundle: PolicyBundle) -> None:
    backend = OnnxRuntimeBackend(delta_bundle, providers=CPU_PROVIDERS)
    runtime = PolicyRuntime(delta_bundle, backend)
    obs = observation(delta_bundle.spec, seed=2)
    q_now = obs.joint_positions[-1]
    stats = delta_bundle.spec.action.stats
    decoded = runtime.decode(np.zeros((CHUNK, 7), np.float32), obs)
    np.testing.assert_allclose(decoded.positions, np.tile(q_now + stats.mean, (CHUNK, 1)))
    chunk = runtime(obs)
    assert chunk.gripper is None
    delta = backend.run(runtime.network_inputs(obs))[0].astype(np.float64) * stats.std \
        + stats.mean
    np.testing.assert_allclose(chunk.positions, q_now + delta, atol=1e-9)


def test_ee_pose_actions_need_the_robot(chunk_bundle: PolicyBundle,
                                        ort: OnnxRuntimeBackend) -> None:
    action = ActionSpec('ee_pose', FR3_JOINTS, True, Normalisation((0.0,) * 7, (1.0,) * 7))
    ee = dataclasses.replace(chunk_bundle,
                             spec=dataclasses.replace(chunk_bundle.spec, action=action))
    with pytest.raises(BundleMismatchError) as error:
        PolicyRuntime(ee, ort)
    assert error.value.field == 'action.kind'


def test_frame_of_the_wrong_size_is_refused_naming_the_camera(
        chunk_bundle: PolicyBundle, ort: OnnxRuntimeBackend) -> None:
    runtime = PolicyRuntime(chunk_bundle, ort)
    obs = observation(chunk_bundle.spec)
    frames = dict(obs.frames)
    frames['wrist'] = [frames['wrist'][0], np.zeros((24, 32, 3), np.uint8)]
    with pytest.raises(FrameMismatchError) as error:
        runtime(dataclasses.replace(obs, frames=frames))
    assert "camera 'wrist'" in str(error.value)
    assert '32x24' in str(error.value)
    with pytest.raises(FrameMismatchError) as error:
        runtime(dataclasses.replace(obs, encodings={'scene': 'bgr8'}))
    assert "camera 'scene'" in str(error.value) and "'bgr8'" in str(error.value)


def test_wrong_history_or_joint_count_is_refused(
        chunk_bundle: PolicyBundle, ort: OnnxRuntimeBackend) -> None:
    runtime = PolicyRuntime(chunk_bundle, ort)
    obs = observation(chunk_bundle.spec)
    short = {name: list(frames)[:1] for name, frames in obs.frames.items()}
    with pytest.raises(BundleMismatchError) as error:
        runtime(dataclasses.replace(obs, frames=short))
    assert error.value.field == 'observation.scene'
    assert f'has 1 frame(s); the model needs {HISTORY}' in str(error.value)
    missing = {'scene': obs.frames['scene']}
    with pytest.raises(BundleMismatchError) as error:
        runtime(dataclasses.replace(obs, frames=missing))
    assert error.value.field == 'observation.wrist'
    with pytest.raises(BundleMismatchError) as error:
        runtime(dataclasses.replace(obs, joint_positions=obs.joint_positions[:, :6]))
    assert error.value.field == 'observation.joint_positions'
    assert f'expected [{HISTORY}, 7]' in str(error.value)


def test_denoising_runtime_is_deterministic_per_seed(denoising_bundle: PolicyBundle) -> None:
    backend = OnnxRuntimeBackend(denoising_bundle, providers=CPU_PROVIDERS)
    obs = observation(denoising_bundle.spec, seed=4)
    first = PolicyRuntime(denoising_bundle, backend, seed=3)(obs)
    again = PolicyRuntime(denoising_bundle, backend, seed=3)(obs)
    other = PolicyRuntime(denoising_bundle, backend, seed=4)(obs)
    np.testing.assert_array_equal(first.positions, again.positions)
    assert first.gripper is not None and again.gripper is not None
    np.testing.assert_array_equal(first.gripper, again.gripper)
    assert not np.allclose(first.positions, other.positions, atol=1e-6)
    # the DDIM loop gives the same chunk through the PyTorch backend
    torch_chunk = PolicyRuntime(denoising_bundle, TorchBackend(denoising_bundle), seed=3)(obs)
    np.testing.assert_allclose(torch_chunk.positions, first.positions, atol=1e-4)
    # clip_sample 1.0: the clean sample stays within [-1, 1] before de-normalisation
    runtime = PolicyRuntime(denoising_bundle, backend, seed=5)
    normalised = runtime.predict(runtime.network_inputs(obs))
    assert normalised.shape == (CHUNK, 8)
    assert np.abs(normalised).max() <= 1.0 + 1e-6


@pytest.mark.parametrize('name', ['chunk_bundle', 'denoising_bundle'])
def test_non_finite_network_output_returns_nothing(
        name: str, request: pytest.FixtureRequest) -> None:
    bundle: PolicyBundle = request.getfixturevalue(name)
    inner = OnnxRuntimeBackend(bundle, providers=CPU_PROVIDERS)
    runtime = PolicyRuntime(bundle, FakeBackend(inner, fill=math.nan, name='broken'))
    with pytest.raises(FloatingPointError) as error:
        runtime(observation(bundle.spec))
    assert 'broken produced non-finite actions' in str(error.value)


# -- DDIM --------------------------------------------------------------------------------------


def scheduler(prediction: str = 'epsilon', schedule: str = 'squaredcos_cap_v2',
              clip: float | None = None, train: int = 100, steps: int = 10
              ) -> DenoisingScheduler:
    return DenoisingScheduler(train, steps, schedule, 1e-4, 2e-2, prediction, clip)


# (the start must keep some signal: at alpha bar ~1e-6 a float32 x_t has lost x0's digits)
@pytest.mark.parametrize(('schedule', 'train', 'steps'), [
    ('linear', 100, 10), ('squaredcos_cap_v2', 100, 10), ('squaredcos_cap_v2', 100, 7),
    ('squaredcos_cap_v2', 50, 10), ('linear', 20, 20)])
def test_ddim_recovers_x0_from_its_exact_noise(schedule: str, train: int, steps: int) -> None:
    sched = scheduler(schedule=schedule, train=train, steps=steps)
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-1.0, 1.0, (1, CHUNK, 8))
    eps = rng.standard_normal((1, CHUNK, 8))
    ab = alphas_cumprod(sched)
    start = inference_timesteps(sched)[0]
    x_start = math.sqrt(ab[start]) * x0 + math.sqrt(1.0 - ab[start]) * eps
    seen: list[float] = []

    def network(x: npt.NDArray[np.float32], t: float) -> npt.NDArray[np.float32]:
        seen.append(t)
        assert x.dtype == np.float32 and x.shape == x0.shape
        return eps.astype(np.float32)

    out = ddim_sample(network, sched, x_start.astype(np.float32))
    assert seen == [float(t) for t in inference_timesteps(sched)]
    np.testing.assert_allclose(out, x0, atol=1e-5)


def test_ddim_with_an_oracle_noise_estimate_recovers_x0_from_any_start() -> None:
    sched = scheduler()
    ab = alphas_cumprod(sched)
    rng = np.random.default_rng(1)
    x0 = rng.uniform(-1.0, 1.0, (1, CHUNK, 8))

    def network(x: npt.NDArray[np.float32], t: float) -> npt.NDArray[np.float32]:
        a = ab[int(t)]
        return ((x - math.sqrt(a) * x0) / math.sqrt(1.0 - a)).astype(np.float32)

    noise = rng.standard_normal((1, CHUNK, 8)).astype(np.float32)
    np.testing.assert_allclose(ddim_sample(network, sched, noise), x0, atol=1e-5)


def test_ddim_sample_prediction_returns_the_predicted_sample() -> None:
    rng = np.random.default_rng(2)
    x0 = rng.uniform(-1.0, 1.0, (1, CHUNK, 8)).astype(np.float32)
    noise = rng.standard_normal((1, CHUNK, 8)).astype(np.float32)
    out = ddim_sample(lambda x, t: x0, scheduler('sample'), noise)
    np.testing.assert_allclose(out, x0, atol=1e-6)
    # with clipping, a prediction beyond the clip range ends on the boundary
    clipped = ddim_sample(lambda x, t: 3.0 * x0, scheduler('sample', clip=1.0), noise)
    np.testing.assert_allclose(clipped, np.clip(3.0 * x0, -1.0, 1.0), atol=1e-6)


@pytest.mark.parametrize(('train', 'steps'), [(100, 10), (100, 16), (1000, 100), (20, 20)])
def test_inference_timesteps_descend_from_below_train_steps(train: int, steps: int) -> None:
    timesteps = inference_timesteps(scheduler(train=train, steps=steps))
    assert len(timesteps) == steps
    assert all(isinstance(t, int) for t in timesteps)
    assert timesteps[-1] == 0
    assert 0 < timesteps[0] < train
    assert all(a > b for a, b in zip(timesteps, timesteps[1:], strict=False))


@pytest.mark.parametrize('schedule', ['linear', 'squaredcos_cap_v2'])
def test_alphas_cumprod_decrease_strictly_inside_0_1(schedule: str) -> None:
    ab = alphas_cumprod(scheduler(schedule=schedule, train=1000))
    assert ab.shape == (1000,)
    assert np.all((ab > 0.0) & (ab < 1.0))
    assert np.all(np.diff(ab) < 0.0)
    assert ab[0] > 0.99 and ab[-1] < 0.1  # from almost clean to mostly noise


def test_tensorrt_engine_cache_key_changes_with_model_gpu_version_and_precision() -> None:
    """An engine is reused only for the same ONNX file, GPU, TensorRT version and precision."""
    from visuomotor.policy.backends.tensorrt_backend import engine_key
    base = engine_key('ab' * 32, 'NVIDIA GeForce RTX 4090', (8, 9), '10.9.0', 'float16')
    assert base == engine_key('ab' * 32, 'NVIDIA GeForce RTX 4090', (8, 9), '10.9.0', 'float16')
    variants = [engine_key('cd' * 32, 'NVIDIA GeForce RTX 4090', (8, 9), '10.9.0', 'float16'),
                engine_key('ab' * 32, 'NVIDIA H100 80GB HBM3', (9, 0), '10.9.0', 'float16'),
                engine_key('ab' * 32, 'NVIDIA GeForce RTX 4090', (8, 9), '10.10.0', 'float16'),
                engine_key('ab' * 32, 'NVIDIA GeForce RTX 4090', (8, 9), '10.9.0', 'float32')]
    assert len({base, *variants}) == 5
    assert '/' not in base and ' ' not in base  # a safe file name
