"""Feature points and saliency of one policy bundle, on its own network inputs.

`PolicyViews` holds the bundle's PyTorch twin (its registered architecture with the bundle's
weights, when the bundle has them) and turns network inputs, i.e. what `PolicyRuntime`
fed the backend, into one `CameraView` per camera: the newest frame as the policy sees it
(preprocessing inverted for display), its feature points in that image's pixels and its
FullGrad saliency map. Feature points come from the backend's extra ONNX outputs when the
caller has them (the live node: no second pass), otherwise from the twin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.explain.overlay import Image, draw_feature_points, draw_saliency, hstack, label
from visuomotor.policy.bundle import PolicyBundle
from visuomotor.policy.spec import (
    NOISY_ACTION_INPUT,
    TIMESTEP_INPUT,
    feature_points_output,
    image_input,
)
from visuomotor.preprocessing.display import to_display_image


@dataclass(frozen=True)
class CameraView:
    """One camera at one observation.

    Attributes:
        camera: its name in the spec.
        image: (H, W, 3) rgb8, the newest frame as the network sees it.
        points_px: (K, 2) feature points in `image` pixels, or None.
        saliency: (H, W) in [0, 1], or None.
    """

    camera: str
    image: Image
    points_px: npt.NDArray[np.float64] | None
    saliency: npt.NDArray[np.float32] | None

    def render(self, scale: int = 4, trail: npt.NDArray[np.floating] | None = None) -> Image:
        """Feature points and saliency side by side (what exists), captioned."""
        panels = []
        if self.points_px is not None:
            panels.append(label(draw_feature_points(self.image, self.points_px, scale=scale,
                                                    trail=trail),
                                f'{self.camera}: {len(self.points_px)} feature points'))
        if self.saliency is not None:
            panels.append(label(draw_saliency(self.image, self.saliency, scale=scale),
                                f'{self.camera}: FullGrad saliency'))
        if not panels:
            panels.append(label(draw_saliency(self.image, np.zeros(self.image.shape[:2]),
                                              scale=scale, alpha=0.0), self.camera))
        return hstack(panels)


class PolicyViews:
    """What a bundle's encoders attend to (see the module docstring).

    Raises:
        visuomotor.policy.errors.BackendError: `twin` is requested but the bundle has no
            torch weights or its architecture cannot be rebuilt.
    """

    def __init__(self, bundle: PolicyBundle, *, twin: bool = True,
                 action_index: int | None = None, threads: int = 0) -> None:
        self.bundle = bundle
        self.spec = bundle.spec
        self.module: Any = None
        self.fullgrad: Any = None
        self.has_points = False
        if twin:
            from visuomotor.explain.saliency import FullGrad
            from visuomotor.policy.backends.torch_backend import TorchBackend
            from visuomotor.training.export import has_feature_points

            self.module = TorchBackend(bundle, threads=threads).module
            self.fullgrad = FullGrad(self.module, action_index=action_index)
            self.has_points = has_feature_points(self.module)

    def _tensors(self, inputs: Mapping[str, npt.NDArray[np.float32]]) -> list[Any]:
        import torch

        tensors = []
        for name, shape in self.spec.input_shapes().items():
            if name in inputs:
                array = np.asarray(inputs[name], dtype=np.float32)
            elif name == NOISY_ACTION_INPUT:
                array = np.zeros(shape, np.float32)  # explain the denoiser at a zero chunk
            elif name == TIMESTEP_INPUT:
                steps = self.spec.scheduler.train_steps if self.spec.scheduler else 1
                array = np.array([steps // 2], np.float32)
            else:
                raise KeyError(f'network input {name!r} missing')
            tensors.append(torch.from_numpy(np.ascontiguousarray(array)))
        return tensors

    def points(self, inputs: Mapping[str, npt.NDArray[np.float32]]
               ) -> dict[str, npt.NDArray[np.float64]]:
        """Per camera, (T, K, 2) feature points in network-input pixels (batch of one)."""
        if self.module is None or not self.has_points:
            return {}
        from visuomotor.explain.feature_points import feature_points_px

        tensors = self._tensors(inputs)[:len(self.spec.cameras)]
        return {c.name: p[0] for c, p in
                zip(self.spec.cameras, feature_points_px(self.module, tensors), strict=True)}

    def saliency(self, inputs: Mapping[str, npt.NDArray[np.float32]]
                 ) -> dict[str, npt.NDArray[np.float32]]:
        """Per camera, (T, H, W) FullGrad maps in [0, 1] (batch of one)."""
        if self.fullgrad is None:
            return {}
        maps = self.fullgrad(self._tensors(inputs))
        return {c.name: m[0] for c, m in zip(self.spec.cameras, maps, strict=True)}

    def views(self, inputs: Mapping[str, npt.NDArray[np.float32]], *,
              extras: Mapping[str, npt.NDArray[np.float32]] | None = None,
              saliency: bool = True) -> list[CameraView]:
        """One view per camera of the newest history frame.

        Args:
            inputs: the network inputs of one observation (batch of one).
            extras: the backend's extra outputs of the same pass (`feature_points.<camera>`,
                (1, T, K, 2)); without them the twin computes the points.
            saliency: also compute FullGrad maps (a backward pass of the twin).
        """
        extras = extras or {}
        points: dict[str, npt.NDArray[np.float64]] = {}
        for camera in self.spec.cameras:
            key = feature_points_output(camera.name)
            if key in extras:
                points[camera.name] = np.asarray(extras[key][0], dtype=np.float64)
        if len(points) < len(self.spec.cameras):
            points = self.points(inputs)
        maps = self.saliency(inputs) if saliency else {}
        out = []
        for camera in self.spec.cameras:
            frames = np.asarray(inputs[image_input(camera.name)])[0]
            image, _ = to_display_image(frames[-1], camera.preprocess)
            rgb = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
            if camera.preprocess.color == 'bgr':
                rgb = rgb[:, :, ::-1]
            out.append(CameraView(
                camera.name, np.ascontiguousarray(rgb),
                points[camera.name][-1] if camera.name in points else None,
                maps[camera.name][-1] if camera.name in maps else None))
        return out
