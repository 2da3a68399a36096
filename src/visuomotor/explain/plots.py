"""Feature-point trajectories over an episode, drawn with OpenCV (no plotting library).

`trajectory_figure` puts side by side: the episode's first frame with every point's path
(seed 002, Fig. 6 style, one colour per point), then x(t) and y(t) of every point.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from visuomotor.explain.overlay import Image, draw_feature_points, hstack, label, point_colors


def _axes_plot(values: npt.NDArray[np.float64], limit: float, title: str, fps: float,
               size: tuple[int, int] = (320, 240)) -> Image:
    """Values (T, K) against time, one line per point, y axis 0..limit (pixels)."""
    width, height = size
    left, bottom, top, right = 34, 22, 6, 6
    plot = np.full((height, width, 3), 255, np.uint8)
    x0, x1, y0, y1 = left, width - right, height - bottom, top
    cv2.rectangle(plot, (x0, y1), (x1, y0), (0, 0, 0), 1)
    steps = len(values)
    colors = point_colors(values.shape[1])
    xs = x0 + (x1 - x0) * np.arange(steps) / max(1, steps - 1)
    for k in range(values.shape[1]):
        ys = y0 - (y0 - y1) * np.clip(values[:, k] / limit, 0.0, 1.0)
        pts = np.round(np.stack([xs, ys], 1) * 4).astype(np.int32)
        cv2.polylines(plot, [pts], False, tuple(int(c) for c in colors[k]), 1, cv2.LINE_AA,
                      shift=2)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for frac in (0.0, 0.5, 1.0):
        y = int(round(y0 - (y0 - y1) * frac))
        cv2.putText(plot, f'{limit * frac:.0f}', (2, y + 4), font, 0.33, (0, 0, 0), 1,
                    cv2.LINE_AA)
    duration = (steps - 1) / fps if fps > 0 else float(steps - 1)
    cv2.putText(plot, '0 s', (x0, height - 6), font, 0.33, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(plot, f'{duration:.1f} s', (x1 - 34, height - 6), font, 0.33, (0, 0, 0), 1,
                cv2.LINE_AA)
    return label(plot, title)


def trajectory_figure(first_frame: Image, points_px: npt.NDArray[np.floating], fps: float,
                      camera: str, scale: int = 3) -> Image:
    """The figure for one camera.

    Args:
        first_frame: (H, W, 3) rgb8, the network's view at the episode's first rendered row.
        points_px: (T, K, 2) feature points of every rendered row, in that image's pixels.
        fps: rendered rows per second (for the time axis).
        camera: for the captions.
        scale: enlargement of the frame.
    """
    points = np.asarray(points_px, dtype=np.float64)
    height, width = first_frame.shape[:2]
    trail = draw_feature_points(first_frame, points[0], scale=scale, trail=points)
    panels = [label(trail, f'{camera}: {points.shape[1]} feature point paths'),
              _axes_plot(points[:, :, 0], float(width), f'{camera}: x (px) over time', fps),
              _axes_plot(points[:, :, 1], float(height), f'{camera}: y (px) over time', fps)]
    return hstack(panels)
