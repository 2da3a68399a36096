"""A synthetic tabletop camera frame: deterministic, cheap, recognisable.

Stands in for a camera where neither the MuJoCo twin nor hardware is wanted: a table in
perspective, coloured blocks, a target region, a gripper silhouette, a checkerboard patch
and smooth lighting with sensor noise. `t_s` moves the gripper and blocks so a sequence of
frames differs frame to frame.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt


def synthetic_scene(width: int = 640, height: int = 480, *, t_s: float = 0.0,
                    seed: int = 0) -> npt.NDArray[np.uint8]:
    """Render one RGB frame (H, W, 3) uint8.

    Args:
        width: frame width in pixels (at least 32).
        height: frame height in pixels (at least 32).
        t_s: scene time in seconds; objects move smoothly with it.
        seed: seed of the sensor noise.
    """
    if width < 32 or height < 32:
        raise ValueError(f'synthetic frames must be at least 32x32, got {width}x{height}')
    u = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    v = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    wall = np.stack([190 + 30 * u + 0 * v, 200 + 20 * v + 0 * u, 215 - 25 * v + 0 * u], axis=-1)
    image = wall.astype(np.float32)
    s = np.array([width, height], dtype=np.float32)

    def pts(*xy: float) -> npt.NDArray[np.int32]:
        return (np.array(xy, dtype=np.float32).reshape(-1, 2) * s).astype(np.int32)

    table = pts(0.05, 0.42, 0.95, 0.42, 1.0, 1.0, 0.0, 1.0)
    cv2.fillConvexPoly(image, table, (150.0, 112.0, 78.0), lineType=cv2.LINE_AA)
    cv2.ellipse(image, (int(0.72 * width), int(0.74 * height)),
                (int(0.09 * width), int(0.05 * height)), 0, 0, 360, (70.0, 170.0, 90.0), -1,
                cv2.LINE_AA)
    board = pts(0.08, 0.50, 0.26, 0.50, 0.27, 0.66, 0.06, 0.66)
    cv2.fillConvexPoly(image, board, (245.0, 245.0, 245.0), lineType=cv2.LINE_AA)
    for i in range(4):
        for j in range(3):
            if (i + j) % 2:
                continue
            a, b = i / 4.0, j / 3.0
            cell = [board[0] + (board[1] - board[0]) * a + (board[3] - board[0]) * b,
                    board[0] + (board[1] - board[0]) * (a + 0.25) + (board[3] - board[0]) * b,
                    board[0] + (board[1] - board[0]) * (a + 0.25)
                    + (board[3] - board[0]) * (b + 1 / 3),
                    board[0] + (board[1] - board[0]) * a + (board[3] - board[0]) * (b + 1 / 3)]
            cv2.fillConvexPoly(image, np.array(cell, dtype=np.int32), (20.0, 20.0, 20.0))
    wobble = math.sin(2.0 * math.pi * 0.25 * t_s)
    for (cx, cy, size, colour) in ((0.42 + 0.03 * wobble, 0.70, 0.07, (200.0, 40.0, 40.0)),
                                   (0.56, 0.62 - 0.02 * wobble, 0.05, (40.0, 70.0, 200.0))):
        x0, y0 = int((cx - size / 2) * width), int((cy - size / 2) * height)
        x1, y1 = int((cx + size / 2) * width), int((cy + size / 2) * height)
        cv2.rectangle(image, (x0, y0 - int(0.02 * height)), (x1, y1), colour, -1, cv2.LINE_AA)
        top = tuple(min(255.0, c + 45.0) for c in colour)
        cv2.rectangle(image, (x0, y0 - int(0.02 * height)), (x1, y0), top, -1, cv2.LINE_AA)
    gx = 0.5 + 0.12 * wobble
    cv2.rectangle(image, (int((gx - 0.015) * width), 0), (int((gx + 0.015) * width),
                  int(0.30 * height)), (90.0, 90.0, 95.0), -1, cv2.LINE_AA)
    for side in (-1, 1):
        fx = gx + side * 0.035
        cv2.rectangle(image, (int((fx - 0.01) * width), int(0.28 * height)),
                      (int((fx + 0.01) * width), int(0.40 * height)), (60.0, 60.0, 64.0), -1,
                      cv2.LINE_AA)
    light = 0.85 + 0.25 * np.exp(-((u - 0.6) ** 2 + (v - 0.3) ** 2) / 0.18)
    image *= light[..., None]
    noise = np.random.default_rng(seed).normal(0.0, 2.0, size=image.shape)
    return np.asarray(np.clip(image + noise, 0.0, 255.0)).astype(np.uint8)
