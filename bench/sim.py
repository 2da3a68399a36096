"""Benchmark: the MuJoCo twin on this machine (physics, rendering, the loop the sim node runs).

Measured for the FR3 and UR5e scenes:
- render cost per camera frame (median over frames), at 96x96 and 640x480, with the default
  lighting (no shadows) and with 1024 px and MuJoCo's default 4096 px shadow maps, to show
  where software rendering's ~40 ms per frame goes;
- the sim loop (physics at 500 Hz + the JTC + two cameras at 20 Hz + joint states at 100 Hz,
  exactly `Stepper.tick`, driven by the scripted expert) as simulated seconds per wall second
  (the real-time factor it can sustain) and physics steps per second.
Target: at 96x96, both cameras at 20 Hz and physics keep up with real time (factor >= 1).

Run: make bench   (or: python bench/sim.py [--sim-seconds S])
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from visuomotor.sim.config import SceneConfig, load_scene
from visuomotor.sim.episode import make_expert, observe
from visuomotor.sim.stepper import Stepper
from visuomotor.sim.task import PickPlaceTask
from visuomotor.sim.twin import Twin

RESULTS = Path(__file__).resolve().parent / 'results'


def render_ms(scene: SceneConfig, frames: int = 60, shadow_size_px: int | None = None,
              ) -> float:
    """Median milliseconds to render one camera frame (cameras alternate).

    `shadow_size_px` overrides the shadow-map size (MuJoCo reads it when the renderer's GL
    context is made, i.e. at the first render).
    """
    with Twin(scene) as twin:
        if shadow_size_px is not None:
            twin.model.vis.quality.shadowsize = shadow_size_px
        twin.render()  # create the GL contexts outside the timing
        times = []
        for i in range(frames):
            name = twin.camera_names[i % len(twin.camera_names)]
            start = time.perf_counter()
            twin.render([name])
            times.append(time.perf_counter() - start)
            twin.step(0.01)
    return statistics.median(times) * 1e3


def sim_loop(scene: SceneConfig, sim_seconds: float) -> dict[str, float]:
    """Real-time factor and rates of the sim node's loop with the expert acting at 10 Hz."""
    with Twin(scene) as twin:
        task = PickPlaceTask(scene.task)
        task.apply(twin, task.sample(0))
        stepper = Stepper(twin, 0.004, 100.0)
        expert = make_expert(twin)
        frames = 0
        next_action = 0.0
        finished_s = 0.0  # simulated time of earlier episodes (each reset restarts at 0)
        episode = 0
        twin.render()
        start = time.perf_counter()
        while finished_s + twin.time_s < sim_seconds:
            if twin.time_s + 1e-9 >= next_action:
                if expert.done:
                    finished_s += twin.time_s
                    episode += 1
                    task.apply(twin, task.sample(episode))
                    stepper.restart()
                    expert = make_expert(twin)
                    next_action = 0.0
                action = expert.act(observe(twin, task))
                twin.controller.command_trajectory(action.trajectory, twin.time_s)
                twin.controller.command_gripper(action.gripper_width_m, twin.time_s)
                next_action += 0.1
            frames += len(stepper.tick().images)
        wall = time.perf_counter() - start
    simulated = finished_s + twin.time_s
    return {'real_time_factor': simulated / wall,
            'physics_steps_per_s': simulated / scene.timestep_s / wall,
            'camera_frames_per_s': frames / wall, 'wall_s': wall, 'sim_s': simulated}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sim-seconds', type=float, default=20.0)
    args = parser.parse_args()
    results: dict[str, Any] = {
        'machine': {'platform': platform.platform(), 'processor': platform.processor(),
                    'cpus': os.cpu_count(), 'mujoco_gl': os.environ.get('MUJOCO_GL', '')},
        'date': datetime.date.today().isoformat(), 'render_ms': {}, 'loop': {}}
    for name in ('fr3', 'ur5e'):
        base = load_scene(name)
        for width, height in ((96, 96), (640, 480)):
            scene = base.with_resolution(width, height)
            key = f'{name} {width}x{height}'
            results['render_ms'][key] = {
                'no shadows': render_ms(scene),
                'shadows 1024': render_ms(dataclasses.replace(scene, shadows=True)),
            }
            results['loop'][key] = sim_loop(scene, args.sim_seconds)
            print(key, results['render_ms'][key], results['loop'][key])
    # MuJoCo's default quality (4096 px shadow map) for comparison, one scene.
    results['render_ms']['fr3 96x96']['shadows 4096 (MuJoCo default)'] = render_ms(
        dataclasses.replace(load_scene('fr3'), shadows=True), shadow_size_px=4096)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / 'sim.json').write_text(json.dumps(results, indent=2) + '\n')
    lines = ['# Twin benchmark', '', f'{results["date"]}, {results["machine"]["platform"]}, '
             f'{results["machine"]["cpus"]} CPUs, MUJOCO_GL={results["machine"]["mujoco_gl"]}'
             ' (software rendering)', '', '## Render cost per camera frame (median, ms)', '',
             '| scene | no shadows | shadows 1024 | shadows 4096 (MuJoCo default) |',
             '|---|---|---|---|']
    for key, row in results['render_ms'].items():
        default = row.get('shadows 4096 (MuJoCo default)')
        lines.append(f'| {key} | {row["no shadows"]:.2f} | {row["shadows 1024"]:.2f} | '
                     f'{"" if default is None else f"{default:.2f}"} |')
    lines += ['', '## Sim loop: physics 500 Hz + JTC + 2 cameras at 20 Hz + joint states 100 Hz,'
              ' expert at 10 Hz', '', '| scene | real-time factor | physics steps/s | '
              'camera frames/s |', '|---|---|---|---|']
    for key, row in results['loop'].items():
        lines.append(f'| {key} | {row["real_time_factor"]:.1f}x | '
                     f'{row["physics_steps_per_s"]:.0f} | {row["camera_frames_per_s"]:.0f} |')
    lines += ['', 'Target: real-time factor >= 1 at 96x96 with both cameras at 20 Hz.', '']
    (RESULTS / 'sim.md').write_text('\n'.join(lines))
    print('\n'.join(lines))


if __name__ == '__main__':
    main()
