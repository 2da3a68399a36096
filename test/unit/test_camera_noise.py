"""The twin's sensor noise: still scenes never look frozen, and the noise is what was asked."""

from __future__ import annotations

import numpy as np

from visuomotor.cameras.sync import fingerprint
from visuomotor.sim.camera_noise import CameraNoise


def test_a_still_scene_gives_distinct_frames_with_the_requested_noise() -> None:
    noise = CameraNoise(2.0, seed=1)
    still = np.full((48, 64, 3), 128, np.uint8)
    frames = [noise(still) for _ in range(40)]
    prints = [fingerprint(f) for f in frames]
    assert all(a != b for a, b in zip(prints, prints[1:], strict=False))  # never "frozen"
    deviation = np.stack(frames).astype(np.float64) - 128.0
    assert abs(deviation.mean()) < 0.1 and 1.8 < deviation.std() < 2.2
    assert all(f.dtype == np.uint8 and f.shape == still.shape for f in frames)


def test_noise_saturates_at_the_ends_of_the_range_and_can_be_off() -> None:
    noise = CameraNoise(5.0)
    black, white = np.zeros((8, 8, 3), np.uint8), np.full((8, 8, 3), 255, np.uint8)
    assert noise(black).min() == 0 and noise(white).max() == 255  # clipped, no wrap-around
    assert noise(black).max() > 0 and noise(white).min() < 255
    off = CameraNoise(0.0)
    assert off(white) is white
