"""Drawing feature points and saliency on what the policy sees (rgb8 images, OpenCV).

Each feature point keeps one colour across frames and cameras (as in seed 002, Fig. 6), so a
point can be followed through an episode. Saliency is blended as a colour map (red: most
influential). Images are enlarged by an integer factor with nearest-neighbour sampling first,
so the network's pixels stay visible and the marks stay sharp.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]


def point_colors(count: int) -> npt.NDArray[np.uint8]:
    """`count` distinguishable rgb colours, the same for the same index every time."""
    hues = (np.arange(count) * 0.61803398875 % 1.0 * 180).astype(np.uint8)
    hsv = np.stack([hues, np.full(count, 220, np.uint8), np.full(count, 255, np.uint8)], 1)
    return np.asarray(cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0], dtype=np.uint8)


def as_rgb(image: npt.NDArray[np.uint8]) -> Image:
    """A copy as (H, W, 3) rgb8 (mono images are repeated)."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return np.array(image[:, :, :3], dtype=np.uint8)


def enlarge(image: Image, scale: int) -> Image:
    """Nearest-neighbour enlargement by an integer factor."""
    if scale == 1:
        return image
    return np.asarray(cv2.resize(image, (image.shape[1] * scale, image.shape[0] * scale),
                                 interpolation=cv2.INTER_NEAREST), dtype=np.uint8)


def draw_feature_points(image: Image, points_px: npt.NDArray[np.floating], *, scale: int = 4,
                        trail: npt.NDArray[np.floating] | None = None) -> Image:
    """The image enlarged `scale` times with each point as a filled dot (index colours).

    Args:
        image: (H, W, 3) or (H, W) uint8, the network's input as displayed.
        points_px: (K, 2) pixel coordinates in `image` (x right, y down).
        scale: integer enlargement (nearest neighbour) before drawing.
        trail: optional (S, K, 2) earlier positions, drawn as fading lines.
    """
    out = enlarge(as_rgb(image), scale)
    points = np.asarray(points_px, dtype=np.float64)
    colors = point_colors(len(points))
    centre = (points + 0.5) * scale  # pixel centres
    radius = max(2, scale)
    if trail is not None and len(trail) > 1:
        path = (np.asarray(trail, dtype=np.float64) + 0.5) * scale
        for k in range(points.shape[0]):
            pts = np.round(path[:, k] * 4).astype(np.int32)  # 2 fractional bits
            cv2.polylines(out, [pts], False, tuple(int(c) for c in colors[k] // 2), 1,
                          cv2.LINE_AA, shift=2)
    for k, (x, y) in enumerate(centre):
        color = tuple(int(c) for c in colors[k])
        cv2.circle(out, (int(round(x * 4)), int(round(y * 4))), radius * 4, color, -1,
                   cv2.LINE_AA, shift=2)
        cv2.circle(out, (int(round(x * 4)), int(round(y * 4))), radius * 4, (0, 0, 0), 1,
                   cv2.LINE_AA, shift=2)
    return out


def draw_saliency(image: Image, saliency: npt.NDArray[np.floating], *, scale: int = 4,
                  alpha: float = 0.55) -> Image:
    """The image enlarged `scale` times with the saliency map (H, W in [0, 1]) blended in."""
    base = enlarge(as_rgb(image), scale)
    s = np.clip(np.asarray(saliency, dtype=np.float32), 0.0, 1.0)
    if s.shape != image.shape[:2]:
        raise ValueError(f'saliency map {s.shape} does not match the image '
                         f'{image.shape[:2]}')
    heat = cv2.applyColorMap((s * 255).astype(np.uint8), cv2.COLORMAP_JET)  # bgr
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
    heat = cv2.resize(heat, (base.shape[1], base.shape[0]), interpolation=cv2.INTER_LINEAR)
    blended = cv2.addWeighted(base, 1.0 - alpha, heat, alpha, 0.0)
    return np.asarray(blended, dtype=np.uint8)


def label(image: Image, text: str) -> Image:
    """A copy with a caption bar above the image."""
    bar = np.zeros((16, image.shape[1], 3), np.uint8)
    cv2.putText(bar, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                cv2.LINE_AA)
    return np.vstack([bar, image])


def hstack(images: list[Image], gap: int = 4) -> Image:
    """Images side by side (padded to the tallest), separated by `gap` black pixels."""
    height = max(i.shape[0] for i in images)
    parts: list[Image] = []
    for index, image in enumerate(images):
        if index:
            parts.append(np.zeros((height, gap, 3), np.uint8))
        pad = height - image.shape[0]
        parts.append(np.pad(image, ((0, pad), (0, 0), (0, 0))) if pad else image)
    return np.hstack(parts)
