"""Levine et al.'s CNN architecture comparison (seed 002, section V-C, Table II) on the twin.

Levine et al. pretrain their vision layers on pose regression: the robot moves the target
object to random positions, and a CNN regresses 3D points that define the object's pose from
the camera image. They compare four ways of reading the third convolution's 32 response maps:

- `softmax_points`: spatial softmax + expected 2D position (32 feature points), then a linear
  layer (theirs; few parameters);
- `softmax_fc`: spatial softmax, then a learned fully connected layer over every softmax map
  value instead of the fixed expectation;
- `fc`: a fully connected layer over the response maps themselves;
- `maxpool_fc`: 3x3 max pooling with stride 2 after the first two convolutions, then a fully
  connected layer.

All share the three convolutions of `training.nets.LevineEncoder` (64 7x7/2, 32 5x5, 32 5x5,
ReLU). Here the object is the twin's cube on the table, seen by the scene camera, with the arm
placed at random poses around home (it moves through the view as in their data collection);
the targets are three points of the cube: its centre and the centres of two adjacent faces.
Yaw stays within +-30 deg: a cube turned by 90 deg looks the same, so wider ranges would make
the face points ambiguous. Error, as in Table II: the average Euclidean error of the three
points (cm), mean and standard deviation over the images of a set.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from visuomotor.preprocessing import Preprocessor, PreprocessSpec
from visuomotor.training.nets import SpatialSoftmax, _conv_out

POSE_ARCHITECTURES = ('softmax_points', 'softmax_fc', 'fc', 'maxpool_fc')
LABELS = {
    'softmax_points': 'softmax + feature points (Levine et al.)',
    'softmax_fc': 'softmax + fully connected layer',
    'fc': 'fully connected layer',
    'maxpool_fc': 'max-pooling + fully connected',
}
#: Levine et al. Table II (cm): (training mean, std, test mean, std), for comparison only.
PAPER_TABLE_II = {
    'softmax_points': (1.14, 1.67, 1.30, 0.73),
    'softmax_fc': (2.27, 1.70, 2.59, 1.19),
    'fc': (4.65, 2.90, 4.75, 2.29),
    'maxpool_fc': (2.89, 2.08, 3.71, 1.73),
}


class PoseRegressor(nn.Module):
    """One of the four architectures: (N, 3, H, W) images -> (N, 9) three 3D points."""

    def __init__(self, architecture: str, height: int, width: int, outputs: int = 9) -> None:
        super().__init__()
        if architecture not in POSE_ARCHITECTURES:
            raise ValueError(f'unknown architecture {architecture!r}; one of '
                             f'{POSE_ARCHITECTURES}')
        self.architecture = architecture
        pool = architecture == 'maxpool_fc'
        layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, stride=2), nn.ReLU()]
        h, w = _conv_out(height, 7, 2), _conv_out(width, 7, 2)
        if pool:
            layers.append(nn.MaxPool2d(3, 2))
            h, w = _conv_out(h, 3, 2), _conv_out(w, 3, 2)
        layers += [nn.Conv2d(64, 32, 5), nn.ReLU()]
        h, w = _conv_out(h, 5), _conv_out(w, 5)
        if pool:
            layers.append(nn.MaxPool2d(3, 2))
            h, w = _conv_out(h, 3, 2), _conv_out(w, 3, 2)
        layers += [nn.Conv2d(32, 32, 5), nn.ReLU()]
        h, w = _conv_out(h, 5), _conv_out(w, 5)
        if h < 1 or w < 1:
            raise ValueError(f'{width}x{height} images are too small for {architecture}')
        self.convs = nn.Sequential(*layers)
        self.softmax = SpatialSoftmax(h, w) if architecture.startswith('softmax') else None
        features = 64 if architecture == 'softmax_points' else 32 * h * w
        self.head = nn.Linear(features, outputs)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, 9), normalised point coordinates."""
        maps = self.convs(images)
        softmax = self.softmax
        if softmax is not None and self.architecture == 'softmax_points':
            features = softmax(maps).flatten(1)
        elif softmax is not None:
            n, c, h, w = maps.shape
            features = torch.softmax(maps.reshape(n, c, h * w)
                                     / softmax.log_temperature.exp(), dim=-1).flatten(1)
        else:
            features = maps.flatten(1)
        out: torch.Tensor = self.head(features)
        return out


def cube_points(x: float, y: float, yaw: float, size: float) -> npt.NDArray[np.float64]:
    """(3, 3): the cube's centre and the centres of its +x and +y faces (world, m)."""
    z = size / 2
    c, s = math.cos(yaw), math.sin(yaw)
    half = size / 2
    return np.array([[x, y, z], [x + half * c, y + half * s, z], [x - half * s, y + half * c, z]])


@dataclass
class PoseData:
    """Images of one camera (N, H, W, 3) rgb8 and the three target points (N, 3, 3) in m."""

    images: npt.NDArray[np.uint8]
    points: npt.NDArray[np.float64]


def render_pose_data(count: int, seed: int, *, scene: str = 'fr3', camera: str = 'scene_camera',
                     yaw_deg: float = 30.0, arm_jitter_rad: float = 0.15) -> PoseData:
    """`count` twin images of the cube at random poses in the task's spawn region."""
    from visuomotor.sim.config import load_scene
    from visuomotor.sim.twin import Twin

    config = load_scene(scene)
    rng = np.random.default_rng(seed)
    region = config.task.object_region_m
    size = config.task.object_size_m
    images, points = [], []
    with Twin(config) as twin:
        home = np.array(twin.robot.home_rad)
        lower = np.array(twin.robot.lower_rad) + 0.05
        upper = np.array(twin.robot.upper_rad) - 0.05
        for _ in range(count):
            q = np.clip(home + rng.normal(0.0, arm_jitter_rad, home.shape), lower, upper)
            x, y = rng.uniform(region[0], region[1]), rng.uniform(region[2], region[3])
            yaw = math.radians(rng.uniform(-yaw_deg, yaw_deg))
            twin.reset(arm_positions=q.tolist(), object_xy_yaw=(x, y, yaw))
            images.append(np.array(twin.render([camera])[camera]))
            points.append(cube_points(x, y, yaw, size))
    return PoseData(np.stack(images), np.stack(points))


@dataclass(frozen=True)
class PoseResult:
    """One architecture trained once."""

    architecture: str
    parameters: int
    train_errors_cm: npt.NDArray[np.float64]
    test_errors_cm: npt.NDArray[np.float64]
    train_s: float
    steps: int
    learning_rate: float
    validation_errors_cm: npt.NDArray[np.float64] | None = None


def _inputs(data: PoseData) -> torch.Tensor:
    height, width = data.images.shape[1:3]
    pre = Preprocessor(PreprocessSpec(input_encoding='rgb8', input_height=height,
                                      input_width=width))
    return torch.from_numpy(np.stack([pre(i) for i in data.images]))


def point_errors_cm(predicted: npt.NDArray[np.float64], truth: npt.NDArray[np.float64]
                    ) -> npt.NDArray[np.float64]:
    """Per image, the mean Euclidean error of the three points, in cm."""
    diff = predicted.reshape(-1, 3, 3) - truth.reshape(-1, 3, 3)
    return np.asarray(np.linalg.norm(diff, axis=2).mean(axis=1) * 100.0)


def train_pose_regressor(architecture: str, train: PoseData, test: PoseData, *,
                         steps: int = 2000, batch_size: int = 64, learning_rate: float = 1e-3,
                         seed: int = 0, validation: PoseData | None = None) -> PoseResult:
    """Train one architecture with Adam on L2 loss of normalised targets; errors per image.

    `validation` (images of neither set) is evaluated too, for choosing hyperparameters
    without looking at the test images.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    height, width = train.images.shape[1:3]
    model = PoseRegressor(architecture, height, width)
    x_train, x_test = _inputs(train), _inputs(test)
    targets = train.points.reshape(len(train.points), -1)
    mean, std = targets.mean(axis=0), targets.std(axis=0) + 1e-6
    y_train = torch.from_numpy(((targets - mean) / std).astype(np.float32))
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    start = time.perf_counter()
    model.train()
    for step in range(steps):
        rows = torch.from_numpy(rng.integers(0, len(x_train), batch_size))
        loss = torch.mean((model(x_train[rows]) - y_train[rows]) ** 2)
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
        if step == int(steps * 0.75):
            for group in optimiser.param_groups:
                group['lr'] = learning_rate * 0.1
    seconds = time.perf_counter() - start
    model.eval()

    def predict(x: torch.Tensor) -> npt.NDArray[np.float64]:
        with torch.no_grad():
            out = torch.cat([model(x[i:i + 256]) for i in range(0, len(x), 256)]).numpy()
        return np.asarray(out * std + mean, dtype=np.float64)

    return PoseResult(architecture, sum(p.numel() for p in model.parameters()),
                      point_errors_cm(predict(x_train), train.points),
                      point_errors_cm(predict(x_test), test.points), seconds, steps,
                      learning_rate,
                      None if validation is None else
                      point_errors_cm(predict(_inputs(validation)), validation.points))
