"""The chunk scheduler (pure numpy, time is an argument).

What the control loop relies on: ACT's ensemble weights are a normalised, non-increasing
exponential; a plan starts exactly at `now + exec_latency_s` (the trajectory interpolated
there) and then has the newest chunk's later rows, so no row is ever planned before its time
(an over-budget plan is one row one period ahead); chunks sampled from one trajectory give
that trajectory whatever their latencies (both modes, with blending); the temporal ensemble
is a convex combination with ACT's weights; the receding horizon executes the newest chunk,
asks for inference exactly `execute_steps` periods after its observation (earlier by the
latency), ignores chunks that are not newer and cross-fades a switch; plans age out after
`max_age_s`; the gripper column goes through the same arithmetic as the joints.

The sequence properties replay random chunk arrivals (observation times, latencies 0..0.5 s)
and plan queries in time order, at the hypothesis profile's example count.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from visuomotor.policy.chunking import (
    MODES,
    ChunkScheduler,
    Plan,
    SchedulerConfig,
    ensemble_weights,
)
from visuomotor.policy.runtime import ActionChunk

#: Control periods (50, 20 and 10 Hz).
PERIODS = (0.02, 0.05, 0.1)
#: The scheduler's own slack on time comparisons.
TIME_EPS = 1e-9

Values = Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray | None]]


@dataclass(frozen=True)
class Scenario:
    """Chunks (observation time, arrival time) and plan queries, for one scheduler."""

    config: SchedulerConfig
    period: float
    length: int
    joints: int
    stamps: tuple[float, ...]
    arrivals: tuple[float, ...]
    queries: tuple[float, ...]


@dataclass(frozen=True)
class Query:
    """One `plan(now)` call and the chunks the scheduler holds then, oldest first."""

    now: float
    plan: Plan | None
    held: tuple[ActionChunk, ...]


@st.composite
def scenarios(draw: st.DrawFn, *, modes: tuple[str, ...] = MODES, on_grid: bool = False,
              blend: bool | None = None) -> Scenario:
    """Random chunk sequences; `on_grid`: observation times on multiples of the period."""
    mode = draw(st.sampled_from(modes))
    period = draw(st.sampled_from(PERIODS))
    length = draw(st.integers(1, 16))
    use_blend = draw(st.booleans()) if blend is None else blend
    blend_s = draw(st.floats(0.001, 0.5)) if use_blend else 0.0
    config = SchedulerConfig(
        mode=mode, execute_steps=draw(st.integers(1, length)),
        ensemble_decay=draw(st.floats(0.0, 1.0)), blend_s=blend_s,
        exec_latency_s=draw(st.sampled_from([0.0, 0.01, draw(st.floats(0.0, 0.2))])),
        max_age_s=draw(st.floats(0.2, 3.0)))
    count = draw(st.integers(1, 8))
    if on_grid:
        steps = draw(st.lists(st.integers(1, 6), min_size=count, max_size=count))
        start = draw(st.integers(0, 50))
        stamps = [(start + int(k)) * period for k in np.cumsum(steps)]
    else:
        gaps = draw(st.lists(st.floats(0.001, 0.5), min_size=count, max_size=count))
        stamps = [float(s) for s in draw(st.floats(0.0, 5.0)) + np.cumsum(gaps)]
    latencies = draw(st.lists(st.floats(0.0, 0.5), min_size=count, max_size=count))
    arrivals = [s + lat for s, lat in zip(stamps, latencies, strict=True)]
    queries = draw(st.lists(st.floats(stamps[0], max(arrivals) + 1.5), max_size=12))
    return Scenario(config, period, length, draw(st.integers(1, 3)), tuple(stamps),
                    tuple(arrivals), tuple(queries))


def replay(scn: Scenario, values: Values) -> list[Query]:
    """Feed the chunks at their arrival times and plan at every query and every arrival.

    A model of what the scheduler holds is kept alongside (the receding horizon keeps the
    newest chunk; older chunks observed more than max_age_s ago are dropped, never the
    newest), so
    `add`'s answer is checked at every arrival.
    """
    scheduler = ChunkScheduler(scn.config, scn.period, scn.length)
    # At equal times the chunk arrives before the query (kind 0 sorts first).
    events = sorted([(t, 0, i) for i, t in enumerate(scn.arrivals)]
                    + [(t, 1, i) for i, t in enumerate(scn.arrivals)]
                    + [(t, 1, -1) for t in scn.queries])
    held: list[ActionChunk] = []
    queries = []
    for now, kind, index in events:
        if kind == 0:
            times = scn.stamps[index] + scn.period * np.arange(scn.length)
            positions, gripper = values(index, times)
            arrived = ActionChunk(scn.stamps[index], scn.period, positions, gripper)
            newer = not held or arrived.start_s > held[-1].start_s
            assert scheduler.add(arrived, now) is newer
            if newer:
                held = [arrived] if scn.config.mode == 'receding_horizon' else [*held, arrived]
                while len(held) > 1 and now - held[0].start_s > scn.config.max_age_s:
                    held.pop(0)
            assert scheduler.newest_stamp_s == (held[-1].start_s if held else None)
        else:
            queries.append(Query(now, scheduler.plan(now), tuple(held)))
    return queries


def random_values(seed: int, joints: int, gripper: bool) -> Values:
    """Independent random rows for every chunk."""
    def values(index: int, times: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        rng = np.random.default_rng([seed, index])
        g = rng.uniform(0.0, 1.0, len(times)) if gripper else None
        return rng.uniform(-3.0, 3.0, (len(times), joints)), g
    return values


def linear_values(a: np.ndarray, b: np.ndarray, ga: float | None, gb: float) -> Values:
    """Every chunk sampled from f(t) = a + b t (and gripper ga + gb t) on its own grid."""
    def values(index: int, times: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return a + b * times[:, None], None if ga is None else ga + gb * times
    return values


def interp(chunk: ActionChunk, t: float) -> tuple[np.ndarray, bool]:
    """A chunk's linearly interpolated row at `t` (joints then gripper), and if it covers t."""
    times = chunk.times()
    row = np.array([np.interp(t, times, column) for column in interp_rows(chunk).T])
    return row, bool(times[0] - TIME_EPS <= t <= times[-1] + TIME_EPS)


def interp_rows(chunk: ActionChunk) -> np.ndarray:
    """A chunk's joints then gripper."""
    return chunk.positions if chunk.gripper is None else \
        np.column_stack([chunk.positions, chunk.gripper])


def plan_rows(plan: Plan) -> np.ndarray:
    """The plan's joints then gripper."""
    return plan.positions if plan.gripper is None else \
        np.column_stack([plan.positions, plan.gripper])


def chunk(start: float, values: list[float] | np.ndarray, period: float = 0.1,
          joints: int = 2) -> ActionChunk:
    """A chunk whose joints all follow `values`."""
    column = np.asarray(values, dtype=np.float64)[:, None]
    return ActionChunk(start, period, np.repeat(column, joints, axis=1))


def planned(scheduler: ChunkScheduler, now: float) -> Plan:
    """`scheduler.plan(now)`, which must exist."""
    plan = scheduler.plan(now)
    assert plan is not None
    return plan


# -- ensemble weights -------------------------------------------------------------------------

@given(st.integers(1, 50), st.floats(0.0, 1.0))
def test_ensemble_weights_are_normalised_positive_and_non_increasing(count: int,
                                                                     decay: float) -> None:
    weights = ensemble_weights(count, decay)
    assert weights.shape == (count,)
    assert abs(weights.sum() - 1.0) <= 1e-12
    assert (weights > 0.0).all()
    assert (np.diff(weights) <= 0.0).all()  # i = 0 (the oldest) weighs most


def test_ensemble_weights_follow_act() -> None:
    np.testing.assert_allclose(ensemble_weights(3, 0.0), [1 / 3] * 3, rtol=1e-15)
    w = ensemble_weights(4, 0.5)
    np.testing.assert_allclose(w[1:] / w[:-1], math.exp(-0.5), rtol=1e-14)


# -- latency compensation ---------------------------------------------------------------------

@given(scenarios(), st.integers(0, 2**32 - 1), st.booleans())
def test_no_row_is_planned_before_its_time(scn: Scenario, seed: int, gripper: bool) -> None:
    cfg = scn.config
    for q in replay(scn, random_values(seed, scn.joints, gripper)):
        if q.plan is None:  # nothing held, or the newest chunk aged out
            assert not q.held or q.now - q.held[-1].start_s > cfg.max_age_s
            continue
        plan, newest = q.plan, q.held[-1]
        assert q.now - newest.start_s <= cfg.max_age_s
        earliest = q.now + cfg.exec_latency_s
        rows = len(plan.times)
        assert plan.positions.shape == (rows, scn.joints)
        if gripper:
            assert plan.gripper is not None and plan.gripper.shape == (rows,)
        else:
            assert plan.gripper is None
        fresh = [c for c in q.held if q.now - c.start_s <= cfg.max_age_s]
        assert plan.chunks_used == (len(fresh) if cfg.mode == 'temporal_ensemble' else 1)
        if plan.over_budget:
            assert newest.times()[-1] < earliest - TIME_EPS  # really every row was late
            assert rows == 1
            assert abs(plan.times[0] - (earliest + scn.period)) <= TIME_EPS
            np.testing.assert_array_equal(plan_rows(plan), interp_rows(newest)[-1:])
        else:
            assert (plan.times >= earliest - TIME_EPS).all()
            assert (np.diff(plan.times) > 0.0).all()
            # the tick itself, then every later row of the newest chunk on its grid
            assert plan.times[0] == pytest.approx(earliest, abs=1e-12)
            grid = newest.times()
            np.testing.assert_array_equal(plan.times[1:], grid[grid > earliest + TIME_EPS])


# -- identical chunks -------------------------------------------------------------------------

@given(scenarios(on_grid=True, blend=False),
       st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3),
       st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3),
       st.none() | st.floats(0.0, 1.0), st.floats(-0.2, 0.2))
def test_chunks_from_one_trajectory_give_that_trajectory(
        scn: Scenario, a: list[float], b: list[float], ga: float | None, gb: float) -> None:
    # Linear in t, so every interpolation, ensemble and cross-fade is exact up to rounding,
    # whatever the latencies.
    aj, bj = np.array(a[:scn.joints]), np.array(b[:scn.joints])
    for q in replay(scn, linear_values(aj, bj, ga, gb)):
        if q.plan is None:
            continue
        plan = q.plan
        if plan.over_budget:  # the newest chunk's last row, one period ahead
            t = q.held[-1].times()[-1:]
        else:
            t = plan.times
        np.testing.assert_allclose(plan.positions, aj + bj * t[:, None], rtol=0, atol=1e-9)
        if ga is None:
            assert plan.gripper is None
        else:
            assert plan.gripper is not None
            np.testing.assert_allclose(plan.gripper, ga + gb * t, rtol=0, atol=1e-9)


@given(scenarios(),
       st.lists(st.floats(-3.0, 3.0, allow_subnormal=False), min_size=3, max_size=3))
def test_chunks_holding_a_constant_give_that_constant(scn: Scenario, c: list[float]) -> None:
    # Up to the rounding of the interpolation / ensemble / blend arithmetic (a few ulps); see
    # test_constant_is_held_bit_exactly for exact equality.
    hold = np.array(c[:scn.joints])
    for q in replay(scn, lambda i, t: (np.tile(hold, (len(t), 1)), None)):
        if q.plan is not None:
            np.testing.assert_array_max_ulp(q.plan.positions,
                                            np.broadcast_to(hold, q.plan.positions.shape),
                                            maxulp=4)


@pytest.mark.parametrize(('mode', 'blend_s'), [('receding_horizon', 0.0),
                                               ('receding_horizon', 0.3),
                                               ('temporal_ensemble', 0.0)])
def test_constant_is_held_bit_exactly(mode: str, blend_s: float) -> None:
    hold = 0.3  # one value that shows it in all three; most constants do in some
    scheduler = ChunkScheduler(SchedulerConfig(mode=mode, execute_steps=2, blend_s=blend_s,
                                               ensemble_decay=0.01), 0.1, 8)
    for k in range(1, 12):
        now = 0.037 * k + 0.05
        scheduler.add(chunk(0.037 * k, [hold] * 8), now)
        np.testing.assert_array_equal(planned(scheduler, now).positions, hold)


# -- temporal ensemble ------------------------------------------------------------------------

@given(scenarios(modes=('temporal_ensemble',)), st.integers(0, 2**32 - 1), st.booleans())
def test_temporal_ensemble_is_acts_weighted_mean_of_covering_chunks(
        scn: Scenario, seed: int, gripper: bool) -> None:
    decay = scn.config.ensemble_decay
    for q in replay(scn, random_values(seed, scn.joints, gripper)):
        if q.plan is None or q.plan.over_budget:
            continue
        for row, t in zip(plan_rows(q.plan), q.plan.times, strict=True):
            covering = [(i, v) for i, c in enumerate(q.held)
                        for v, covers in [interp(c, t)] if covers]
            assert covering  # the newest chunk covers the plan
            values = np.array([v for _, v in covering])
            slack = 1e-12 * max(1.0, float(np.abs(values).max()))
            # a convex combination: between the covering chunks' min and max
            assert (row >= values.min(axis=0) - slack).all()
            assert (row <= values.max(axis=0) + slack).all()
            # with ACT's weights exp(-k i), i = 0 for the oldest chunk held
            weights = np.exp(-decay * np.array([i for i, _ in covering], dtype=np.float64))
            np.testing.assert_allclose(row, weights @ values / weights.sum(), rtol=0,
                                       atol=1e-9)


def test_temporal_ensemble_favours_the_older_prediction() -> None:
    scheduler = ChunkScheduler(SchedulerConfig(mode='temporal_ensemble', ensemble_decay=0.5),
                               0.1, 8)
    scheduler.add(chunk(0.0, [0.0] * 8), 0.05)
    scheduler.add(chunk(0.1, [1.0] * 8), 0.15)
    plan = planned(scheduler, 0.15)
    assert plan.chunks_used == 2
    np.testing.assert_allclose(plan.times, [0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    w = ensemble_weights(2, 0.5)
    assert w[1] < 0.5
    np.testing.assert_allclose(plan.positions[:-1], w[1], rtol=1e-12)  # both cover
    np.testing.assert_allclose(plan.positions[-1], 1.0)  # only the newest covers 0.8
    assert scheduler.inference_due(0.15, 0.0)  # every tick


# -- receding horizon -------------------------------------------------------------------------

@given(scenarios(modes=('receding_horizon',), blend=False), st.integers(0, 2**32 - 1),
       st.booleans())
def test_receding_horizon_executes_the_newest_chunk(scn: Scenario, seed: int,
                                                    gripper: bool) -> None:
    for q in replay(scn, random_values(seed, scn.joints, gripper)):
        if q.plan is None or q.plan.over_budget:
            continue
        newest = q.held[-1]
        later = newest.times() > q.now + scn.config.exec_latency_s + TIME_EPS
        rows = plan_rows(q.plan)
        assert q.plan.chunks_used == 1
        # the newest chunk's own rows, and the newest chunk interpolated at the tick
        np.testing.assert_array_equal(rows[1:], interp_rows(newest)[later])
        np.testing.assert_allclose(rows[0], interp(newest, q.plan.times[0])[0], rtol=0,
                                   atol=1e-12)


@given(st.sampled_from(PERIODS), st.integers(1, 16), st.floats(0.0, 100.0),
       st.floats(0.0, 0.5))
def test_inference_is_due_execute_steps_after_the_newest_observation(
        period: float, steps: int, stamp: float, latency: float) -> None:
    scheduler = ChunkScheduler(SchedulerConfig(execute_steps=steps), period, 16)
    assert scheduler.inference_due(stamp, latency)  # nothing yet
    scheduler.add(chunk(stamp, [0.0] * 16, period), stamp + latency)
    due = stamp + steps * period - latency
    assert not scheduler.inference_due(due - 1e-6, latency)
    assert scheduler.inference_due(due, latency)
    assert scheduler.inference_due(due + 1e-6, latency)
    # the expected latency brings it forward; without it, due at stamp + steps * period
    assert scheduler.inference_due(stamp + steps * period, 0.0)
    assert latency < 1e-6 or not scheduler.inference_due(due, 0.0)


def test_chunk_not_newer_than_the_newest_is_ignored() -> None:
    scheduler = ChunkScheduler(SchedulerConfig(execute_steps=2), 0.1, 8)
    assert scheduler.add(chunk(1.0, np.arange(8.0)), 1.05)
    before = planned(scheduler, 1.1)
    assert not scheduler.add(chunk(1.0, [9.0] * 8), 1.1)   # same observation time
    assert not scheduler.add(chunk(0.95, [9.0] * 8), 1.1)  # older, arrived late
    after = planned(scheduler, 1.1)
    np.testing.assert_array_equal(after.positions, before.positions)
    assert scheduler.newest_stamp_s == 1.0
    assert not scheduler.inference_due(1.1)


def test_a_very_late_chunk_still_counts_as_the_newest() -> None:
    scheduler = ChunkScheduler(SchedulerConfig(execute_steps=1, max_age_s=3.0), 0.1, 4)
    assert scheduler.add(chunk(1.0, [1.0] * 4), 1.8)  # rows 1.0..1.3, horizon 0.4 s
    assert scheduler.newest_stamp_s == 1.0
    plan = planned(scheduler, 1.8)
    assert plan.over_budget
    assert not scheduler.add(chunk(0.9, [0.0] * 4), 1.85)


@given(st.sampled_from(PERIODS), st.integers(4, 16), st.floats(0.0, 1.0),
       st.floats(0.0, 1.0), st.floats(-2.0, 2.0).filter(lambda s: abs(s) > 1e-3),
       st.floats(0.0, 0.2))
def test_blending_cross_fades_a_step_between_chunks(period: float, length: int,
                                                    late: float, blend_extra: float,
                                                    step: float, exec_latency: float) -> None:
    # The first planned row is exec_latency after the switch, and this fade is longer.
    blend_s = exec_latency + period + blend_extra
    latency = late * (length - 1) * period  # the new chunk arrives within its horizon
    old_stamp, stamp = 1.0 - 0.37 * period, 1.0  # off the new chunk's grid
    schedulers = {b: ChunkScheduler(SchedulerConfig(execute_steps=1, blend_s=b, max_age_s=5.0,
                                                    exec_latency_s=exec_latency), period, length)
                  for b in (0.0, blend_s)}
    switch = stamp + latency
    plans = {}
    for b, scheduler in schedulers.items():
        scheduler.add(chunk(old_stamp, [0.0] * length, period), old_stamp)
        assert scheduler.add(chunk(stamp, [step] * length, period), switch)  # the step
        plans[b] = planned(scheduler, switch)
    hard, soft = plans[0.0], plans[blend_s]
    assert hard.over_budget is soft.over_budget
    if hard.over_budget:
        return
    np.testing.assert_allclose(hard.positions, step, rtol=1e-15)  # the whole step at once
    # The old plan (0, held beyond its last row) fades into the new chunk over blend_s.
    alpha = np.clip((soft.times - switch) / blend_s, 0.0, 1.0)
    expected = step * alpha
    np.testing.assert_allclose(soft.positions, np.tile(expected[:, None], (1, 2)), rtol=0,
                               atol=1e-12)
    first = soft.positions[0]
    # between the old plan (0) and the new chunk: a smaller jump than without blending
    assert (np.minimum(0.0, step) <= first).all() and (first <= np.maximum(0.0, step)).all()
    assert (np.abs(first) < abs(step)).all()


def test_blended_chunks_of_one_trajectory_give_that_trajectory() -> None:
    # Overlapping chunks sampled from q(t) = 0.5 + 2 t: the cross-fade changes nothing.
    scheduler = ChunkScheduler(SchedulerConfig(execute_steps=4, blend_s=0.3), 0.1, 8)
    for stamp, now in ((1.0, 1.05), (1.4, 1.47), (1.8, 1.83)):
        rows = 0.5 + 2.0 * (stamp + 0.1 * np.arange(8))
        assert scheduler.add(chunk(stamp, rows), now)
        for t in (now, now + 0.04, now + 0.11):
            plan = planned(scheduler, t)
            np.testing.assert_allclose(plan.positions[:, 0], 0.5 + 2.0 * plan.times, atol=1e-12)


def test_blending_past_the_end_of_the_previous_plan_holds_its_last_target() -> None:
    # A 0.2 s blend, but the old chunk ends 0.05 s after the switch: no step at its end.
    scheduler = ChunkScheduler(SchedulerConfig(execute_steps=2, blend_s=0.2), 0.05, 4)
    scheduler.add(chunk(0.0, [0.0, 0.1, 0.2, 0.3]), 0.0)
    assert scheduler.add(chunk(0.1, [1.0] * 4), 0.1)
    values = [planned(scheduler, t).positions[0, 0] for t in np.arange(0.1, 0.31, 0.01)]
    assert np.max(np.abs(np.diff(values))) < 0.1  # a fade, not a jump
    assert values[-1] == pytest.approx(1.0)


def test_blending_is_continuous_with_what_was_sent() -> None:
    # The old plan ramps 0 -> 0.7; at 0.35 a chunk observed at 0.3 says 5.0 everywhere.
    scheduler = ChunkScheduler(SchedulerConfig(execute_steps=2, blend_s=0.4), 0.1, 8)
    scheduler.add(chunk(0.0, np.arange(8) * 0.1), 0.0)
    sent = planned(scheduler, 0.35)
    assert scheduler.add(chunk(0.3, [5.0] * 8), 0.35)
    plan = planned(scheduler, 0.35)
    np.testing.assert_allclose(plan.times, [0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    # the first row is what the old plan sent for this tick: no step at the switch
    np.testing.assert_allclose(plan.positions[0], sent.positions[0], rtol=1e-12)
    alpha = (plan.times - 0.35) / 0.4
    old = plan.times  # the ramp, while the old chunk covers (up to 0.7)
    expected = np.where(plan.times <= 0.7 + 1e-9, old * (1 - alpha) + 5.0 * alpha, 5.0)
    np.testing.assert_allclose(plan.positions[:, 0], expected, rtol=1e-12)


def test_blending_never_starts_from_a_plan_that_aged_out() -> None:
    # The old chunk ramps 0 -> 1.5 rad; its plan ages out at 0.3 s, so nothing is sent and the
    # watchdog stops the arm near 0.3. The new chunk, observed there, holds 0.3.
    scheduler = ChunkScheduler(SchedulerConfig(execute_steps=4, blend_s=0.3, max_age_s=0.3),
                               0.1, 16)
    scheduler.add(chunk(0.0, np.arange(16) * 0.1), 0.05)
    assert scheduler.plan(0.5) is None
    assert scheduler.add(chunk(0.9, [0.3] * 16), 1.0)
    # Actually the first row is 1.0 rad (the 1 s old plan at 1.0 s): a 0.7 rad step that
    # neither the policy nor the last plan sent asked for.
    np.testing.assert_allclose(planned(scheduler, 1.0).positions, 0.3)


def test_ensemble_after_a_gap_uses_only_fresh_chunks() -> None:
    scheduler = ChunkScheduler(SchedulerConfig(mode='temporal_ensemble', max_age_s=0.3),
                               0.1, 16)
    scheduler.add(chunk(0.0, np.arange(16) * 0.1), 0.05)
    assert scheduler.plan(0.5) is None  # aged out: nothing sent, the arm stopped
    assert scheduler.add(chunk(0.9, [0.3] * 16), 1.0)
    plan = planned(scheduler, 1.0)
    assert plan.chunks_used == 1  # actually 2: the 1 s old chunk still weighs about 1/2
    np.testing.assert_allclose(plan.positions, 0.3)


# -- freshness --------------------------------------------------------------------------------

@given(st.sampled_from(MODES), st.floats(0.05, 2.0), st.floats(0.0, 10.0),
       st.floats(0.0, 0.5))
def test_plans_age_out_and_reset_clears(mode: str, max_age: float, stamp: float,
                                        latency: float) -> None:
    config = SchedulerConfig(mode=mode, execute_steps=4, max_age_s=max_age)
    scheduler = ChunkScheduler(config, 0.1, 32)
    assert scheduler.plan(stamp) is None  # nothing yet
    arrival = stamp + min(latency, max_age / 2)
    assert scheduler.add(chunk(stamp, np.arange(32.0), 0.1), arrival)
    assert scheduler.plan(arrival) is not None
    assert scheduler.plan(stamp + max_age * (1 - 1e-9)) is not None
    assert scheduler.plan(stamp + max_age * (1 + 1e-6) + 1e-9) is None
    assert scheduler.plan(stamp + max_age + 5.0) is None
    scheduler.reset()
    assert scheduler.newest_stamp_s is None
    assert scheduler.plan(arrival) is None
    assert scheduler.inference_due(arrival)
    assert scheduler.add(chunk(stamp - 1.0, np.arange(32.0), 0.1), arrival)  # older is fine


def test_reset_forgets_the_blend() -> None:
    scheduler = ChunkScheduler(SchedulerConfig(execute_steps=2, blend_s=1.0), 0.1, 8)
    scheduler.add(chunk(0.0, [0.0] * 8), 0.0)
    scheduler.add(chunk(0.1, [1.0] * 8), 0.15)
    scheduler.reset()
    scheduler.add(chunk(0.2, [2.0] * 8), 0.2)
    np.testing.assert_array_equal(planned(scheduler, 0.2).positions, 2.0)


# -- configuration ----------------------------------------------------------------------------

@pytest.mark.parametrize(('changes', 'field'), [
    ({'mode': 'ensemble'}, 'mode'),
    ({'mode': ''}, 'mode'),
    ({'execute_steps': 0}, 'execute_steps'),
    ({'execute_steps': -3}, 'execute_steps'),
    ({'exec_latency_s': -0.01}, 'exec_latency_s'),
    ({'exec_latency_s': math.nan}, 'exec_latency_s'),
    ({'blend_s': -1.0}, 'blend_s'),
    ({'blend_s': math.inf}, 'blend_s'),
    ({'ensemble_decay': -0.01}, 'ensemble_decay'),
    ({'max_age_s': 0.0}, 'max_age_s'),
    ({'max_age_s': math.nan}, 'max_age_s'),
])
def test_invalid_config_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        replace(SchedulerConfig(), **changes)


def test_execute_steps_longer_than_the_chunk_is_refused() -> None:
    with pytest.raises(ValueError, match='execute_steps'):
        ChunkScheduler(SchedulerConfig(execute_steps=9), 0.1, 8)
    ChunkScheduler(SchedulerConfig(execute_steps=8), 0.1, 8)
    # the temporal ensemble does not use execute_steps
    ChunkScheduler(SchedulerConfig(mode='temporal_ensemble', execute_steps=9), 0.1, 8)


# -- gripper ----------------------------------------------------------------------------------

@pytest.mark.parametrize('mode', MODES)
def test_gripper_goes_through_the_same_arithmetic(mode: str) -> None:
    scheduler = ChunkScheduler(SchedulerConfig(mode=mode, execute_steps=2, blend_s=0.2,
                                               ensemble_decay=0.0), 0.1, 4)
    arm = np.zeros((4, 3))
    scheduler.add(ActionChunk(0.0, 0.1, arm, np.zeros(4)), 0.0)
    scheduler.add(ActionChunk(0.1, 0.1, arm + 1.0, np.ones(4)), 0.1)
    plan = planned(scheduler, 0.1)
    assert plan.gripper is not None
    assert plan.positions.shape == (4, 3)
    assert plan.gripper.shape == (4,)
    # the gripper column equals each joint column: same interpolation, weights and blend
    for j in range(3):
        np.testing.assert_array_equal(plan.gripper, plan.positions[:, j])
    if mode == 'temporal_ensemble':  # equal weights where both cover 0.1..0.3, then newest
        np.testing.assert_allclose(plan.gripper, [0.5, 0.5, 0.5, 1.0])
    else:  # cross-fade from the old plan over 0.2 s, then the new chunk (old ends at 0.3)
        np.testing.assert_allclose(plan.gripper, [0.0, 0.5, 1.0, 1.0])
