"""DDIM sampling (Song et al. 2021, eta = 0) around an exported denoising network (numpy).

The schedule functions are shared with training (`visuomotor.training`), so the noise levels
the network was trained on are the ones sampling uses. Conventions follow Diffusion Policy's
`DDIMScheduler` configuration: evenly spaced ("leading") timesteps, the final step to alpha
bar = 1, optional clipping of the predicted clean sample (the noise estimate stays the
model's, as with diffusers' default `use_clipped_model_output=False`, which Diffusion Policy
uses). The network receives the raw training step number as a float32 `timestep`.
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
            eps = pred
        else:
            x0 = pred
            eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1.0 - a_t)
        if schedule.clip_sample is not None:
            x0 = np.clip(x0, -schedule.clip_sample, schedule.clip_sample)
        x = math.sqrt(a_prev) * x0 + math.sqrt(1.0 - a_prev) * eps
    return x.astype(np.float32)


def add_noise(x0: Array, noise: Array, timestep: int, schedule: DenoisingScheduler) -> Array:
    """x_t = sqrt(ab[t]) x0 + sqrt(1 - ab[t]) noise (training's forward process)."""
    if not 0 <= timestep < schedule.train_steps:
        raise ValueError(f'timestep {timestep} is outside [0, {schedule.train_steps})')
    ab = float(alphas_cumprod(schedule)[timestep])
    return np.asarray(math.sqrt(ab) * x0 + math.sqrt(1.0 - ab) * noise, dtype=np.float64)


def training_target(x0: Array, noise: Array, schedule: DenoisingScheduler) -> Array:
    """What the network learns to predict: the noise (`epsilon`) or the clean chunk."""
    return noise if schedule.prediction == 'epsilon' else x0
