"""Benchmark: the safety bridge's cost per command and its stop latency on the twin.

Measured:
- limiter cost per command (median and p99 microseconds, FR3 and UR5e, commissioning tier):
  compliant commands (pass through unchanged: one FK), commands the limiter must change
  (a +2.5 rad step: clamping, velocity, Cartesian and acceleration stages, two FKs), and the
  whole bridge tick (chunk sampling + limiter + setpoint with braking tail) under a policy
  streaming 10 Hz chunks toward random targets. Target: under 50 us per command.
- stop latency over 100 stall trials on the twin through the real nodes over DDS (sim node at
  1x real time, bridge at 100 Hz): a policy streams chunks for a random 0.3-0.6 s, then goes
  silent. Reported from the bridge's decision records: time from the last valid command to
  the first stopping setpoint (bound: watchdog 0.15 s + one control period 0.01 s), time
  until the measured arm is at rest, and joint travel after the last command.

Run: make bench   (or: python bench/safety.py [--trials N])
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from visuomotor.safety.bridge import BridgeTiming, SafetyBridge
from visuomotor.safety.limiter import Limiter
from visuomotor.safety.profile import load_safety_profile
from visuomotor.safety.workspace import load_workspace
from visuomotor.trajectory import JointTrajectoryCommand

RESULTS = Path(__file__).resolve().parent / 'results'


def _stats_us(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    return {'median_us': statistics.median(ordered) / 1e3,
            'p99_us': ordered[int(0.99 * (len(ordered) - 1))] / 1e3, 'n': len(ordered)}


def limiter_cost(robot: str, workspace: str, steps: int) -> dict[str, Any]:
    """Per-command cost of the limiter on compliant and on limited commands."""
    profile = load_safety_profile(robot)
    bridge = SafetyBridge(profile, load_workspace(workspace))
    limiter: Limiter = bridge.limiter  # type: ignore[assignment]
    dt = bridge.timing.control_period_s
    home = np.array(profile.robot.home_rad)
    out: dict[str, Any] = {}

    state = limiter.seed(home)
    times, changed = [], 0
    for k in range(steps):
        target = home + 0.02 * np.sin(2 * np.pi * 0.2 * k * dt) * np.ones_like(home)
        start = time.perf_counter_ns()
        result = limiter.step(state, target, dt)
        times.append(time.perf_counter_ns() - start)
        changed += bool(result.reasons)
        state = result.state
    out['compliant'] = {**_stats_us(times), 'changed_fraction': changed / steps}

    times = []
    state = limiter.seed(home)
    jump = home.copy()
    jump[0] += 2.5
    for _ in range(steps):
        start = time.perf_counter_ns()
        result = limiter.step(state, jump, dt)
        times.append(time.perf_counter_ns() - start)
        if not result.reasons:
            break
        state = result.state
        if abs(state.q[0] - jump[0]) < 0.3:  # restart well before the target is reached
            state = limiter.seed(home)
    out['limited (+2.5 rad step)'] = _stats_us(times)

    # The whole tick under a 10 Hz policy toward random targets near home.
    rng = np.random.default_rng(0)
    names = profile.robot.joint_names
    now = 1.0
    bridge.on_joint_state(now, names, home.tolist(), now)
    bridge.arm(now)
    times = []
    target = home
    for k in range(steps):
        now = 1.0 + (k + 1) * dt
        command = bridge.command
        measured = home if command is None else command.q
        bridge.on_joint_state(now, names, measured.tolist(), now)
        if k % 10 == 0:
            if k % 100 == 0:
                target = home + rng.uniform(-0.3, 0.3, len(home))
            points = tuple((0.1 * (i + 1), tuple(measured + (target - measured) * (i + 1) / 8),
                            (), ()) for i in range(8))
            bridge.on_command(now, JointTrajectoryCommand(names, points, now))
        start = time.perf_counter_ns()
        bridge.tick(now)
        times.append(time.perf_counter_ns() - start)
    out['bridge tick (10 Hz chunks, random targets)'] = {
        **_stats_us(times), 'state_at_end': bridge.state.value,
        'limited_ticks': {k: v for k, v in bridge.counters.values.items()
                          if k.startswith('limited_')}}
    return out


def stop_latency(trials: int) -> dict[str, Any]:
    """Stall trials through the real nodes on the twin."""
    import rclpy
    from rclpy.context import Context

    from visuomotor.ros.twin_graph import BridgeHarness

    context = Context()
    rclpy.init(context=context)
    graph = BridgeHarness(context, real_time_factor=1.0)
    timing: BridgeTiming = graph.bridge.bridge.timing
    rng = np.random.default_rng(1)
    latency, to_rest, travel, failures = [], [], [], []
    try:
        graph.arm()
        for trial in range(trials):
            target = graph.home + rng.uniform(-0.25, 0.25, len(graph.home))
            graph.run_for(float(rng.uniform(0.3, 0.6)), graph.stream(target))
            if graph.client.state != 'armed':
                failures.append(f'trial {trial}: state {graph.client.state} before the stall')
            graph.client.record.decisions.clear()
            graph.client.record.joint_states.clear()
            if not graph.wait_for_state('holding', 3.0):
                failures.append(f'trial {trial}: never reached holding')
                continue
            graph.run_for(0.3)
            decisions = graph.client.record.decisions
            stopping = [d for d in decisions if d['state'] == 'stopping']
            first = stopping[0]
            last_valid_s = float(first['t']) - float(first['since_command'])
            latency.append(float(first['since_command']))
            states = graph.client.record.joint_states
            at_rest = next((s for s, _, v in states
                            if s > float(first['t']) and np.max(np.abs(v)) < 0.01), None)
            to_rest.append(float('nan') if at_rest is None else at_rest - last_valid_s)
            q_last = next(q for s, q, _ in states if s >= last_valid_s)
            travel.append(float(np.max(np.abs(states[-1][1] - q_last))))
    finally:
        graph.close()
        rclpy.shutdown(context=context)
    bound = timing.watchdog_s + timing.control_period_s
    lat = np.array(latency)
    return {'trials': trials, 'completed': len(latency), 'failures': failures,
            'bound_s': bound, 'watchdog_s': timing.watchdog_s,
            'control_period_s': timing.control_period_s,
            'stop_start_s': {'median': float(np.median(lat)), 'p99': float(np.quantile(lat, 0.99)),
                             'max': float(lat.max()), 'min': float(lat.min()),
                             'within_bound': int(np.sum(lat <= bound + 1e-9))},
            'to_rest_s': {'median': float(np.nanmedian(to_rest)),
                          'max': float(np.nanmax(to_rest))},
            'travel_after_last_command_rad': {'median': float(np.median(travel)),
                                              'max': float(np.max(travel))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--trials', type=int, default=100)
    parser.add_argument('--steps', type=int, default=20000)
    args = parser.parse_args()
    results: dict[str, Any] = {
        'machine': {'platform': platform.platform(), 'processor': platform.processor(),
                    'cpus': os.cpu_count()},
        'date': datetime.date.today().isoformat(),
        'limiter': {robot: limiter_cost(robot, f'twin_{robot}', args.steps)
                    for robot in ('fr3', 'ur5e')}}
    print(json.dumps(results['limiter'], indent=1))
    results['stop'] = stop_latency(args.trials)
    print(json.dumps(results['stop'], indent=1))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'safety.json').write_text(json.dumps(results, indent=2) + '\n')
    lines = ['# Safety bridge benchmark', '',
             f'{results["date"]}, {results["machine"]["platform"]}, '
             f'{results["machine"]["cpus"]} CPUs', '',
             '## Cost per command (commissioning tier; target < 50 us)', '',
             '| robot | case | median us | p99 us |', '|---|---|---|---|']
    for robot, cases in results['limiter'].items():
        for case, row in cases.items():
            lines.append(f'| {robot} | {case} | {row["median_us"]:.1f} | {row["p99_us"]:.1f} |')
    stop = results['stop']
    s, r, t = stop['stop_start_s'], stop['to_rest_s'], stop['travel_after_last_command_rad']
    lines += ['', f'## Stop latency: {stop["completed"]} of {stop["trials"]} stall trials on the '
              f'FR3 twin over DDS (sim 1x real time)', '',
              f'Bound: watchdog {stop["watchdog_s"]} s + one control period '
              f'{stop["control_period_s"]} s = {stop["bound_s"]:.3f} s.', '',
              '| measure | median | p99 | max |', '|---|---|---|---|',
              f'| last valid command -> first stopping setpoint (s) | {s["median"]:.3f} | '
              f'{s["p99"]:.3f} | {s["max"]:.3f} |',
              f'| last valid command -> measured arm at rest (s) | {r["median"]:.3f} | | '
              f'{r["max"]:.3f} |',
              f'| joint travel after the last command (rad) | {t["median"]:.3f} | | '
              f'{t["max"]:.3f} |', '',
              f'Stops that began within the bound: {s["within_bound"]} of {stop["completed"]}.',
              '']
    if stop['failures']:
        lines += ['Failures:', *[f'- {f}' for f in stop['failures']], '']
    (RESULTS / 'safety.md').write_text('\n'.join(lines))
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
