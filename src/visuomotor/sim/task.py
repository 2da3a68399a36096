"""The twin's task: pick up the cube and put it down on the target square.

Each seed fixes the cube pose, the target position and (optionally) the colours and lighting,
so that a seeded episode is reproducible and a set of seeds gives visual diversity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from visuomotor.sim import mujoco_gl  # noqa: F401  (sets MUJOCO_GL before mujoco loads)

# isort: split
import mujoco
import numpy as np
import numpy.typing as npt

from visuomotor.sim.config import TaskConfig
from visuomotor.sim.twin import Twin


@dataclass(frozen=True)
class EpisodeSetup:
    """The randomised initial state of one episode."""

    seed: int
    object_xy_yaw: tuple[float, float, float]
    target_xy: tuple[float, float]
    object_rgba: tuple[float, float, float, float]
    table_rgba: tuple[float, float, float, float]
    light_scale: float


class PickPlaceTask:
    """Seeded initial states and the success check of the pick-and-place task."""

    def __init__(self, config: TaskConfig) -> None:
        self.config = config

    def sample(self, seed: int) -> EpisodeSetup:
        """The initial state for `seed` (same seed, same state)."""
        rng = np.random.default_rng(seed)
        cfg = self.config
        target = (rng.uniform(*cfg.target_region_m[:2]), rng.uniform(*cfg.target_region_m[2:]))
        for _ in range(1000):
            obj = (rng.uniform(*cfg.object_region_m[:2]), rng.uniform(*cfg.object_region_m[2:]))
            if math.dist(obj, target) >= cfg.min_separation_m:
                break
        else:
            raise ValueError('task regions leave no room for min_separation_m between the '
                             'object and the target: widen object_region_m/target_region_m')
        yaw = rng.uniform(-math.pi / 4, math.pi / 4)
        object_rgba = cfg.object_rgba
        table_rgba = (0.62, 0.5, 0.38, 1.0)
        light = 1.0
        if cfg.randomize_appearance:
            object_rgba = tuple(float(np.clip(c + rng.uniform(-0.12, 0.12), 0, 1))
                                for c in cfg.object_rgba[:3]) + (1.0,)  # type: ignore[assignment]
            table_rgba = tuple(float(np.clip(c + rng.uniform(-0.08, 0.08), 0, 1))
                               for c in table_rgba[:3]) + (1.0,)  # type: ignore[assignment]
            light = float(rng.uniform(0.75, 1.25))
        return EpisodeSetup(seed, (float(obj[0]), float(obj[1]), float(yaw)),
                            (float(target[0]), float(target[1])), object_rgba, table_rgba,
                            light)

    def apply(self, twin: Twin, setup: EpisodeSetup) -> None:
        """Reset the twin to the episode's initial state (time back to zero)."""
        model = twin.model
        target = model.geom(twin.names.target_geom).id
        model.geom_pos[target][:2] = setup.target_xy
        model.geom_rgba[model.geom('object').id] = setup.object_rgba
        model.geom_rgba[model.geom('table').id] = setup.table_rgba
        key = model.light('key').id
        model.light_diffuse[key] = np.full(3, 0.55 * setup.light_scale)
        model.vis.headlight.diffuse[:] = 0.35 * setup.light_scale
        twin.reset(object_xy_yaw=setup.object_xy_yaw)
        mujoco.mj_forward(model, twin.data)

    def target_xy(self, twin: Twin) -> tuple[float, float]:
        """Centre of the target square in the world."""
        position = twin.model.geom_pos[twin.model.geom(twin.names.target_geom).id]
        return float(position[0]), float(position[1])

    def success(self, twin: Twin) -> bool:
        """The cube rests on the table inside the target square and is not held."""
        return placed(self.config, twin.object_pose()[:3, 3], self.target_xy(twin),
                      twin.gripper_width_m())


def placed(config: TaskConfig, object_xyz: Sequence[float] | npt.NDArray[np.float64],
           target_xy: Sequence[float], gripper_width_m: float) -> bool:
    """The success check from plain values (a supervisor reading /sim poses uses it too)."""
    half = config.target_half_m
    inside = abs(object_xyz[0] - target_xy[0]) <= half and \
        abs(object_xyz[1] - target_xy[1]) <= half
    resting = object_xyz[2] < config.object_size_m * 0.75
    released = gripper_width_m > config.object_size_m + 0.005
    return bool(inside and resting and released)
