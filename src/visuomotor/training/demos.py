"""Scripted-expert demonstrations on the twin, recorded through the recorder (pure, no ROS).

The twin runs in-process (no DDS, so a hundred episodes take minutes, not an hour), but every
row goes through the same `Recorder` and `LeRobotWriter` as the recorder node: camera frames
at the cameras' own rate and stamps (with the sim node's sensor noise), joint states at
100 Hz, the commanded set-point the controller follows (what the safety bridge would report
as sent), the expert's target as the raw command and its gripper width. Only episodes the task
judges successful are committed; the others are discarded and counted.

The expert moves at speeds the commissioning tier of the safety bridge lets through
unchanged, so a policy that imitates it is not slowed down by the bridge at deployment.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import visuomotor
from visuomotor.recording.episode import CameraFormat
from visuomotor.recording.lerobot_v3 import DatasetFeatures, LeRobotWriter
from visuomotor.recording.recorder import Recorder, RecorderConfig
from visuomotor.recording.video import VideoSettings
from visuomotor.safety.commands import JointChunk
from visuomotor.sim.camera_noise import CameraNoise
from visuomotor.sim.config import load_scene
from visuomotor.sim.episode import observe
from visuomotor.sim.expert import ScriptedExpert
from visuomotor.sim.stepper import Stepper
from visuomotor.sim.task import PickPlaceTask
from visuomotor.sim.twin import Twin

TASK = 'pick up the cube and put it down on the green square'
#: The twin scene of the bundled demo policy (config/sim/fr3_demo.yaml).
DEMO_SCENE = 'fr3_demo'


@dataclass(frozen=True)
class DemoSettings:
    """How demonstrations are produced.

    Attributes:
        scene: twin scene (a name in config/sim or a path).
        rate_hz: expert and dataset rate (the policy's control rate).
        speed_m_s: the expert's Cartesian speed (commissioning tier: 0.10 m/s TCP cap).
        yaw_rate_rad_s: the expert's fastest hand turn (commissioning: 0.3 rad/s).
        camera_noise_std: sensor noise, as the sim node adds (8-bit levels).
        max_duration_s: an episode not done by then is a failure.
        settle_s: rows recorded after the expert is done (the arm at rest).
        codec, pix_fmt: video encoding (full-resolution colour: the cube is a few pixels).
        miss_fraction: share of episodes that are recovery demonstrations: the first grasp
            deliberately lands beside the cube (`miss_offset_m`, a random distance along the
            hand's x axis, either side), the expert lifts, finds the hand empty, opens and
            grasps again. The deliberate miss is recorded but marked not to be imitated
            (provenance `exclude_from_training`: spans of `timing.reference_ns`, seconds),
            so the policy learns the recovery, not the miss.
    """

    scene: str = DEMO_SCENE
    rate_hz: float = 10.0
    speed_m_s: float = 0.08
    yaw_rate_rad_s: float = 0.25
    camera_noise_std: float = 2.0
    max_duration_s: float = 45.0
    settle_s: float = 0.5
    codec: str = 'h264'
    pix_fmt: str = 'yuv444p'
    miss_fraction: float = 0.0
    miss_offset_m: tuple[float, float] = (0.035, 0.05)


@dataclass
class DemoReport:
    """What a recording run produced."""

    dataset: Path
    committed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    rows: int = 0
    sim_s: float = 0.0
    wall_s: float = 0.0


def make_demo_expert(twin: Twin, settings: DemoSettings) -> ScriptedExpert:
    """The scripted expert at the demonstration speeds."""
    return ScriptedExpert(twin.robot, twin.base_pose, twin.config.task.object_size_m,
                          rate_hz=settings.rate_hz, speed_m_s=settings.speed_m_s,
                          yaw_rate_rad_s=settings.yaw_rate_rad_s)


def recorder_config(twin: Twin, settings: DemoSettings) -> RecorderConfig:
    """The recorder set-up for the twin's cameras and robot."""
    cameras = tuple(CameraFormat(c.name, c.width, c.height, 'rgb8')
                    for c in twin.config.cameras)
    return RecorderConfig(settings.rate_hz, cameras, tuple(twin.robot.joint_names),
                          tuple(twin.robot.gripper.joint_names),
                          video=VideoSettings(settings.codec, settings.pix_fmt))


def record_demos(dataset: Path, seeds: Sequence[int], settings: DemoSettings = DemoSettings(),
                 progress: Callable[[int, int, bool], None] | None = None) -> DemoReport:
    """Record one expert episode per seed into the dataset (appending to it).

    `progress(done, total, success)` is called after each episode.
    """
    scene = load_scene(settings.scene)
    twin = Twin(scene)
    task = PickPlaceTask(scene.task)
    config = recorder_config(twin, settings)
    writer = LeRobotWriter(dataset, DatasetFeatures(
        config.fps, config.cameras, tuple(config.state_names), twin.robot.name, config.video))
    report = DemoReport(writer.path)
    start = time.perf_counter()
    try:
        for done, seed in enumerate(seeds, 1):
            recorder = Recorder(config, writer.begin)
            success = _record_episode(twin, task, recorder, seed, settings)
            if success:
                data = recorder.stop()
                writer.commit(data)
                report.committed.append(seed)
                report.rows += data.length
            else:
                recorder.discard()
                report.failed.append(seed)
            report.sim_s += twin.time_s
            if progress is not None:
                progress(done, len(seeds), success)
    finally:
        twin.close()
    report.wall_s = time.perf_counter() - start
    return report


def _record_episode(twin: Twin, task: PickPlaceTask, recorder: Recorder, seed: int,
                    settings: DemoSettings) -> bool:
    task.apply(twin, task.sample(seed))
    noise = CameraNoise(settings.camera_noise_std, seed)
    stepper = Stepper(twin, tick_s=0.004, joint_state_rate_hz=100.0)
    expert = make_demo_expert(twin, settings)
    rng = np.random.default_rng(seed + 104729)  # the miss draw, reproducible per seed
    miss = rng.random() < settings.miss_fraction
    if miss:
        expert.reset((float(rng.choice((-1.0, 1.0)) * rng.uniform(*settings.miss_offset_m)),
                      0.0))
    perturbed: list[float] = []  # action times of the deliberate miss
    controller = twin.controller
    period = 1.0 / settings.rate_hz
    recorder.start(TASK, {'source': 'scripted expert on the twin', 'scene': settings.scene,
                          'seed': seed, 'expert_speed_m_s': settings.speed_m_s,
                          'software': f'visuomotor {visuomotor.__version__}',
                          'camera_noise_std': settings.camera_noise_std,
                          'deliberate_miss': miss}, twin.time_s)
    next_action = twin.time_s
    end = math.inf
    while twin.time_s < min(settings.max_duration_s, end):
        now = twin.time_s
        if now + 1e-9 >= next_action and not expert.done:
            action = expert.act(observe(twin, task))
            controller.command_trajectory(action.trajectory, now)
            controller.command_gripper(action.gripper_width_m, now)
            recorder.on_raw_target(JointChunk(now, np.array([now + period]),
                                              action.arm_target[None, :]))
            recorder.on_gripper_command(now, action.gripper_width_m)
            if expert.perturbed:
                perturbed.append(now)
            next_action += period
            if expert.phase == 'done':
                end = now + settings.settle_s
        out = stepper.tick()
        if out.joint_state is not None:
            js = out.joint_state
            recorder.on_joint_state(js.stamp_s, js.names, js.positions.tolist())
            recorder.on_command_sent(js.stamp_s, twin.robot.joint_names,
                                     controller.sample(js.stamp_s).positions.tolist())
        for name, (stamp, image) in out.images.items():
            recorder.on_frame(name, stamp, noise(image), 'rgb8')
        recorder.tick(twin.time_s)
    if perturbed:  # rows up to the last miss action's effect (one period later) included
        recorder.note('exclude_from_training', [[perturbed[0] - period, perturbed[-1] + period]])
    return expert.done and task.success(twin)
