"""Demo stage 4: the policy runtime on the FR3 twin's cameras.

A policy bundle is exported (an UNTRAINED network with random weights: the trained demo policy
comes with the train/export/deploy stage), its embedded contract is checked against the twin
rig and against two mismatched rigs (the refusals are printed), the backends are tried in
order with the golden check, and the runtime turns rendered twin frames into a chunk of joint
targets with per-stage latency; the chunk scheduler then plans the command stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visuomotor.policy.backends import BackendOptions, open_backend
from visuomotor.policy.chunking import ChunkScheduler, SchedulerConfig
from visuomotor.policy.contract import CameraStream, LiveRig, check_rig
from visuomotor.policy.errors import BundleMismatchError
from visuomotor.policy.runtime import Observation, PolicyRuntime
from visuomotor.robots.description import load_robot
from visuomotor.ros.demo_checks import Check
from visuomotor.sim.config import load_scene
from visuomotor.sim.twin import Twin
from visuomotor.training.export import untrained_bundle


@dataclass(frozen=True)
class PolicyFigures:
    """What the stage measured."""

    bundle: Path
    description: str
    refusals: list[str]
    skipped: list[str]
    chosen: str
    golden_error: float
    parity_error: float
    stages_ms: dict[str, float]
    plan_rows: int
    plan_start_delay_s: float


def run_policy_stage(out_dir: Path, runs: int = 20) -> PolicyFigures:
    """Export, check, load and run a bundle on twin frames."""
    scene = load_scene('fr3')
    camera = scene.camera('scene_camera')
    bundle = untrained_bundle(out_dir / 'policy_bundle', robot='fr3', size=camera.width,
                              history=2, chunk_length=16)
    spec = bundle.spec
    robot = load_robot('fr3')
    twin_rig = {n: CameraStream(f'/{n}/image_raw', scene.camera(n).width,
                                scene.camera(n).height, 'rgb8') for n in spec.camera_names}
    check_rig(spec, LiveRig(twin_rig, robot.joint_names, 10.0, robot.name))
    refusals = []
    ur5e = load_robot('ur5e')
    for rig in (LiveRig(twin_rig, ur5e.joint_names, 10.0, ur5e.name),
                LiveRig(twin_rig, robot.joint_names, 15.0, robot.name),
                LiveRig({**twin_rig, 'wrist_camera': CameraStream('/wrist/image_raw', 96, 96,
                                                                  'bgr8')},
                        robot.joint_names, 10.0, robot.name)):
        try:
            check_rig(spec, rig)
        except BundleMismatchError as exc:
            refusals.append(str(exc))
    backend, report = open_backend(bundle, ['tensorrt', 'onnxruntime', 'torch'],
                                   BackendOptions(threads=1))
    torch_backend, _ = open_backend(bundle, ['torch'], BackendOptions(threads=1))
    twin = Twin(scene)
    try:
        twin.reset()
        frames = twin.render(spec.camera_names)
    finally:
        twin.close()
    q = np.tile(np.array(robot.home_rad), (spec.observation_history, 1))
    obs = Observation({n: [frames[n]] * spec.observation_history for n in spec.camera_names},
                      q, 10.0)
    runtime = PolicyRuntime(bundle, backend)
    reference = PolicyRuntime(bundle, torch_backend)
    parity = float(np.abs(runtime(obs).positions - reference(obs).positions).max())
    stages: dict[str, list[float]] = {'preprocess': [], 'inference': [], 'postprocess': []}
    for _ in range(runs):
        chunk = runtime(obs)
        t = runtime.last_times
        stages['preprocess'].append(t.preprocess_ms)
        stages['inference'].append(t.inference_ms)
        stages['postprocess'].append(t.postprocess_ms)
    scheduler = ChunkScheduler(SchedulerConfig(execute_steps=8), spec.control_period_s,
                               spec.chunk_length)
    arrival = obs.stamp_s + 0.15  # an observation 150 ms old when its chunk arrives
    scheduler.add(chunk, arrival)
    plan = scheduler.plan(arrival)
    if plan is None:  # the chunk is fresh; kept for the type checker
        raise RuntimeError('the scheduler produced no plan for a fresh chunk')
    return PolicyFigures(
        bundle=bundle.directory, description=spec.describe(), refusals=refusals,
        skipped=[f'{k}: {r}' for k, r in report.skipped], chosen=report.chosen,
        golden_error=report.golden.max_abs_error if report.golden else float('nan'),
        parity_error=parity,
        stages_ms={k: float(np.median(v)) for k, v in stages.items()},
        plan_rows=len(plan.times), plan_start_delay_s=float(plan.times[1] - obs.stamp_s))


def summary_lines(figures: PolicyFigures) -> list[str]:
    """The stage's report lines."""
    lines = ['  NOTE: an untrained network (random weights); it exercises the runtime only',
             f'  bundle: {figures.bundle} (policy.onnx with its spec and golden I/O, '
             'model_card.md, torch_weights.npz)']
    lines += [f'    {line}' for line in figures.description.splitlines()]
    lines.append('  contract vs the FR3 twin rig: OK; vs mismatched rigs, refused:')
    lines += [f'    - {r}' for r in figures.refusals]
    lines += [f'  backend skipped: {s}' for s in figures.skipped]
    lines.append(f'  backend chosen: {figures.chosen}; golden outputs reproduced to '
                 f'{figures.golden_error:.1e}; ONNX Runtime vs PyTorch on twin frames: '
                 f'{figures.parity_error:.1e} rad')
    stages = figures.stages_ms
    lines.append(f"  per stage (median ms): preprocess {stages['preprocess']:.2f}, inference "
                 f"{stages['inference']:.2f}, postprocess {stages['postprocess']:.2f}")
    lines.append(f'  latency compensation: a chunk arriving 150 ms after its observation is '
                 f'planned from its row at +{figures.plan_start_delay_s:.1f} s '
                 f'({figures.plan_rows} rows, the first interpolated at arrival)')
    return lines


def checks(figures: PolicyFigures) -> list[Check]:
    """What the stage must show."""
    return [Check('mismatched rigs were refused', len(figures.refusals) > 0),
            Check('the backend reproduced the golden outputs', figures.golden_error < 1e-3),
            Check('ONNX Runtime and PyTorch agree on twin frames', figures.parity_error < 1e-4)]


if __name__ == '__main__':
    start = time.perf_counter()
    for line in summary_lines(run_policy_stage(Path('demo_output'))):
        print(line)  # noqa: T201
    print(f'{time.perf_counter() - start:.1f} s')  # noqa: T201
