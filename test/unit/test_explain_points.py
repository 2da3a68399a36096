"""Spatial-softmax feature points in network-input pixels, and their ONNX outputs.

What a user looking at "where the policy looks" checks:

- the receptive-field geometry of the encoders (Levine: 11 px offset, 2 px stride; ResNet-18
  GN: 0 px offset, 32 px stride) and the map from [-1, 1] to pixels;
- feature points always lie inside the image, whatever the weights and the frames;
- in a synthetic scene, an encoder whose response map peaks on a red square puts its feature
  point on the square's centre and follows it as it moves, through `feature_points_px`, the
  exported ONNX outputs `feature_points.<camera>` (ONNX Runtime, via `PolicyRuntime` from
  raw uint8 frames) and `PolicyViews`;
- exported bundles answer the golden inputs with the same actions as before and feature points
  equal to the PyTorch twin's (single pass and denoising, any batch size); both backends'
  `run_with` agree; `PolicyRuntime(..., extras=True)` keeps the inputs and one (1, T, K, 2)
  array per camera, and nothing with extras=False;
- `reexport_bundle` gives an older bundle (no extra outputs) the outputs with identical
  golden I/O, and refuses a bundle whose weights do not reproduce its golden outputs.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import (
    CPU_OPTIONS,
    CPU_PROVIDERS,
    FakeBackend,
    make_spec,
    observation,
    random_inputs,
    red_square_encoder,
)
from torch import nn

from support import REPO
from visuomotor.explain.feature_points import (
    MapGeometry,
    camera_encoders,
    feature_points_px,
    map_geometry,
)
from visuomotor.explain.views import PolicyViews
from visuomotor.policy.backends import open_backend
from visuomotor.policy.backends.base import ExtraOutputs
from visuomotor.policy.backends.onnxruntime_backend import OnnxRuntimeBackend
from visuomotor.policy.backends.torch_backend import TorchBackend
from visuomotor.policy.bundle import PolicyBundle, load_bundle, load_weights, write_bundle
from visuomotor.policy.errors import BackendError, BundleError
from visuomotor.policy.runtime import Observation, PolicyRuntime
from visuomotor.policy.spec import PolicySpec, feature_points_output, image_input
from visuomotor.training.export import (
    export_bundle,
    has_feature_points,
    reexport_bundle,
    untrained_bundle,
)
from visuomotor.training.nets import (
    ChunkMLP,
    ChunkTransformer,
    DenoisingMLP,
    LevineEncoder,
    ResNet18GNEncoder,
    build_architecture,
)

pytestmark = [
    pytest.mark.filterwarnings('ignore:You are using the legacy TorchScript:DeprecationWarning'),
    pytest.mark.filterwarnings('ignore:The feature will be removed:DeprecationWarning'),
    pytest.mark.filterwarnings('ignore:Converting a tensor to a Python boolean'),
]

CAMERAS = ('scene_camera', 'wrist_camera')
POINTS = tuple(feature_points_output(c) for c in CAMERAS)
SQUARE_SIZE = 64  # synthetic scene, pixels
SQUARE_SIDE = 9  # odd: the square's centre is a pixel centre
DEMO_BUNDLE = REPO / 'models' / 'pick_place_fr3'


def _inside(points: npt.NDArray[np.floating], width: int, height: int) -> bool:
    """Every (x, y) within the pixel centres of a width x height image (float rounding aside)."""
    x, y = points[..., 0], points[..., 1]
    eps = 1e-3
    return bool(np.all(np.isfinite(points)) and np.all(x >= -eps)
                and np.all(x <= width - 1 + eps) and np.all(y >= -eps)
                and np.all(y <= height - 1 + eps))


# -- geometry ----------------------------------------------------------------------------------


def test_levine_geometry_at_96_px() -> None:
    # conv1 7x7 stride 2, no padding: output i covers input 2i..2i+6, centre 3 + 2i;
    #   (96 - 7) // 2 + 1 = 45 positions.
    # conv2 5x5 stride 1: output i covers conv1 i..i+4, centre conv1 i + 2, i.e. input
    #   3 + 2 (i + 2) = 7 + 2i; 45 - 4 = 41 positions.
    # conv3 5x5 stride 1: centre conv2 i + 2, i.e. input 7 + 2 (i + 2) = 11 + 2i;
    #   41 - 4 = 37 positions.  So: offset 11 px, stride 2 px, a 37 x 37 map, spanning
    #   pixels 11..83 of the 96 px image.
    geometry = map_geometry(LevineEncoder(3, 96, 96))
    assert geometry == MapGeometry((11.0, 11.0), (2.0, 2.0), (37, 37))
    corners = geometry.to_pixels(np.array([[-1.0, -1.0], [1.0, 1.0], [0.0, 0.0]]))
    np.testing.assert_allclose(corners, [[11.0, 11.0], [83.0, 83.0], [47.0, 47.0]])


@pytest.mark.parametrize(('height', 'width', 'map_w', 'map_h'), [
    (64, 64, 21, 21),  # 64 -> 29 -> 25 -> 21
    (32, 32, 5, 5),  # 32 -> 13 -> 9 -> 5
    (23, 23, 1, 1),  # the smallest: one position, at pixel 11
    (40, 64, 21, 9),  # non-square: width and height kept apart (x is the width)
    (96, 50, 14, 37),  # 50 -> 22 -> 18 -> 14
])
def test_levine_geometry_at_other_sizes(height: int, width: int, map_w: int,
                                        map_h: int) -> None:
    geometry = map_geometry(LevineEncoder(3, height, width))
    assert geometry.offset_px == (11.0, 11.0)
    assert geometry.stride_px == (2.0, 2.0)
    assert geometry.map_size == (map_w, map_h)
    far = geometry.to_pixels(np.array([1.0, 1.0]))
    np.testing.assert_allclose(far, [11 + 2 * (map_w - 1), 11 + 2 * (map_h - 1)])


@pytest.mark.parametrize(('height', 'width', 'map_w', 'map_h'), [
    (96, 96, 3, 3),  # 96 -> 48 (conv /2) -> 24 (pool) -> 12 -> 6 -> 3 (three /2 stages)
    (40, 40, 2, 2),
    (33, 70, 3, 2),
])
def test_resnet18_gn_geometry(height: int, width: int, map_w: int, map_h: int) -> None:
    # every convolution and the max pool are padded to keep position 0 centred on pixel 0;
    # the strides multiply to 2 * 2 * 2 * 2 * 2 = 32 (the residual shortcuts are skipped)
    geometry = map_geometry(ResNet18GNEncoder(3, height, width, num_keypoints=4))
    assert geometry == MapGeometry((0.0, 0.0), (32.0, 32.0), (map_w, map_h))


def test_to_pixels_maps_each_axis_with_its_own_geometry() -> None:
    geometry = MapGeometry((5.0, 3.0), (2.0, 4.0), (11, 6))
    points = np.array([[[-1.0, -1.0], [1.0, 1.0]], [[0.0, 0.5], [-0.5, 0.0]]])
    expected = np.array([[[5.0, 3.0], [25.0, 23.0]], [[15.0, 18.0], [10.0, 13.0]]])
    out = geometry.to_pixels(points)
    assert out.shape == (2, 2, 2) and out.dtype == np.float64
    np.testing.assert_allclose(out, expected)


def _impulse_encoder(height: int, width: int) -> LevineEncoder:
    """A Levine encoder whose channel 0 map is the red value at its receptive-field centres."""
    encoder = LevineEncoder(3, height, width)
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.zero_()
        first, second, third = [m for m in encoder.convs if isinstance(m, nn.Conv2d)]
        first.weight[0, 0, 3, 3] = 1.0
        second.weight[0, 0, 2, 2] = 1.0
        third.weight[0, 0, 2, 2] = 1.0
        encoder.softmax.log_temperature.fill_(math.log(0.01))
    return encoder.eval()


@pytest.mark.parametrize(('x', 'y'), [(11, 11), (13, 27), (51, 11), (33, 19), (51, 27)])
def test_a_bright_pixel_at_a_receptive_field_centre_is_found_there(x: int, y: int) -> None:
    # 40 rows x 64 columns: map positions at x = 11..51, y = 11..27 (odd pixels)
    encoder = _impulse_encoder(40, 64)
    image = torch.zeros(1, 3, 40, 64)
    image[0, 0, y, x] = 1.0
    point = map_geometry(encoder).to_pixels(encoder.feature_points(image).detach().numpy())
    np.testing.assert_allclose(point[0, 0], [x, y], atol=1e-3)


# -- always inside the image -------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(height=st.integers(23, 100), width=st.integers(23, 100), seed=st.integers(0, 2**16),
       contrast=st.floats(0.1, 200.0), log_temperature=st.floats(-6.0, 2.0))
def test_levine_points_lie_inside_the_image(height: int, width: int, seed: int,
                                            contrast: float, log_temperature: float) -> None:
    torch.manual_seed(seed)
    encoder = LevineEncoder(3, height, width).eval()
    with torch.no_grad():
        encoder.softmax.log_temperature.fill_(log_temperature)  # peaky or flat softmaxes
    images = torch.randn(3, 3, height, width) * contrast
    with torch.no_grad():
        points = map_geometry(encoder).to_pixels(encoder.feature_points(images).numpy())
    assert points.shape == (3, 32, 2)
    assert _inside(points, width, height)


@pytest.mark.parametrize(('height', 'width'), [(33, 33), (48, 80)])
def test_resnet18_gn_points_lie_inside_the_image(height: int, width: int) -> None:
    torch.manual_seed(height + width)
    encoder = ResNet18GNEncoder(3, height, width, num_keypoints=8).eval()
    geometry = map_geometry(encoder)
    for contrast, log_temperature in ((1.0, 0.0), (300.0, -4.0)):
        with torch.no_grad():
            encoder.softmax.log_temperature.fill_(log_temperature)
            raw = encoder.feature_points(torch.randn(2, 3, height, width) * contrast)
        points = geometry.to_pixels(raw.numpy())
        assert points.shape == (2, 8, 2)
        assert _inside(points, width, height)


def test_feature_points_px_uses_each_cameras_geometry() -> None:
    torch.manual_seed(3)
    cameras = [{'name': 'a', 'channels': 3, 'height': 32, 'width': 32},
               {'name': 'b', 'channels': 3, 'height': 48, 'width': 72}]
    module = ChunkMLP(cameras, 2, 7, 8, 4, encoder='levine', hidden=[16]).eval()
    images = [torch.rand(2, 2, 3, 32, 32) * 50, torch.rand(2, 2, 3, 48, 72) * 50]
    points = feature_points_px(module, images)
    assert [p.shape for p in points] == [(2, 2, 32, 2), (2, 2, 32, 2)]
    assert _inside(points[0], 32, 32) and _inside(points[1], 72, 48)
    # equal to each encoder's own points mapped through its own geometry
    for encoder, frames, got in zip(module.condition.encoders, images, points, strict=True):
        with torch.no_grad():
            raw = encoder.feature_points(frames.flatten(0, 1)).numpy()  # type: ignore[operator]
        expected = map_geometry(encoder).to_pixels(raw).reshape(2, 2, 32, 2)
        np.testing.assert_allclose(got, expected, atol=1e-9)
    # a sample's points do not depend on the rest of the batch
    alone = feature_points_px(module, [images[0][1:], images[1][1:]])
    np.testing.assert_allclose(alone[1], points[1][1:], atol=1e-4)


def test_camera_encoders_of_every_architecture() -> None:
    cameras = [{'name': c, 'channels': 3, 'height': 32, 'width': 32} for c in CAMERAS]
    mlp = ChunkMLP(cameras, 2, 7, 8, 4, encoder='levine', hidden=[16])
    transformer = ChunkTransformer(cameras, 2, 7, 8, 4, width=16, heads=2, layers=1,
                                   feedforward=16)
    denoiser = DenoisingMLP(cameras, 2, 7, 8, 4, encoder='levine', hidden=[16])
    for module in (mlp, transformer, denoiser):
        encoders = camera_encoders(module)
        assert len(encoders) == 2 and all(isinstance(e, LevineEncoder) for e in encoders)
        assert has_feature_points(module)
    assert camera_encoders(mlp)[1] is mlp.condition.encoders[1]
    with pytest.raises(ValueError, match='no spatial-softmax encoders'):
        camera_encoders(nn.Linear(3, 3))
    assert not has_feature_points(nn.Sequential(nn.Conv2d(3, 4, 3)))


# -- a synthetic scene: a red square moving over a grey table ----------------------------------


def scene(cx: int, cy: int, seed: int = 0) -> npt.NDArray[np.uint8]:
    """A 64x64 rgb8 frame: a 9x9 red square centred on pixel (cx, cy), noisy grey around."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 6.0, (SQUARE_SIZE, SQUARE_SIZE, 3))
    image = np.clip(128 + noise, 0, 255).astype(np.uint8)
    half = SQUARE_SIDE // 2
    image[cy - half:cy + half + 1, cx - half:cx + half + 1] = (230, 20, 20)
    return image


def _network_image(frame: npt.NDArray[np.uint8]) -> torch.Tensor:
    """(1, 1, 3, H, W) in [0, 1], as the plain rgb8 preprocessing makes it."""
    return torch.from_numpy(frame).permute(2, 0, 1)[None, None].float() / 255.0


# positions of the square's centre: the map's positions span pixels 11..51 of the 64 px frame
TRACK_X = list(range(14, 51, 3))
TRACK_Y = list(range(13, 52, 4))


@pytest.fixture(scope='module')
def square_bundle(tmp_path_factory: pytest.TempPathFactory) -> PolicyBundle:
    """A one-camera ChunkMLP around the red-square encoder, exported as a bundle."""
    spec = make_spec(cameras=('scene',), size=SQUARE_SIZE, name='red-square')
    assert spec.architecture is not None
    torch.manual_seed(0)
    module = build_architecture(spec.architecture.name, spec.architecture.kwargs)
    red_square_encoder(module.condition.encoders[0])  # type: ignore[union-attr,index,arg-type]
    return export_bundle(module, spec, tmp_path_factory.mktemp('red_square'))


def _track(points: list[npt.NDArray[np.float64]], truth: list[tuple[int, int]]) -> None:
    """Feature point 0 follows the square: within 1.5 px, moving by the square's steps."""
    found = np.array(points)
    want = np.array(truth, dtype=np.float64)
    error = np.abs(found - want).max()
    assert error < 1.5, f'feature point {error:.2f} px from the square'
    np.testing.assert_allclose(np.diff(found, axis=0), np.diff(want, axis=0), atol=0.5)


@pytest.mark.parametrize('direction', ['x', 'y', 'diagonal'])
def test_feature_point_follows_a_moving_red_square(direction: str) -> None:
    torch.manual_seed(0)
    cameras = [{'name': 'scene', 'channels': 3, 'height': SQUARE_SIZE, 'width': SQUARE_SIZE}]
    module = ChunkMLP(cameras, 1, 7, 8, 4, encoder='levine', hidden=[16]).eval()
    red_square_encoder(module.condition.encoders[0])  # type: ignore[arg-type]
    if direction == 'x':
        truth = [(x, 30) for x in TRACK_X]
    elif direction == 'y':
        truth = [(40, y) for y in TRACK_Y]
    else:
        truth = [(x, x + 2) for x in TRACK_X[:-1]]
    found = []
    for seed, (cx, cy) in enumerate(truth):
        (points,) = feature_points_px(module, [_network_image(scene(cx, cy, seed))])
        assert points.shape == (1, 1, 32, 2)
        found.append(points[0, 0, 0])
        # the flat maps (no weights) sit at the middle of the map's span: pixel (31, 31)
        np.testing.assert_allclose(points[0, 0, 1:], np.full((31, 2), 31.0), atol=1e-4)
    _track(found, truth)


def test_onnx_feature_points_follow_the_square_from_raw_frames(
        square_bundle: PolicyBundle) -> None:
    backend = OnnxRuntimeBackend(square_bundle, providers=CPU_PROVIDERS)
    runtime = PolicyRuntime(square_bundle, backend)
    key = feature_points_output('scene')
    assert runtime.feature_point_outputs == (key,)
    views = PolicyViews(square_bundle)
    truth = [(x, 30) for x in TRACK_X]
    newest, oldest, from_views, from_twin = [], [], [], []
    previous = truth[0]
    for seed, (cx, cy) in enumerate(truth):
        frames = [scene(*previous, seed=100 + seed), scene(cx, cy, seed=seed)]
        q = np.zeros((2, 7))
        runtime(Observation({'scene': frames}, q, 1.0 + seed, {'scene': 'rgb8'}), extras=True)
        points = runtime.last_extras[key]
        assert points.shape == (1, 2, 32, 2) and points.dtype == np.float32
        oldest.append(points[0, 0, 0].astype(np.float64))
        newest.append(points[0, 1, 0].astype(np.float64))
        (view,) = views.views(runtime.last_inputs, extras=runtime.last_extras, saliency=False)
        assert view.points_px is not None
        from_views.append(view.points_px[0])
        (twin_view,) = views.views(runtime.last_inputs, saliency=False)  # no extras: the twin
        assert twin_view.points_px is not None
        np.testing.assert_allclose(twin_view.points_px, view.points_px, atol=1e-3)
        from_twin.append(twin_view.points_px[0])
        previous = (cx, cy)
    _track(newest, truth)
    _track(oldest, [truth[0], *truth[:-1]])  # the history frame: where the square was
    _track(from_views, truth)
    _track(from_twin, truth)


# -- exported bundles: golden outputs and extra outputs ----------------------------------------


@pytest.fixture(scope='module')
def bundle(tmp_path_factory: pytest.TempPathFactory) -> PolicyBundle:
    """The untrained single-pass bundle (Levine encoders, 32x32, two cameras)."""
    return untrained_bundle(tmp_path_factory.mktemp('untrained'))


@pytest.fixture(scope='module')
def denoising_bundle(tmp_path_factory: pytest.TempPathFactory) -> PolicyBundle:
    """The untrained denoising bundle."""
    return untrained_bundle(tmp_path_factory.mktemp('untrained_ddim'), family='denoising')


def _graph_outputs(b: PolicyBundle) -> list[str]:
    return [o.name for o in onnx.load(str(b.onnx_path)).graph.output]


@pytest.mark.parametrize('family', ['single_pass', 'denoising'])
def test_onnx_extra_outputs_equal_the_twins_points_on_golden_inputs(
        family: str, bundle: PolicyBundle, denoising_bundle: PolicyBundle) -> None:
    b = bundle if family == 'single_pass' else denoising_bundle
    spec = b.spec
    assert _graph_outputs(b) == [spec.output_name, *POINTS]
    backend = OnnxRuntimeBackend(b, providers=CPU_PROVIDERS)
    assert backend.extra_outputs == POINTS
    out, extras = backend.run_with(b.golden_inputs, POINTS)
    np.testing.assert_allclose(out, b.golden_outputs[spec.output_name], atol=1e-5)
    np.testing.assert_allclose(backend.run(b.golden_inputs), out, atol=1e-6)
    twin = TorchBackend(b).module
    images = [torch.from_numpy(b.golden_inputs[image_input(c)]) for c in CAMERAS]
    expected = feature_points_px(twin, images)
    for name, points in zip(POINTS, expected, strict=True):
        assert extras[name].shape == (1, spec.observation_history, 32, 2)
        np.testing.assert_allclose(extras[name], points, atol=1e-5)
        assert _inside(extras[name], 32, 32)


def test_onnx_extra_outputs_with_a_batch(bundle: PolicyBundle) -> None:
    inputs = random_inputs(bundle.spec, seed=4, batch=3)
    out, extras = OnnxRuntimeBackend(bundle, providers=CPU_PROVIDERS).run_with(inputs, POINTS)
    twin = TorchBackend(bundle)
    np.testing.assert_allclose(out, twin.run(inputs), atol=1e-5)
    images = [torch.from_numpy(inputs[image_input(c)]) for c in CAMERAS]
    for name, points in zip(POINTS, feature_points_px(twin.module, images), strict=True):
        assert extras[name].shape == (3, 2, 32, 2)
        np.testing.assert_allclose(extras[name], points, atol=1e-5)


def test_both_backends_return_the_same_points(bundle: PolicyBundle) -> None:
    inputs = random_inputs(bundle.spec, seed=1)
    onnx_backend = OnnxRuntimeBackend(bundle, providers=CPU_PROVIDERS)
    torch_backend = TorchBackend(bundle)
    assert isinstance(onnx_backend, ExtraOutputs) and isinstance(torch_backend, ExtraOutputs)
    assert torch_backend.extra_outputs == POINTS
    onnx_out, onnx_points = onnx_backend.run_with(inputs, POINTS)
    torch_out, torch_points = torch_backend.run_with(inputs, POINTS)
    np.testing.assert_allclose(onnx_out, torch_out, atol=1e-5)
    assert set(onnx_points) == set(torch_points) == set(POINTS)
    for name in POINTS:
        np.testing.assert_allclose(onnx_points[name], torch_points[name], atol=1e-5)
    # one camera only, and none
    _, one = onnx_backend.run_with(inputs, POINTS[1:])
    assert list(one) == [POINTS[1]]
    np.testing.assert_allclose(one[POINTS[1]], onnx_points[POINTS[1]])
    _, none = torch_backend.run_with(inputs, ())
    assert none == {}
    with pytest.raises(BackendError, match='feature_points.top_camera'):
        torch_backend.run_with(inputs, ('feature_points.top_camera',))


@pytest.mark.parametrize('backend_name', ['onnxruntime', 'torch'])
def test_runtime_keeps_inputs_and_points_only_when_asked(bundle: PolicyBundle,
                                                         backend_name: str) -> None:
    backend = OnnxRuntimeBackend(bundle, providers=CPU_PROVIDERS) \
        if backend_name == 'onnxruntime' else TorchBackend(bundle)
    runtime = PolicyRuntime(bundle, backend)
    assert runtime.feature_point_outputs == POINTS
    obs = observation(bundle.spec, seed=2)
    with_points = runtime(obs, extras=True)
    assert set(runtime.last_inputs) == set(bundle.spec.input_shapes())
    np.testing.assert_array_equal(runtime.last_inputs[image_input(CAMERAS[0])],
                                  runtime.network_inputs(obs)[image_input(CAMERAS[0])])
    assert set(runtime.last_extras) == set(POINTS)
    for name in POINTS:
        assert runtime.last_extras[name].shape == (1, bundle.spec.observation_history, 32, 2)
        assert _inside(runtime.last_extras[name], 32, 32)
    images = [torch.from_numpy(runtime.last_inputs[image_input(c)]) for c in CAMERAS]
    for name, points in zip(POINTS, feature_points_px(TorchBackend(bundle).module, images),
                            strict=True):
        np.testing.assert_allclose(runtime.last_extras[name], points, atol=1e-5)
    without = runtime(obs, extras=False)
    assert runtime.last_inputs == {} and runtime.last_extras == {}
    np.testing.assert_allclose(with_points.positions, without.positions, atol=1e-9)
    runtime(obs)  # the default: no extras
    assert runtime.last_inputs == {} and runtime.last_extras == {}


def test_runtime_on_a_backend_without_extra_outputs(bundle: PolicyBundle) -> None:
    runtime = PolicyRuntime(bundle, FakeBackend(OnnxRuntimeBackend(bundle,
                                                                   providers=CPU_PROVIDERS)))
    assert runtime.feature_point_outputs == ()
    runtime(observation(bundle.spec, seed=3), extras=True)
    assert set(runtime.last_inputs) == set(bundle.spec.input_shapes())
    assert runtime.last_extras == {}


def test_runtime_on_the_backend_the_node_opens(bundle: PolicyBundle) -> None:
    backend, report = open_backend(bundle, ['onnxruntime'], CPU_OPTIONS)
    assert report.golden is not None
    runtime = PolicyRuntime(bundle, backend)
    assert runtime.feature_point_outputs == POINTS
    runtime(observation(bundle.spec, seed=8), extras=True)
    shapes = {k: v.shape for k, v in runtime.last_extras.items()}
    assert shapes == dict.fromkeys(POINTS, (1, 2, 32, 2))


def test_the_bundled_demo_policy_has_the_outputs() -> None:
    demo = load_bundle(DEMO_BUNDLE)  # ChunkTransformer head, 96x96 Levine encoders
    assert demo.spec.camera_names == CAMERAS
    backend = OnnxRuntimeBackend(demo, providers=CPU_PROVIDERS)
    assert backend.extra_outputs == POINTS
    out, extras = backend.run_with(demo.golden_inputs, POINTS)
    np.testing.assert_allclose(out, demo.golden_outputs['action'], atol=1e-4)
    history = demo.spec.observation_history
    images = [torch.from_numpy(demo.golden_inputs[image_input(c)]) for c in CAMERAS]
    twin = TorchBackend(demo).module
    for name, points in zip(POINTS, feature_points_px(twin, images), strict=True):
        assert extras[name].shape == (1, history, 32, 2)
        np.testing.assert_allclose(extras[name], points, atol=1e-4)
        assert _inside(extras[name], 96, 96)


def test_denoising_runtime_keeps_the_points_of_its_images(
        denoising_bundle: PolicyBundle) -> None:
    spec = denoising_bundle.spec
    obs = observation(spec, seed=5)
    backend = OnnxRuntimeBackend(denoising_bundle, providers=CPU_PROVIDERS)
    runtime = PolicyRuntime(denoising_bundle, backend, seed=7)
    chunk = runtime(obs, extras=True)
    assert set(runtime.last_extras) == set(POINTS)
    assert set(runtime.last_inputs) == {image_input(c) for c in CAMERAS} | {'proprio'}
    images = [torch.from_numpy(runtime.last_inputs[image_input(c)]) for c in CAMERAS]
    twin = TorchBackend(denoising_bundle).module
    for name, points in zip(POINTS, feature_points_px(twin, images), strict=True):
        assert runtime.last_extras[name].shape == (1, spec.observation_history, 32, 2)
        np.testing.assert_allclose(runtime.last_extras[name], points, atol=1e-5)
    # asking for the points does not change the sampled actions (same seed)
    plain = PolicyRuntime(denoising_bundle, backend, seed=7)(obs)
    np.testing.assert_allclose(chunk.positions, plain.positions, atol=1e-9)


# -- re-exporting older bundles ----------------------------------------------------------------


def _strip_extra_outputs(b: PolicyBundle, directory: Path) -> PolicyBundle:
    """The bundle as the exporter wrote it before feature-point outputs existed."""
    model = onnx.load(str(b.onnx_path))
    keep = [o for o in model.graph.output if o.name == b.spec.output_name]
    del model.graph.output[:]
    model.graph.output.extend(keep)
    card = b.card_path.read_text() if b.card_path is not None else None
    return write_bundle(directory, model, b.spec, b.golden_inputs, b.golden_outputs,
                        weights=load_weights(b), card=card)


@pytest.mark.parametrize('family', ['single_pass', 'denoising'])
def test_reexport_gives_an_old_bundle_the_outputs(family: str, bundle: PolicyBundle,
                                                  denoising_bundle: PolicyBundle,
                                                  tmp_path: Path) -> None:
    source = bundle if family == 'single_pass' else denoising_bundle
    old = _strip_extra_outputs(source, tmp_path / 'old')
    old_backend = OnnxRuntimeBackend(old, providers=CPU_PROVIDERS)
    assert old_backend.extra_outputs == ()
    assert PolicyRuntime(old, old_backend).feature_point_outputs == ()
    new = reexport_bundle(old, tmp_path / 'new')
    assert new.directory == tmp_path / 'new'
    assert _graph_outputs(new) == [new.spec.output_name, *POINTS]
    assert new.spec == old.spec
    assert set(new.golden_inputs) == set(old.golden_inputs)
    for name, array in old.golden_inputs.items():
        np.testing.assert_array_equal(new.golden_inputs[name], array)
    name = old.spec.output_name
    np.testing.assert_allclose(new.golden_outputs[name], old.golden_outputs[name], atol=1e-6)
    assert new.card_path is not None and old.card_path is not None
    assert new.card_path.read_text() == old.card_path.read_text()
    for key, value in load_weights(old).items():
        np.testing.assert_array_equal(load_weights(new)[key], value)
    backend = OnnxRuntimeBackend(new, providers=CPU_PROVIDERS)
    out, extras = backend.run_with(new.golden_inputs, POINTS)
    np.testing.assert_allclose(out, old.golden_outputs[name], atol=1e-5)
    images = [torch.from_numpy(new.golden_inputs[image_input(c)]) for c in CAMERAS]
    for key, points in zip(POINTS, feature_points_px(TorchBackend(new).module, images),
                           strict=True):
        np.testing.assert_allclose(extras[key], points, atol=1e-5)


def test_reexport_in_place(bundle: PolicyBundle, tmp_path: Path) -> None:
    old = _strip_extra_outputs(bundle, tmp_path / 'old')
    new = reexport_bundle(old)
    assert new.directory == old.directory
    reloaded = load_bundle(old.directory)
    assert _graph_outputs(reloaded) == ['action', *POINTS]
    assert reloaded.onnx_sha256 != old.onnx_sha256


def test_reexport_refuses_altered_weights(bundle: PolicyBundle, tmp_path: Path) -> None:
    altered = tmp_path / 'altered'
    shutil.copytree(bundle.directory, altered)
    weights = load_weights(bundle)
    weights['head.0.weight'] = weights['head.0.weight'] * 1.5
    np.savez(altered / 'torch_weights.npz', allow_pickle=False, **weights)
    changed = load_bundle(altered)
    before = changed.onnx_path.read_bytes()
    with pytest.raises(BundleError, match='away from the recorded outputs'):
        reexport_bundle(changed, tmp_path / 'out')
    assert not (tmp_path / 'out').exists()  # nothing written
    with pytest.raises(BundleError, match='not re-exporting'):
        reexport_bundle(changed)  # in place: the bundle stays as it was
    assert changed.onnx_path.read_bytes() == before


def test_reexport_refuses_a_bundle_without_architecture(bundle: PolicyBundle,
                                                        tmp_path: Path) -> None:
    spec: PolicySpec = dataclasses.replace(bundle.spec, architecture=None)
    plain = write_bundle(tmp_path / 'plain', onnx.load(str(bundle.onnx_path)), spec,
                         bundle.golden_inputs, bundle.golden_outputs)
    with pytest.raises(BundleError, match='no torch architecture'):
        reexport_bundle(plain, tmp_path / 'out')


def test_reexport_of_the_bundled_demo_policy_keeps_its_contract(tmp_path: Path) -> None:
    demo = load_bundle(DEMO_BUNDLE)
    old = _strip_extra_outputs(demo, tmp_path / 'old')
    assert OnnxRuntimeBackend(old, providers=CPU_PROVIDERS).extra_outputs == ()
    new = reexport_bundle(old, tmp_path / 'new')
    assert new.spec == demo.spec and new.spec.execution == demo.spec.execution
    assert _graph_outputs(new) == ['action', *POINTS]
    for name, array in demo.golden_inputs.items():
        np.testing.assert_array_equal(new.golden_inputs[name], array)
    np.testing.assert_allclose(new.golden_outputs['action'], demo.golden_outputs['action'],
                               atol=1e-5)
