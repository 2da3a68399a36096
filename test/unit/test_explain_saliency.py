"""FullGrad saliency (visuomotor.explain.saliency) and the per-camera views (explain.views).

What a user asking "what in the image drives the action" checks:

- FullGrad gives one map per camera, the shape of that camera's input (B, T, H, W), in
  [0, 1], finite, not constant, and the same map twice for the same inputs, for the
  registered heads (ChunkMLP, ChunkTransformer, DenoisingMLP) and both encoders; explaining
  one action entry (`action_index`) works too;
- the saliency concentrates where the image matters: with an encoder that only sees a red
  square, the map's peak and its mass sit on the square and follow it;
- `PolicyViews.views` shows, per camera, exactly the newest frame the policy saw (the raw
  frame, through the display inverse of the preprocessing), its feature points and its
  saliency map; `CameraView.render` enlarges by `scale` and adds a caption bar, with the
  points drawn in their colours and saliency in a red (high) to blue (low) colour map.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch
from policy_helpers import CPU_PROVIDERS, observation, random_inputs, red_square_encoder
from torch import nn

from visuomotor.explain.occlusion import agreement, occlusion_sensitivity
from visuomotor.explain.overlay import point_colors
from visuomotor.explain.saliency import FullGrad
from visuomotor.explain.views import CameraView, PolicyViews
from visuomotor.policy.backends.onnxruntime_backend import OnnxRuntimeBackend
from visuomotor.policy.backends.torch_backend import TorchBackend
from visuomotor.policy.bundle import PolicyBundle
from visuomotor.policy.runtime import PolicyRuntime
from visuomotor.policy.spec import feature_points_output, image_input
from visuomotor.preprocessing.display import to_display_image
from visuomotor.training.export import untrained_bundle
from visuomotor.training.nets import ChunkMLP, LevineEncoder, build_architecture

pytestmark = [
    pytest.mark.filterwarnings('ignore:You are using the legacy TorchScript:DeprecationWarning'),
    pytest.mark.filterwarnings('ignore:The feature will be removed:DeprecationWarning'),
    pytest.mark.filterwarnings('ignore:Converting a tensor to a Python boolean'),
]

CAMERAS = ('scene_camera', 'wrist_camera')
CAPTION = 16  # rows of the caption bar `label` adds
GAP = 4  # columns between side-by-side panels


@pytest.fixture(scope='module')
def bundle(tmp_path_factory: pytest.TempPathFactory) -> PolicyBundle:
    """The untrained single-pass bundle (ChunkMLP, Levine encoders, 32x32, two cameras)."""
    return untrained_bundle(tmp_path_factory.mktemp('untrained'))


def _tensors(inputs: dict[str, npt.NDArray[np.float32]], names: list[str]
             ) -> list[torch.Tensor]:
    return [torch.from_numpy(inputs[n]) for n in names]


def _check_maps(maps: list[npt.NDArray[np.float32]], shapes: list[tuple[int, ...]]) -> None:
    """One (B, T, H, W) map per camera, finite, in [0, 1], not constant in any frame."""
    assert [m.shape for m in maps] == shapes
    for m in maps:
        assert m.dtype == np.float32
        assert np.isfinite(m).all()
        assert m.min() >= 0.0 and m.max() <= 1.0
        per_frame = m.reshape(-1, m.shape[-2] * m.shape[-1])
        assert (per_frame.max(axis=1) - per_frame.min(axis=1) > 0.5).all()


def test_fullgrad_on_the_untrained_bundles_twin(bundle: PolicyBundle) -> None:
    module = TorchBackend(bundle).module
    names = list(bundle.spec.input_shapes())
    inputs = _tensors(bundle.golden_inputs, names)
    fullgrad = FullGrad(module)
    maps = fullgrad(inputs)
    _check_maps(maps, [(1, 2, 32, 32), (1, 2, 32, 32)])
    again = fullgrad(inputs)
    for first, second in zip(maps, again, strict=True):
        np.testing.assert_array_equal(first, second)  # deterministic
    # a fresh explainer on the same weights gives the same maps, and the inputs are untouched
    np.testing.assert_array_equal(FullGrad(module)(inputs)[1], maps[1])
    np.testing.assert_array_equal(inputs[0].numpy(), bundle.golden_inputs[names[0]])
    assert not inputs[0].requires_grad


def test_fullgrad_per_sample_with_a_batch(bundle: PolicyBundle) -> None:
    module = TorchBackend(bundle).module
    names = list(bundle.spec.input_shapes())
    batch = random_inputs(bundle.spec, seed=3, batch=3)
    maps = FullGrad(module)(_tensors(batch, names))
    _check_maps(maps, [(3, 2, 32, 32), (3, 2, 32, 32)])
    # a sample's map does not depend on the others in the batch
    alone = FullGrad(module)(_tensors({n: a[1:2] for n, a in batch.items()}, names))
    for together, single in zip(maps, alone, strict=True):
        np.testing.assert_allclose(together[1:2], single, atol=1e-5)


def test_fullgrad_of_one_action_entry(bundle: PolicyBundle) -> None:
    module = TorchBackend(bundle).module
    inputs = _tensors(bundle.golden_inputs, list(bundle.spec.input_shapes()))
    by_entry = [FullGrad(module, action_index=i)(inputs) for i in (0, 7)]
    for maps in by_entry:
        _check_maps(maps, [(1, 2, 32, 32), (1, 2, 32, 32)])
    np.testing.assert_array_equal(FullGrad(module, action_index=7)(inputs)[0], by_entry[1][0])
    # different entries of the chunk are driven by different pixels
    assert np.abs(by_entry[0][0] - by_entry[1][0]).max() > 0.05


def test_fullgrad_with_the_transformer_head() -> None:
    cameras = [{'name': c, 'channels': 3, 'height': 32, 'width': 32} for c in CAMERAS]
    torch.manual_seed(1)
    module = build_architecture('chunk_transformer', {
        'cameras': cameras, 'history': 2, 'proprio_dim': 7, 'action_dim': 8,
        'chunk_length': 4, 'width': 32, 'heads': 2, 'layers': 1, 'feedforward': 32})
    module.train()  # FullGrad switches to eval itself: dropout must not make maps random
    images = [torch.rand(2, 2, 3, 32, 32) for _ in CAMERAS]
    inputs = [*images, torch.randn(2, 2, 7)]
    fullgrad = FullGrad(module)
    assert not module.training
    maps = fullgrad(inputs)
    _check_maps(maps, [(2, 2, 32, 32), (2, 2, 32, 32)])
    np.testing.assert_array_equal(fullgrad(inputs)[0], maps[0])


def test_fullgrad_with_the_resnet18_gn_encoder() -> None:
    cameras = [{'name': 'scene', 'channels': 3, 'height': 40, 'width': 40}]
    torch.manual_seed(2)
    module = build_architecture('chunk_mlp', {
        'cameras': cameras, 'history': 1, 'proprio_dim': 7, 'action_dim': 8,
        'chunk_length': 4, 'encoder': 'resnet18_gn', 'encoder_kwargs': {'num_keypoints': 8},
        'hidden': [16]})
    inputs = [torch.rand(1, 1, 3, 40, 40), torch.randn(1, 1, 7)]
    fullgrad = FullGrad(module)
    # the bias terms: GroupNorm shifts and the keypoint conv (the trunk's convs have none)
    assert any(isinstance(layer, nn.GroupNorm) for layer in fullgrad.layers[0])
    maps = fullgrad(inputs)
    _check_maps(maps, [(1, 1, 40, 40)])
    np.testing.assert_array_equal(fullgrad(inputs)[0], maps[0])


def test_fullgrad_of_a_denoising_twin(tmp_path: Path) -> None:
    ddim = untrained_bundle(tmp_path / 'ddim', family='denoising')
    inputs = _tensors(ddim.golden_inputs, list(ddim.spec.input_shapes()))
    maps = FullGrad(TorchBackend(ddim).module)(inputs)
    _check_maps(maps, [(1, 2, 32, 32), (1, 2, 32, 32)])
    views = PolicyViews(ddim).views(  # the views fill in a zero chunk and the middle step
        {k: v for k, v in ddim.golden_inputs.items() if k.startswith('image.') or
         k == 'proprio'})
    assert [v.camera for v in views] == list(CAMERAS)
    assert all(v.saliency is not None and v.saliency.shape == (32, 32) for v in views)


def test_fullgrad_refuses_a_network_without_encoders() -> None:
    with pytest.raises(ValueError, match='spatial-softmax'):
        FullGrad(nn.Sequential(nn.Linear(4, 4)))


# -- a red square: saliency where the image matters --------------------------------------------


def _red_square_module() -> ChunkMLP:
    """A ChunkMLP (random head) whose encoder only responds to a red square (map 0).

    Same hand-set weights as in test_explain_points: conv1 channel 0 sums R - G - B over its
    7x7 window, conv2 and conv3 pass channel 0 through with their centre tap, the rest is zero
    (no biases, so FullGrad is its input-gradient term), spatial-softmax temperature 0.1.
    """
    torch.manual_seed(0)
    cameras = [{'name': 'scene', 'channels': 3, 'height': 64, 'width': 64}]
    module = ChunkMLP(cameras, 1, 7, 8, 4, encoder='levine', hidden=[16]).eval()
    encoder = module.condition.encoders[0]
    assert isinstance(encoder, LevineEncoder)
    red_square_encoder(encoder)
    return module


def _square_image(cx: int, cy: int) -> torch.Tensor:
    """(1, 1, 3, 64, 64): a 9x9 red square centred on (cx, cy), noisy grey elsewhere."""
    rng = np.random.default_rng(cx * 100 + cy)
    image = np.clip(128 + rng.normal(0.0, 6.0, (64, 64, 3)), 0, 255)
    image[cy - 4:cy + 5, cx - 4:cx + 5] = (230, 20, 20)
    return torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1)[None, None]


# Even centres: the square's plateau then covers two map positions (odd pixels) per axis, so
# the feature point moves when the square does. Centred on an odd pixel, one map position
# wins the softmax outright (saturated: gradients underflow to 0) and there is nothing to show.
@pytest.mark.parametrize(('cx', 'cy'), [(20, 24), (32, 32), (46, 16), (40, 48)])
def test_saliency_sits_on_the_red_square(cx: int, cy: int) -> None:
    module = _red_square_module()
    (maps,) = FullGrad(module)([_square_image(cx, cy), torch.zeros(1, 1, 7)])
    saliency = maps[0, 0]
    assert saliency.max() == pytest.approx(1.0)
    peak_y, peak_x = np.unravel_index(int(saliency.argmax()), saliency.shape)
    assert abs(peak_x - cx) <= 4 and abs(peak_y - cy) <= 4  # the peak is on the square
    ys, xs = np.mgrid[0:64, 0:64]
    mass = saliency.sum()
    centroid = (float((saliency * xs).sum() / mass), float((saliency * ys).sum() / mass))
    assert abs(centroid[0] - cx) < 1.5 and abs(centroid[1] - cy) < 1.5
    on_square = saliency[cy - 5:cy + 6, cx - 5:cx + 6].sum()  # the square and 1 px around
    assert on_square / mass > 0.95



@pytest.mark.parametrize(('cx', 'cy'), [(20, 24), (46, 16)])
def test_occlusion_finds_the_red_square_and_agrees_with_fullgrad(cx: int, cy: int) -> None:
    module = _red_square_module()
    inputs = [_square_image(cx, cy), torch.zeros(1, 1, 7)]
    occluded = occlusion_sensitivity(module, inputs, patch=8, stride=2)
    assert occluded.shape == (64, 64) and occluded.dtype == np.float32
    assert occluded.min() == 0.0 and occluded.max() == pytest.approx(1.0)
    peak_y, peak_x = np.unravel_index(int(occluded.argmax()), occluded.shape)
    assert abs(peak_x - cx) <= 6 and abs(peak_y - cy) <= 6
    # hiding grey far from the square changes nothing
    far = occluded[(cy + 32) % 64 - 4:(cy + 32) % 64 + 4, (cx + 32) % 64 - 4:(cx + 32) % 64 + 4]
    assert far.max() < 0.05
    (maps,) = FullGrad(module)(inputs)
    assert agreement(maps[0, 0], occluded) > 0.5
    np.testing.assert_array_equal(occluded, occlusion_sensitivity(module, inputs, patch=8,
                                                                  stride=2))


def test_occlusion_of_the_second_camera_has_that_cameras_shape() -> None:
    torch.manual_seed(1)
    cameras = [{'name': 'scene', 'channels': 3, 'height': 64, 'width': 64},
               {'name': 'wrist', 'channels': 3, 'height': 32, 'width': 32}]
    module = ChunkMLP(cameras, 1, 7, 8, 4, encoder='levine', hidden=[16]).eval()
    inputs = [torch.rand(1, 1, 3, 64, 64), torch.rand(1, 1, 3, 32, 32), torch.zeros(1, 1, 7)]
    occluded = occlusion_sensitivity(module, inputs, camera=1, patch=6, stride=3)
    assert occluded.shape == (32, 32)
    assert occluded.max() == pytest.approx(1.0)  # the wrist image moves the output


def test_occlusion_refuses_batches_and_patches_that_do_not_fit() -> None:
    module = _red_square_module()
    with pytest.raises(ValueError, match=r'image input 0 must be \(1, T, C, H, W\)'):
        occlusion_sensitivity(module, [torch.rand(2, 1, 3, 64, 64), torch.zeros(2, 1, 7)])
    with pytest.raises(ValueError, match='patch 80 and stride 4 must fit a 64x64 image'):
        occlusion_sensitivity(module, [_square_image(32, 32), torch.zeros(1, 1, 7)], patch=80)


def test_agreement_is_the_correlation_of_two_maps() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((16, 16))
    assert agreement(a, a) == pytest.approx(1.0)
    assert agreement(a, 1.0 - a) == pytest.approx(-1.0)
    assert np.isnan(agreement(a, np.zeros((16, 16))))
    with pytest.raises(ValueError, match='differ in shape'):
        agreement(a, a[:8])

# -- views ------------------------------------------------------------------------------------


def test_views_show_what_the_policy_saw(bundle: PolicyBundle) -> None:
    spec = bundle.spec
    obs = observation(spec, seed=4)
    runtime = PolicyRuntime(bundle, OnnxRuntimeBackend(bundle, providers=CPU_PROVIDERS))
    runtime(obs, extras=True)
    policy_views = PolicyViews(bundle)
    assert policy_views.has_points
    views = policy_views.views(runtime.last_inputs)
    assert [v.camera for v in views] == list(CAMERAS)
    points = policy_views.points(runtime.last_inputs)
    maps = policy_views.saliency(runtime.last_inputs)
    for view, camera in zip(views, spec.cameras, strict=True):
        assert view.image.shape == (32, 32, 3) and view.image.dtype == np.uint8
        # the newest raw frame, exactly: preprocessing inverted for display
        np.testing.assert_array_equal(view.image, obs.frames[camera.name][-1])
        shown, encoding = to_display_image(runtime.last_inputs[image_input(camera.name)][0, -1],
                                           camera.preprocess)
        assert encoding == 'rgb8'
        np.testing.assert_array_equal(view.image, shown)
        assert view.points_px is not None and view.points_px.shape == (32, 2)
        assert np.all((view.points_px >= 0.0) & (view.points_px <= 31.0))
        np.testing.assert_allclose(view.points_px, points[camera.name][-1])
        assert view.saliency is not None and view.saliency.shape == (32, 32)
        assert view.saliency.min() >= 0.0 and view.saliency.max() <= 1.0
        np.testing.assert_array_equal(view.saliency, maps[camera.name][-1])
        # the backend's extra outputs give the same points without a second pass
        extra = runtime.last_extras[feature_points_output(camera.name)][0, -1]
        np.testing.assert_allclose(view.points_px, extra, atol=1e-4)
    without = policy_views.views(runtime.last_inputs, saliency=False)
    assert all(v.saliency is None and v.points_px is not None for v in without)


def test_views_without_the_twin_use_the_backends_points(bundle: PolicyBundle) -> None:
    runtime = PolicyRuntime(bundle, OnnxRuntimeBackend(bundle, providers=CPU_PROVIDERS))
    runtime(observation(bundle.spec, seed=6), extras=True)
    light = PolicyViews(bundle, twin=False)
    views = light.views(runtime.last_inputs, extras=runtime.last_extras)
    for view in views:
        assert view.saliency is None  # no twin: no backward pass
        assert view.points_px is not None
        np.testing.assert_array_equal(
            view.points_px, runtime.last_extras[feature_points_output(view.camera)][0, -1])
    bare = light.views(runtime.last_inputs)
    assert all(v.points_px is None and v.saliency is None for v in bare)


def _grey_view(points: npt.NDArray[np.float64] | None,
               saliency: npt.NDArray[np.float32] | None) -> CameraView:
    return CameraView('scene_camera', np.full((24, 20, 3), 128, np.uint8), points, saliency)


@pytest.mark.parametrize('scale', [1, 3, 4])
def test_render_enlarges_by_scale_with_a_caption(scale: int) -> None:
    points = np.array([[2.0, 3.0], [15.0, 20.0]])
    saliency = np.zeros((24, 20), np.float32)
    both = _grey_view(points, saliency).render(scale)
    assert both.dtype == np.uint8
    assert both.shape == (24 * scale + CAPTION, 2 * 20 * scale + GAP, 3)
    assert _grey_view(points, None).render(scale).shape == (24 * scale + CAPTION, 20 * scale, 3)
    assert _grey_view(None, saliency).render(scale).shape == (24 * scale + CAPTION,
                                                              20 * scale, 3)
    bare = _grey_view(None, None).render(scale)  # just the image, captioned
    assert bare.shape == (24 * scale + CAPTION, 20 * scale, 3)
    np.testing.assert_array_equal(bare[CAPTION:], 128)


def test_render_draws_points_in_their_colours_on_the_enlarged_image() -> None:
    image = np.zeros((24, 20, 3), np.uint8)
    image[:, :, 1] = np.arange(20, dtype=np.uint8)[None, :] * 10  # a green ramp along x
    view = CameraView('scene_camera', image, np.array([[2.0, 3.0], [15.0, 20.0]]), None)
    out = view.render(4)[CAPTION:]
    colors = point_colors(2)
    for (x, y), color in zip([(2, 3), (15, 20)], colors, strict=True):
        centre = out[y * 4 + 2, x * 4 + 2]  # the middle of the enlarged pixel
        np.testing.assert_array_equal(centre, color)
    # far from the points, the image enlarged with nearest-neighbour sampling
    np.testing.assert_array_equal(out[40:44, 40:44], np.broadcast_to(image[10, 10], (4, 4, 3)))


def test_render_colours_saliency_red_where_high() -> None:
    saliency = np.zeros((24, 20), np.float32)
    saliency[:, 10:] = 1.0
    out = _grey_view(None, saliency).render(2)[CAPTION:].astype(int)
    hot, cold = out[20, 36], out[20, 4]
    assert hot[0] > hot[2] + 40  # red over blue where the map is 1
    assert cold[2] > cold[0] + 40  # blue where it is 0
