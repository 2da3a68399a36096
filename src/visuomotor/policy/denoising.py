"""DDIM sampling (Song et al. 2021, eta = 0) around an exported denoising network (numpy).

The schedule functions are shared with training (`visuomotor.training`), so the noise levels
the network was trained on are the ones sampling uses. Conventions follow Diffusion Policy's
`DDIMScheduler` configuration: evenly spaced ("leading") timesteps, the final step to alpha
bar = 1, optional clipping of the predicted clean sample, after which the noise estimate is
re-derived from the clipped sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from visuomotor.policy.spec import DenoisingScheduler

Array = npt.NDArray[np.float64]


def betas(schedule: DenoisingScheduler) -> Array:
    """Per-training-step noise variances."""
    n = schedule.train_steps
    if schedule.beta_schedule == 'linear':
        return np.linspace(schedule.beta_start, schedule.beta_end, n, dtype=np.float64)

    def alpha_bar(t: float) -> float:  # squaredcos_cap_v2 (Nichol & Dhariwal 2021)
        return math.cos((t + 0.008) / 1.008 * math.pi / 2.0) ** 2
    return np.array([min(1.0 - alpha_bar((i + 1) / n) / alpha_bar(i / n), 0.999)
                     for i in range(n)], dtype=np.float64)


def alphas_cumprod(schedule: DenoisingScheduler) -> Array:
    """Alpha bar per training step (what `x_t = sqrt(ab) x_0 + sqrt(1 - ab) eps` uses)."""
    return np.asarray(np.cumprod(1.0 - betas(schedule)), dtype=np.float64)


def inference_timesteps(schedule: DenoisingScheduler) -> list[int]:
    """The training steps visited while sampling, from noisiest to cleanest."""
    ratio = schedule.train_steps // schedule.inference_steps
    return [int(t) for t in (np.arange(schedule.inference_steps) * ratio)[::-1]]


def ddim_sample(network: Callable[[npt.NDArray[np.float32], float], npt.NDArray[np.float32]],
                schedule: DenoisingScheduler, noise: npt.NDArray[np.float32]
                ) -> npt.NDArray[np.float32]:
    """Run the sampling loop from `noise`; `network(x_t, t)` returns the model's prediction."""
    ab = alphas_cumprod(schedule)
    ratio = schedule.train_steps // schedule.inference_steps
    x = noise.astype(np.float64)
    for t in inference_timesteps(schedule):
        a_t = ab[t]
        a_prev = ab[t - ratio] if t - ratio >= 0 else 1.0
        pred = network(x.astype(np.float32), float(t)).astype(np.float64)
        if schedule.prediction == 'epsilon':
            x0 = (x - math.sqrt(1.0 - a_t) * pred) / math.sqrt(a_t)
        else:
            x0 = pred
        if schedule.clip_sample is not None:
            x0 = np.clip(x0, -schedule.clip_sample, schedule.clip_sample)
        eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1.0 - a_t)
        x = math.sqrt(a_prev) * x0 + math.sqrt(1.0 - a_prev) * eps
    return x.astype(np.float32)
