"""Tracking-jitter filter (pure): the One Euro filter on the controller's pose.

Casiez, Roussel and Vogel, "1 Euro Filter: A Simple Speed-based Low-pass Filter for Noisy
Input in Interactive Systems", CHI 2012: a first-order low-pass whose cut-off rises with the
signal's speed, so a hand held still is steady (low cut-off removes the sub-millimetre
tracking jitter) and a moving hand is followed with little lag (high cut-off). The rotation
is filtered the same way on the rotation vector of each step (geodesic, no Euler angles).
"""

from __future__ import annotations

import math

import numpy as np

from visuomotor.robots.transforms import Matrix, rotation_from_vector, rotation_vector


def smoothing(cutoff_hz: float, dt_s: float) -> float:
    """The exponential-smoothing factor of a first-order low-pass at `cutoff_hz`."""
    tau = 1.0 / (2.0 * math.pi * cutoff_hz)
    return 1.0 / (1.0 + tau / dt_s)


class OneEuroPose:
    """One Euro filter on a position (metres) and a rotation (3x3).

    Args:
        min_cutoff_hz: cut-off at rest (lower: steadier, more lag when starting to move).
        beta: how fast the cut-off rises with speed (per m/s for the position; the rotation
            uses the same beta per rad/s scaled by `radius_m`).
        derivative_cutoff_hz: cut-off of the speed estimate.
        radius_m: lever arm that makes rotation speed comparable to linear speed.
    """

    def __init__(self, min_cutoff_hz: float, beta: float, derivative_cutoff_hz: float,
                 radius_m: float = 0.1) -> None:
        self.min_cutoff_hz = min_cutoff_hz
        self.beta = beta
        self.derivative_cutoff_hz = derivative_cutoff_hz
        self.radius_m = radius_m
        self.reset()

    def reset(self) -> None:
        """Forget the history (the next sample passes through unfiltered)."""
        self._t: float | None = None
        self._p = np.zeros(3)
        self._r = np.eye(3)
        self._speed = 0.0
        self._angular_speed = 0.0

    def __call__(self, t_s: float, position: Matrix, rotation: Matrix
                 ) -> tuple[Matrix, Matrix]:
        """The filtered pose of a sample taken at `t_s` (strictly after the last one)."""
        if self._t is None or t_s <= self._t:
            self._t, self._p, self._r = t_s, np.array(position, dtype=np.float64), \
                np.array(rotation, dtype=np.float64)
            self._speed = self._angular_speed = 0.0
            return self._p.copy(), self._r.copy()
        dt = t_s - self._t
        self._t = t_s
        a_d = smoothing(self.derivative_cutoff_hz, dt)
        step = np.asarray(position, dtype=np.float64) - self._p
        self._speed += a_d * (float(np.linalg.norm(step)) / dt - self._speed)
        alpha = smoothing(self.min_cutoff_hz + self.beta * self._speed, dt)
        self._p = self._p + alpha * step
        turn = rotation_vector(self._r.T @ np.asarray(rotation, dtype=np.float64))
        self._angular_speed += a_d * (float(np.linalg.norm(turn)) / dt - self._angular_speed)
        alpha_r = smoothing(self.min_cutoff_hz
                            + self.beta * self._angular_speed * self.radius_m, dt)
        self._r = self._r @ rotation_from_vector(alpha_r * turn)
        return self._p.copy(), self._r.copy()
