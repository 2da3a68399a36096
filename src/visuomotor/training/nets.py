"""The networks from the source documents (torch), written for export to a policy bundle.

Encoders (one per camera, as in the seeds: separate cameras get separate encoders):

- `levine`: Levine et al. 2016 (seed 002, Fig. 2): three ReLU conv layers (64 filters 7x7
  stride 2, then 32 5x5, 32 5x5), a spatial softmax over each of the 32 response maps and the
  expected 2D image position of each, i.e. 32 feature points (64 numbers).
- `resnet18_gn`: the Diffusion Policy / robomimic encoder: ResNet-18 with every BatchNorm
  replaced by GroupNorm (channels / 16 groups), global pooling replaced by a 1x1 conv to K
  keypoint maps and a spatial softmax (K feature points).

Heads: `ChunkMLP` predicts a whole action chunk from the features of the observation history
and the proprio input (behaviour cloning); `ChunkTransformer` is the stronger single-pass
head, ACT-style (Zhao et al. 2023): one learned query per chunk step cross-attends, in a small
transformer decoder, to one token per feature point (per camera and history frame) and one per
proprio row; `DenoisingMLP` predicts the noise (or the clean
chunk) from a noisy chunk, the diffusion timestep and the same conditioning, for the runtime's
DDIM loop. Network inputs and outputs use the tensor names of `visuomotor.policy.spec`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn


class SpatialSoftmax(nn.Module):
    """Per channel: softmax over the pixels, then the expected (x, y) in [-1, 1]."""

    def __init__(self, height: int, width: int, learn_temperature: bool = True) -> None:
        super().__init__()
        ys, xs = torch.meshgrid(torch.linspace(-1.0, 1.0, height),
                                torch.linspace(-1.0, 1.0, width), indexing='ij')
        self.register_buffer('grid', torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1))
        self.log_temperature = nn.Parameter(torch.zeros(()), requires_grad=learn_temperature)

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) response maps -> (N, C, 2) feature points (x, y)."""
        n, c, h, w = maps.shape
        attention = torch.softmax(maps.reshape(n, c, h * w) / self.log_temperature.exp(), dim=-1)
        grid: torch.Tensor = self.grid  # type: ignore[assignment]
        return attention @ grid


def _conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class LevineEncoder(nn.Module):
    """Seed 002's visual layers: conv 7x7/2 (64), 5x5 (32), 5x5 (32), spatial softmax."""

    def __init__(self, channels: int, height: int, width: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(channels, 64, 7, stride=2), nn.ReLU(),
            nn.Conv2d(64, 32, 5), nn.ReLU(),
            nn.Conv2d(32, 32, 5), nn.ReLU())
        h = _conv_out(_conv_out(_conv_out(height, 7, 2), 5), 5)
        w = _conv_out(_conv_out(_conv_out(width, 7, 2), 5), 5)
        if h < 1 or w < 1:
            raise ValueError(f'images of {width}x{height} are too small for the Levine '
                             'encoder (needs at least 23x23)')
        self.softmax = SpatialSoftmax(h, w)
        self.num_points = 32
        self.out_features = 64

    def feature_points(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, 32, 2)."""
        points: torch.Tensor = self.softmax(self.convs(images))
        return points

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, 64) flattened feature points."""
        return self.feature_points(images).flatten(1)


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, channels // 16), channels)


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = _norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = _norm(cout)
        self.down: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _norm(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(y)) + self.down(x))


class ResNet18GNEncoder(nn.Module):
    """ResNet-18, GroupNorm, 1x1 conv to `num_keypoints` maps, spatial softmax."""

    def __init__(self, channels: int, height: int, width: int, num_keypoints: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, 64, 7, 2, 3, bias=False), _norm(64),
                                   nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
        cin = 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers += [_BasicBlock(cin, cout, stride), _BasicBlock(cout, cout, 1)]
            cin = cout
        self.trunk = nn.Sequential(*layers)
        with torch.no_grad():
            h, w = self.trunk(torch.zeros(1, channels, height, width)).shape[-2:]
        if h < 2 or w < 2:
            raise ValueError(f'images of {width}x{height} leave a {w}x{h} ResNet-18 feature map: '
                             'the spatial softmax has no positions to choose from; use at least '
                             '33x33 inputs')
        self.keypoints = nn.Conv2d(512, num_keypoints, 1)
        self.softmax = SpatialSoftmax(int(h), int(w))
        self.num_points = num_keypoints
        self.out_features = 2 * num_keypoints

    def feature_points(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, K, 2)."""
        points: torch.Tensor = self.softmax(self.keypoints(self.trunk(images)))
        return points

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, 2K) flattened feature points."""
        return self.feature_points(images).flatten(1)


ENCODERS: dict[str, Callable[..., nn.Module]] = {
    'levine': LevineEncoder,
    'resnet18_gn': ResNet18GNEncoder,
}


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class _Conditioning(nn.Module):
    """Separate encoders per camera over the history, concatenated with the proprio input."""

    def __init__(self, cameras: Sequence[Mapping[str, Any]], history: int, proprio_dim: int,
                 encoder: str, encoder_kwargs: Mapping[str, Any]) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f'unknown encoder {encoder!r}; known: {sorted(ENCODERS)}')
        self.camera_names = [str(c['name']) for c in cameras]
        self.encoders = nn.ModuleList(
            ENCODERS[encoder](int(c['channels']), int(c['height']), int(c['width']),
                              **encoder_kwargs) for c in cameras)
        self.history = history
        widths = [int(e.out_features) for e in self.encoders]  # type: ignore[arg-type]
        self.out_features = history * (sum(widths) + proprio_dim)

    def forward(self, images: Sequence[torch.Tensor], proprio: torch.Tensor) -> torch.Tensor:
        feats = []
        for encoder, frames in zip(self.encoders, images, strict=True):
            b, t = frames.shape[:2]
            feats.append(encoder(frames.flatten(0, 1)).reshape(b, t, -1))
        feats.append(proprio)
        return torch.cat(feats, dim=-1).flatten(1)


class ChunkMLP(nn.Module):
    """Observation -> a chunk of `chunk_length` normalised actions (one forward pass)."""

    def __init__(self, cameras: Sequence[Mapping[str, Any]], history: int, proprio_dim: int,
                 action_dim: int, chunk_length: int, encoder: str = 'resnet18_gn',
                 encoder_kwargs: Mapping[str, Any] | None = None,
                 hidden: Sequence[int] = (256, 256)) -> None:
        super().__init__()
        self.condition = _Conditioning(cameras, history, proprio_dim, encoder,
                                       encoder_kwargs or {})
        self.chunk_length, self.action_dim = chunk_length, action_dim
        self.head = _mlp([self.condition.out_features, *hidden, chunk_length * action_dim])

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Inputs: one image tensor per camera (spec order), then proprio."""
        *images, proprio = inputs
        out: torch.Tensor = self.head(self.condition(images, proprio))
        return out.reshape(-1, self.chunk_length, self.action_dim)


def timestep_embedding(timestep: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of a (B,) float timestep, (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = timestep.float()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class DenoisingMLP(nn.Module):
    """(observation, noisy chunk, timestep) -> predicted noise (or clean chunk)."""

    def __init__(self, cameras: Sequence[Mapping[str, Any]], history: int, proprio_dim: int,
                 action_dim: int, chunk_length: int, encoder: str = 'resnet18_gn',
                 encoder_kwargs: Mapping[str, Any] | None = None,
                 hidden: Sequence[int] = (256, 256), time_dim: int = 32) -> None:
        super().__init__()
        self.condition = _Conditioning(cameras, history, proprio_dim, encoder,
                                       encoder_kwargs or {})
        self.chunk_length, self.action_dim, self.time_dim = chunk_length, action_dim, time_dim
        width = self.condition.out_features + chunk_length * action_dim + time_dim
        self.head = _mlp([width, *hidden, chunk_length * action_dim])

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Inputs: images per camera, proprio, noisy_action (B, H, A), timestep (B,)."""
        *images, proprio, noisy, timestep = inputs
        x = torch.cat([self.condition(images, proprio), noisy.flatten(1),
                       timestep_embedding(timestep, self.time_dim)], dim=-1)
        out: torch.Tensor = self.head(x)
        return out.reshape(-1, self.chunk_length, self.action_dim)


class ChunkTransformer(nn.Module):
    """ACT-style decoder: chunk-step queries attend to feature-point and proprio tokens.

    Each feature point (x, y) of each camera and history frame becomes a token: a linear
    projection of its coordinates plus learned embeddings of which point, which camera and
    which frame it is. Each proprio row is a token too. `chunk_length` learned queries go
    through `layers` pre-norm decoder layers (self-attention, cross-attention to the tokens,
    feed-forward) and a linear layer reads one action row from each.
    """

    def __init__(self, cameras: Sequence[Mapping[str, Any]], history: int, proprio_dim: int,
                 action_dim: int, chunk_length: int, encoder: str = 'levine',
                 encoder_kwargs: Mapping[str, Any] | None = None, width: int = 128,
                 heads: int = 4, layers: int = 2, feedforward: int = 256,
                 dropout: float = 0.1) -> None:
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f'unknown encoder {encoder!r}; known: {sorted(ENCODERS)}')
        self.encoders = nn.ModuleList(
            ENCODERS[encoder](int(c['channels']), int(c['height']), int(c['width']),
                              **(encoder_kwargs or {})) for c in cameras)
        self.history, self.chunk_length, self.action_dim = history, chunk_length, action_dim
        points = [int(e.num_points) for e in self.encoders]  # type: ignore[arg-type]
        self.point_xy = nn.Linear(2, width)
        self.point_id = nn.Parameter(0.02 * torch.randn(sum(points), width))
        self.camera_frame = nn.Parameter(0.02 * torch.randn(len(cameras), history, width))
        self._offsets = [sum(points[:i]) for i in range(len(points))]
        self.proprio = nn.Linear(proprio_dim, width)
        self.proprio_frame = nn.Parameter(0.02 * torch.randn(history, width))
        self.queries = nn.Parameter(0.02 * torch.randn(chunk_length, width))
        layer = nn.TransformerDecoderLayer(width, heads, feedforward, dropout,
                                           batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers, norm=nn.LayerNorm(width))
        self.out = nn.Linear(width, action_dim)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Inputs: one image tensor per camera (spec order), then proprio."""
        *images, proprio = inputs
        tokens = []
        for c, (encoder, frames) in enumerate(zip(self.encoders, images, strict=True)):
            b, t = frames.shape[:2]
            xy: torch.Tensor = encoder.feature_points(  # type: ignore[operator]
                frames.flatten(0, 1))  # (B*T, K, 2)
            k = xy.shape[1]
            ids = self.point_id[self._offsets[c]:self._offsets[c] + k]
            token = self.point_xy(xy).reshape(b, t, k, -1) + ids[None, None] \
                + self.camera_frame[c][None, :, None]
            tokens.append(token.flatten(1, 2))
        tokens.append(self.proprio(proprio) + self.proprio_frame[None])
        memory = torch.cat(tokens, dim=1)
        queries = self.queries[None].expand(memory.shape[0], -1, -1)
        out: torch.Tensor = self.out(self.decoder(queries, memory))
        return out


#: Registered architectures (a bundle names one; nothing else is ever constructed from a file).
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    'chunk_mlp': ChunkMLP,
    'chunk_transformer': ChunkTransformer,
    'denoising_mlp': DenoisingMLP,
}


def build_architecture(name: str, kwargs: Mapping[str, Any]) -> nn.Module:
    """Construct a registered architecture from its JSON keyword arguments."""
    if name not in ARCHITECTURES:
        raise ValueError(f'unknown architecture {name!r}; registered: {sorted(ARCHITECTURES)}')
    return ARCHITECTURES[name](**dict(kwargs))
