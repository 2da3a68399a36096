"""Benchmark: the twin graphs on a loaded machine (a CPU hog on every core, nice 0).

Measured, with `CpuHog` (visuomotor.sim.cpu_load) spinning one process per core at the
graph's own priority for the whole ROS part:
- deploy: the bundled policy through the whole deploy graph (the demo's stage 6 machinery:
  sim node in lockstep, policy node, safety bridge in the commissioning tier, simulated time
  at 1x) on N seeded episodes, against the same policy rolled out in-process on the same
  seeds (deterministic, so it runs before the hog starts). Reported: success through ROS and
  in-process, per-seed agreement, safety bridge faults (every FAULT the graph monitor saw;
  target 0), the twin's achieved real-time factor and the wall time it waited for its
  lockstep consumers.
- record: the record graph with the scripted Quest (operator:=script) for K kept episodes;
  bridge faults and non-finite actions or states in the committed dataset (targets 0), and
  the dataset check's verdict.

Results: bench/results/load.{json,md} (one run; medians where a distribution is reported).
Run: python bench/load.py [--episodes 100] [--record-episodes 5] [--hog 2]
(about 1.5 h for 100 episodes on 2 cores; --episodes 10 for a quick look).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from visuomotor.paths import share_dir
from visuomotor.policy.bundle import load_bundle
from visuomotor.recording.check import check_dataset
from visuomotor.recording.reader import DatasetReader
from visuomotor.ros.demo_deploy import run_deploy_stage
from visuomotor.ros.demo_teleop import run_teleop_stage
from visuomotor.ros.policy_node import resolve_model
from visuomotor.ros.runner import graph_domain
from visuomotor.sim.calibration_capture import verify_on_twin
from visuomotor.sim.cpu_load import CpuHog
from visuomotor.training.demo_policy import EVAL_SEEDS, NAME, evaluate

RESULTS = Path(__file__).resolve().parent / 'results'


def verified_rig(work: Path) -> Path:
    """A copy of the twin's rig calibration with a passing verification made now."""
    folder = work / 'calibration' / 'twin_fr3'
    shutil.copytree(share_dir() / 'calibration' / 'twin_fr3', folder,
                    ignore=shutil.ignore_patterns('verification'))
    record = verify_on_twin(folder, 'fr3', datetime.datetime.now(datetime.UTC))
    if not record.passed:
        raise SystemExit(f'the twin rig does not verify: {record.failures()}')
    return folder


def deploy_under_load(work: Path, episodes: int, hog: int, rig: Path) -> dict[str, Any]:
    """The deploy graph under the hog against the in-process reference."""
    seeds = [EVAL_SEEDS[0] + i for i in range(episodes)]
    bundle = load_bundle(resolve_model(NAME))
    print(f'in-process reference: {episodes} episodes (no hog: it is deterministic)')  # noqa: T201
    reference = evaluate(bundle, seeds)
    print(f'  {sum(r.success for r in reference.results)}/{episodes} '  # noqa: T201
          f'({reference.wall_s:.0f} s)')
    with CpuHog(hog) as load:
        figures = run_deploy_stage(work / 'deploy', seeds, report=print, calibration=str(rig),
                                   in_process=reference)
    ros = [e.success for e in figures.episodes]
    ref = [r.success for r in reference.results]
    return {
        'episodes': episodes, 'seeds': [seeds[0], seeds[-1]],
        'ros_successes': int(sum(ros)), 'in_process_successes': int(sum(ref)),
        'difference_points': (sum(ros) - sum(ref)) / episodes * 100,
        'same_outcome': int(sum(a == b for a, b in zip(ros, ref, strict=True))),
        'faults': figures.faults,
        'fault_notes': sorted({e.note for e in figures.episodes if e.note}),
        'achieved_real_time_factor': figures.twin.get('achieved_real_time_factor'),
        'lockstep_wait_s': figures.twin.get('lockstep_wait_s'),
        'wall_s': figures.wall_s, 'hog_processes': hog, 'hog_cores': load.cores_used,
        'episode_wall_s_median': float(np.median([e.wall_s for e in figures.episodes])),
        'differing_seeds': [s for s, a, b in zip(seeds, ros, ref, strict=True) if a != b],
    }


def record_under_load(work: Path, episodes: int, hog: int, rig: Path) -> dict[str, Any]:
    """The record graph with the scripted Quest under the hog; faults and garbage counted."""
    start = time.monotonic()
    with CpuHog(hog) as load:
        teleop = run_teleop_stage(work / 'record', str(rig), episodes=episodes, report=print)
    reader = DatasetReader(teleop.dataset)
    non_finite = {'action': 0, 'observation.state': 0}
    rows = 0
    for index in range(len(reader)):
        columns = reader.episode(index).columns
        rows += len(columns['action'])
        for key in non_finite:
            non_finite[key] += int(np.sum(~np.isfinite(np.asarray(columns[key])).all(axis=1)))
    check = check_dataset(teleop.dataset)
    return {'episodes': len(teleop.episodes), 'rows': rows, 'faults': teleop.bridge_faults,
            'non_finite_rows': non_finite, 'dataset_check_ok': check.ok,
            'haptic_pulses': [teleop.pulses, teleop.pulses_expected],
            'wall_s': time.monotonic() - start, 'hog_processes': hog,
            'hog_cores': load.cores_used}


def render(results: dict[str, Any]) -> str:
    """The Markdown report."""
    d, r = results['deploy'], results['record']
    lines = [
        '# The twin graphs under load', '',
        f'{results["date"]}, {results["machine"]}, {results["cpus"]} CPUs. A CPU hog of '
        f'{d["hog_processes"]} busy processes at nice 0 (the graph\'s own priority) ran for the '
        f'whole ROS part (they used {d["hog_cores"]:.2f} cores on average during the deploy '
        f'run, {r["hog_cores"]:.2f} during the record run). `python bench/load.py` '
        f'(bench/load.py says what is measured).', '',
        '## Deploy graph (bundled policy, lockstep twin at 1x, commissioning tier)', '',
        '| | |', '|---|---|',
        f'| episodes | {d["episodes"]} (seeds {d["seeds"][0]}-{d["seeds"][1]}) |',
        f'| success through ROS | {d["ros_successes"]}/{d["episodes"]} |',
        f'| success in-process (same seeds) | {d["in_process_successes"]}/{d["episodes"]} |',
        f'| difference | {d["difference_points"]:+.1f} points |',
        f'| same outcome per seed | {d["same_outcome"]}/{d["episodes"]} |',
        f'| safety bridge faults | {d["faults"]} |',
        f'| twin real-time factor achieved (last episode) | {d["achieved_real_time_factor"]} |',
        f'| twin waiting for its consumers (last episode, wall s) | {d["lockstep_wait_s"]} |',
        f'| wall time per episode, median | {d["episode_wall_s_median"]:.1f} s |',
        f'| wall time, ROS part | {d["wall_s"]:.0f} s |', '',
        f'Seeds with different outcomes: {d["differing_seeds"] or "none"}.'
        + (f' Faults: {d["fault_notes"]}.' if d['fault_notes'] else ''), '',
        '## Record graph (scripted Quest session)', '',
        '| | |', '|---|---|',
        f'| kept episodes | {r["episodes"]} ({r["rows"]} rows) |',
        f'| safety bridge faults | {r["faults"]} |',
        f'| rows with a non-finite action / state | {r["non_finite_rows"]["action"]} / '
        f'{r["non_finite_rows"]["observation.state"]} |',
        f'| dataset check | {"OK" if r["dataset_check_ok"] else "FAILED"} |',
        f'| haptic pulses felt / expected | {r["haptic_pulses"][0]} / '
        f'{r["haptic_pulses"][1]} |',
        f'| wall time | {r["wall_s"]:.0f} s |', '']
    return '\n'.join(lines)


def main() -> None:
    """Run both and write bench/results/load.{json,md}."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument('--episodes', type=int, default=100)
    parser.add_argument('--record-episodes', type=int, default=5)
    parser.add_argument('--hog', type=int, default=os.cpu_count() or 2,
                        help='busy processes (default: one per core)')
    parser.add_argument('--out', type=Path, default=RESULTS,
                        help='where load.{json,md} go (default bench/results)')
    args = parser.parse_args()
    os.environ.update(graph_domain().env)
    with tempfile.TemporaryDirectory(prefix='visuomotor_load_') as tmp:
        work = Path(tmp)
        rig = verified_rig(work)
        results: dict[str, Any] = {
            'date': datetime.date.today().isoformat(), 'machine': platform.platform(),
            'cpus': os.cpu_count(),
            'deploy': deploy_under_load(work, args.episodes, args.hog, rig),
            'record': record_under_load(work, args.record_episodes, args.hog, rig)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'load.json').write_text(json.dumps(results, indent=1) + '\n')
    (args.out / 'load.md').write_text(render(results))
    print(render(results))  # noqa: T201


if __name__ == '__main__':
    main()
