"""The policy node's live overlays: what each camera's encoder attends to, off the control path.

The inference thread hands over, at most every 1/`debug_rate_hz` s, the network inputs of the
chunk it just computed and the feature points the backend returned with it (the bundle's extra
ONNX outputs: no second pass). This thread, at a lowered OS priority, draws them and publishes
one sensor_msgs/Image (rgb8) per camera on `~/debug/<camera>`; with `debug_saliency`, it also
runs FullGrad on the bundle's PyTorch twin at most every 1/`debug_saliency_rate_hz` s and
shows the latest map beside the points. A hand-over never waits: a new one replaces one not
yet drawn, so a slow overlay can only skip overlays, never delay a chunk.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from rclpy.node import Node
from sensor_msgs.msg import Image

from visuomotor.explain.live import OverlayPacer, OverlaySettings
from visuomotor.explain.views import PolicyViews
from visuomotor.params import ParameterError
from visuomotor.policy.bundle import PolicyBundle
from visuomotor.ros.image_conversion import numpy_to_image
from visuomotor.ros.stamps import ns_to_stamp

#: Nice increment of the overlay thread (Linux: per thread), so it yields to inference.
OVERLAY_NICENESS = 10


@dataclass
class _Handover:
    stamp_s: float
    inputs: Mapping[str, npt.NDArray[np.float32]]
    extras: Mapping[str, npt.NDArray[np.float32]]


class DebugOverlays:
    """Publishes overlays for a node (see the module docstring)."""

    def __init__(self, node: Node, bundle: PolicyBundle, settings: OverlaySettings,
                 now: Callable[[], float], *, network_points: bool,
                 torch_threads: int = 1) -> None:
        """Build the views and start the thread.

        Args:
            node: the policy node (publishers, logger).
            bundle: its bundle.
            settings: the debug_* parameters.
            now: the node's clock (s).
            network_points: the backend returns the feature points with each inference; the
                PyTorch twin is then built only for saliency.
            torch_threads: torch's (process-wide) thread count for the twin; 0 leaves it as
                the node set it (when the control backend is torch itself).
        """
        self.settings = settings
        self._now = now
        self._logger = node.get_logger()
        if settings.saliency and bundle.weights_path is None:
            raise ParameterError('debug_saliency', 'the bundle has no torch_weights.npz, so '
                                 'there is no PyTorch twin to compute saliency with; re-export '
                                 'the bundle with its weights or set debug_saliency:=false')
        twin = bundle.weights_path is not None and (settings.saliency or not network_points)
        self.views = PolicyViews(bundle, twin=twin, threads=torch_threads)
        self.publishers = {c.name: node.create_publisher(Image, f'~/debug/{c.name}', 2)
                           for c in bundle.spec.cameras}
        self.pacer = OverlayPacer(settings)
        self._saliency: dict[str, npt.NDArray[np.float32]] = {}
        self._slot: _Handover | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.published = 0
        self.skipped = 0
        self._thread = threading.Thread(target=self._run, name='policy-overlays', daemon=True)
        self._thread.start()

    def due(self, now_s: float) -> bool:
        """Whether the next inference should keep its inputs and feature points for us."""
        return self.pacer.due(now_s)

    def hand_over(self, stamp_s: float, now_s: float,
                  inputs: Mapping[str, npt.NDArray[np.float32]],
                  extras: Mapping[str, npt.NDArray[np.float32]]) -> None:
        """Called by the inference thread; returns at once."""
        self.pacer.taken(now_s)
        with self._lock:
            if self._slot is not None:
                self.skipped += 1
            self._slot = _Handover(stamp_s, inputs, extras)
        self._wake.set()

    def _run(self) -> None:
        with contextlib.suppress(OSError, AttributeError):  # Linux: this thread alone
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), OVERLAY_NICENESS)
        while not self._stop.is_set():
            if not self._wake.wait(0.2):
                continue
            self._wake.clear()
            with self._lock:
                item, self._slot = self._slot, None
            if item is None:
                continue
            try:
                self._draw(item)
            except Exception as exc:  # noqa: BLE001 - an overlay must never stop the node
                self._logger.error(f'debug overlay failed (the policy keeps running): '
                                   f'{type(exc).__name__}: {exc}', throttle_duration_sec=5.0)

    def _draw(self, item: _Handover) -> None:
        fresh_saliency = self.pacer.saliency_due(self._now())
        views = self.views.views(item.inputs, extras=item.extras, saliency=fresh_saliency)
        if fresh_saliency:
            self._saliency = {v.camera: v.saliency for v in views if v.saliency is not None}
        stamp = ns_to_stamp(int(round(item.stamp_s * 1e9)))
        for view in views:
            if view.saliency is None and view.camera in self._saliency:
                view = replace(view, saliency=self._saliency[view.camera])
            image = view.render(self.settings.scale)
            self.publishers[view.camera].publish(numpy_to_image(image, 'rgb8', stamp=stamp,
                                                                frame_id=view.camera))
        self.published += 1

    def close(self) -> None:
        """Stop the thread."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=2.0)

