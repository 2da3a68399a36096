"""Sensor noise for the twin's rendered frames (pure).

Real sensors never deliver two identical frames; a noiseless renderer of a still scene does,
and the stack's frozen-camera check would rightly call that frozen. Gaussian noise is drawn
once into a pool of frames per image shape and cycled, so each published frame costs one
integer add (about 2 ms at 640x480 instead of 12 ms for fresh Gaussian draws).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

#: Distinct noise frames per shape; consecutive frames always get different ones.
POOL = 16
#: Keeps an episode's noise stream apart from other uses of its task seed.
EPISODE_SEED_OFFSET = 7919


class CameraNoise:
    """Adds zero-mean Gaussian noise of `std_levels` (8-bit levels) to uint8 frames."""

    def __init__(self, std_levels: float, seed: int = 0) -> None:
        self.std_levels = std_levels
        self._rng = np.random.default_rng(seed)
        self._pools: dict[tuple[int, ...], npt.NDArray[np.int16]] = {}
        self._next = 0

    @classmethod
    def for_episode(cls, std_levels: float, seed: int) -> CameraNoise:
        """The noise of one seeded episode.

        The sim node (at start and on every reset) and the in-process rollout draw the same
        frames for the same seed.
        """
        return cls(std_levels, seed + EPISODE_SEED_OFFSET)

    def __call__(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """A noisy copy of `image` (unchanged if the noise is off)."""
        if self.std_levels <= 0.0:
            return image
        pool = self._pools.get(image.shape)
        if pool is None:
            draws = self._rng.normal(0.0, self.std_levels, (POOL, *image.shape))
            pool = np.round(draws).astype(np.int16)
            self._pools[image.shape] = pool
        self._next = (self._next + 1) % POOL
        noisy = image.astype(np.int16) + pool[self._next]
        return np.asarray(np.clip(noisy, 0, 255), dtype=np.uint8)
