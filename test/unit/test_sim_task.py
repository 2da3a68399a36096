"""The pick-and-place task of the twin: seeded initial states, the success check, and the
scripted expert solving it (the CI requirement: expert success on a handful of seeds)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visuomotor.sim.config import TaskConfig, load_scene
from visuomotor.sim.episode import run_episode
from visuomotor.sim.expert import ExpertAction
from visuomotor.sim.task import PickPlaceTask
from visuomotor.sim.twin import Twin

RIGS = ['fr3', 'ur5e']
TASK = PickPlaceTask(TaskConfig())


@pytest.fixture(params=RIGS)
def twin(request: pytest.FixtureRequest) -> Iterator[Twin]:
    twin = Twin(load_scene(request.param))
    yield twin
    twin.close()


def inside(region: tuple[float, float, float, float], x: float, y: float) -> bool:
    return region[0] <= x <= region[1] and region[2] <= y <= region[3]


# -- seeded initial states ---------------------------------------------------------------------


def test_sample_is_deterministic_per_seed_and_varies_across_seeds() -> None:
    assert TASK.sample(7) == TASK.sample(7)
    assert PickPlaceTask(TaskConfig()).sample(7) == TASK.sample(7)
    setups = [TASK.sample(seed) for seed in range(20)]
    assert len({s.object_xy_yaw for s in setups}) == 20
    assert len({s.target_xy for s in setups}) == 20
    assert len({s.object_rgba for s in setups}) == 20
    assert len({s.light_scale for s in setups}) == 20


@settings(max_examples=100)
@given(seed=st.integers(0, 2**32 - 1))
def test_sampled_states_respect_the_task_regions(seed: int) -> None:
    config = TASK.config
    setup = TASK.sample(seed)
    x, y, yaw = setup.object_xy_yaw
    assert setup.seed == seed
    assert inside(config.object_region_m, x, y)
    assert inside(config.target_region_m, *setup.target_xy)
    assert math.dist((x, y), setup.target_xy) >= config.min_separation_m
    assert -math.pi / 4 <= yaw <= math.pi / 4
    for rgba in (setup.object_rgba, setup.table_rgba):
        assert len(rgba) == 4 and rgba[3] == 1.0
        assert all(0.0 <= c <= 1.0 for c in rgba)
    assert 0.75 <= setup.light_scale <= 1.25


def test_fixed_appearance_keeps_the_configured_colours() -> None:
    config = TaskConfig(randomize_appearance=False)
    setup = PickPlaceTask(config).sample(3)
    assert setup.object_rgba == config.object_rgba
    assert setup.light_scale == 1.0


def test_regions_without_room_for_the_separation_are_refused() -> None:
    task = PickPlaceTask(TaskConfig(min_separation_m=5.0))
    with pytest.raises(ValueError, match='min_separation_m'):
        task.sample(0)


def test_apply_puts_the_twin_in_the_sampled_state(twin: Twin) -> None:
    twin.step(0.5)
    setup = TASK.sample(11)
    TASK.apply(twin, setup)
    assert twin.time_s == 0.0
    pose = twin.object_pose()
    x, y, yaw = setup.object_xy_yaw
    np.testing.assert_allclose(pose[:2, 3], (x, y), atol=1e-9)
    assert pose[2, 3] == pytest.approx(TASK.config.object_size_m / 2, abs=1e-3)
    assert math.atan2(pose[1, 0], pose[0, 0]) == pytest.approx(yaw, abs=1e-9)
    assert TASK.target_xy(twin) == pytest.approx(setup.target_xy)
    np.testing.assert_array_equal(twin.arm_positions(), twin.robot.home_rad)
    assert twin.gripper_width_m() == pytest.approx(twin.robot.gripper.max_width_m)


# -- success check -------------------------------------------------------------------------------


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_not_a_success_at_reset(twin: Twin, seed: int) -> None:
    TASK.apply(twin, TASK.sample(seed))
    assert not TASK.success(twin)
    twin.step(0.5)  # the cube settles where it was put, away from the target
    assert not TASK.success(twin)


@pytest.mark.parametrize('offset', [(0.08, 0.0), (0.0, -0.07), (-0.06, 0.06), (0.2, 0.1)])
def test_a_cube_put_down_outside_the_target_is_not_a_success(twin: Twin,
                                                             offset: tuple[float, float]) -> None:
    TASK.apply(twin, TASK.sample(4))
    tx, ty = TASK.target_xy(twin)
    twin.set_object_pose(tx + offset[0], ty + offset[1], 0.0)
    twin.step(0.5)
    position = twin.object_pose()[:3, 3]
    assert max(abs(position[0] - tx), abs(position[1] - ty)) > TASK.config.target_half_m
    assert not TASK.success(twin)


def test_a_cube_put_down_inside_the_target_is_a_success(twin: Twin) -> None:
    TASK.apply(twin, TASK.sample(4))
    tx, ty = TASK.target_xy(twin)
    twin.set_object_pose(tx + 0.02, ty - 0.02, 0.4)
    twin.step(0.5)
    assert TASK.success(twin)


# -- the scripted expert ----------------------------------------------------------------------


@pytest.mark.parametrize('seed', range(5))
def test_the_scripted_expert_succeeds(twin: Twin, seed: int) -> None:
    setup = TASK.sample(seed)
    ticks: list[str] = []

    def on_tick(_: Twin, action: ExpertAction) -> None:
        ticks.append(action.phase)

    result = run_episode(twin, TASK, seed, on_tick=on_tick)
    assert result.success, result
    assert result.final_phase == 'done'
    assert result.seed == seed
    assert result.ticks == len(ticks)
    assert result.duration_s < 25.0 + 0.3 + 1e-6
    # Independently of success(): the cube left its spawn point and rests in the target square.
    position = twin.object_pose()[:3, 3]
    tx, ty = setup.target_xy
    half = TASK.config.target_half_m
    assert abs(position[0] - tx) <= half and abs(position[1] - ty) <= half
    assert position[2] < TASK.config.object_size_m
    assert math.dist(position[:2], setup.object_xy_yaw[:2]) > 0.1
    # The expert went through the whole pick and place.
    for phase in ('approach', 'descend', 'close', 'lift', 'carry', 'lower', 'release',
                  'retreat'):
        assert phase in ticks


def test_an_episode_replays_identically(twin: Twin) -> None:
    first = run_episode(twin, TASK, 2)
    state = twin.data.qpos.copy()
    second = run_episode(twin, TASK, 2)
    assert first == second
    np.testing.assert_array_equal(twin.data.qpos, state)


def test_the_expert_works_for_a_twin_with_another_task_layout() -> None:
    config = load_scene('fr3')
    config = dataclasses.replace(config, task=dataclasses.replace(
        config.task, object_region_m=(0.4, 0.5, 0.05, 0.2), target_region_m=(0.5, 0.6, -0.25,
                                                                            -0.1)))
    with Twin(config) as twin:
        task = PickPlaceTask(config.task)
        assert run_episode(twin, task, 0).success
