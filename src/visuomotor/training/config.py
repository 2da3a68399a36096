"""Training settings (pure: no torch, so the command line parses without it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HEADS = ('chunk_transformer', 'chunk_mlp', 'denoising_mlp')


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on (stored in the bundle's provenance).

    Attributes:
        head: `chunk_transformer` (ACT-style), `chunk_mlp` or `denoising_mlp`.
        encoder: `levine` or `resnet18_gn` (one per camera).
        history: observation frames per input (T).
        chunk_length: actions per chunk (H).
        crop: random-crop size at train time (centred at deployment); 0: no crop.
        steps, batch_size, learning_rate, weight_decay, warmup_steps: the optimisation
            (AdamW, linear warm-up then cosine decay).
        loss: `l1` or `l2` (single-pass heads).
        proprio_noise: train-time Gaussian noise on the normalised arm joint positions (std):
            without it a policy can follow the mean trajectory from proprio alone and never
            learn to look (the copycat shortcut); the gripper width is left exact.
        holdout_episodes: episodes kept out of training to report a validation loss.
        seed: all randomness (sampling, crops, initialisation).
        threads: torch CPU threads (0: torch's default).
        device: `cpu` or `cuda`.
        head_kwargs: extra architecture arguments (widths, layers).
    """

    head: str = 'chunk_transformer'
    encoder: str = 'levine'
    history: int = 1
    chunk_length: int = 16
    crop: int = 88
    steps: int = 3000
    batch_size: int = 64
    learning_rate: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    loss: str = 'l1'
    proprio_noise: float = 0.0
    holdout_episodes: int = 4
    seed: int = 0
    threads: int = 0
    device: str = 'cpu'
    head_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ('history', 'chunk_length', 'steps', 'batch_size'):
            if getattr(self, name) < 1:
                raise ValueError(f'{name} must be >= 1, got {getattr(self, name)}')
        for name in ('crop', 'warmup_steps', 'holdout_episodes', 'threads', 'proprio_noise'):
            if getattr(self, name) < 0:
                raise ValueError(f'{name} must be >= 0, got {getattr(self, name)}')
        if not self.learning_rate > 0:
            raise ValueError(f'learning_rate must be > 0, got {self.learning_rate}')
