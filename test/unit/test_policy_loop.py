"""The pure policy loop: refusals on arrival, failures that stay visible, clock jumps."""

from __future__ import annotations

import numpy as np
import pytest

from support import make_test_bundle
from visuomotor.cameras.sync import SyncConfig
from visuomotor.policy.bundle import load_bundle
from visuomotor.policy.chunking import SchedulerConfig
from visuomotor.policy.loop import PolicyLoop
from visuomotor.policy.runtime import ActionChunk, StageTimes
from visuomotor.robots.description import load_robot

SIZE = 32


@pytest.fixture(scope='module')
def spec(tmp_path_factory):
    return load_bundle(make_test_bundle(tmp_path_factory.mktemp('b') / 'p', size=SIZE)).spec


def _loop(spec):
    return PolicyLoop(spec, SyncConfig(frozen_repeats=0), SchedulerConfig(execute_steps=4))


def _feed(loop, t0, seconds, rng):
    """Two cameras at 30 Hz and joint states at 100 Hz from t0."""
    home = list(load_robot('fr3').home_rad)
    names = list(load_robot('fr3').joint_names)
    for k in range(int(seconds * 100)):
        t = t0 + k * 0.01
        loop.on_joint_state(t, names, home)
        if k % 3 == 0:
            for camera in ('scene_camera', 'wrist_camera'):
                frame = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
                assert loop.on_frame(camera, t, frame, encoding='rgb8') is None


def test_wrong_frames_are_refused_on_arrival_naming_both_values(spec):
    loop = _loop(spec)
    error = loop.on_frame('scene_camera', 1.0, np.zeros((48, 64, 3), np.uint8), encoding='rgb8')
    assert error is not None and '48x64x3' in error and f'{SIZE}x{SIZE}x3' in error
    error = loop.on_frame('wrist_camera', 1.0, np.zeros((SIZE, SIZE, 3), np.uint8),
                          encoding='bgr8')
    assert error is not None and 'bgr8' in error and 'rgb8' in error
    assert 'wrist_camera' in loop.problem() or 'scene_camera' in loop.problem()
    assert loop.counters['scene_camera_frames_refused'] == 1


def test_a_failed_inference_stays_visible_until_one_succeeds(spec):
    loop = _loop(spec)
    _feed(loop, 10.0, 0.5, np.random.default_rng(0))
    obs = loop.next_observation(10.5)
    assert obs is not None and loop.in_flight
    loop.on_chunk(None, 10.52, None, 'RuntimeError: boom')
    assert not loop.in_flight and 'boom' in loop.problem()
    _feed(loop, 10.5, 0.1, np.random.default_rng(1))
    assert loop.next_observation(10.6) is not None  # a successful assemble does not hide it
    assert 'boom' in loop.problem()
    chunk = ActionChunk(10.58, spec.control_period_s, np.zeros((spec.chunk_length, 7)))
    loop.on_chunk(chunk, 10.62, StageTimes(1.0, 5.0, 0.1))
    assert loop.problem() == '' and loop.counters['chunks'] == 1


def test_the_clock_going_backwards_starts_over(spec):
    loop = _loop(spec)
    rng = np.random.default_rng(0)
    _feed(loop, 100.0, 0.5, rng)
    assert loop.next_observation(100.5) is not None
    chunk = ActionChunk(100.48, spec.control_period_s, np.zeros((spec.chunk_length, 7)))
    loop.on_chunk(chunk, 100.52, StageTimes(1.0, 5.0, 0.1))
    assert loop.plan(100.55) is not None
    assert not loop.check_clock(100.55)
    assert loop.check_clock(0.2)  # a sim reset: time restarts
    assert loop.plan(0.2) is None  # the old timeline's plan is gone
    _feed(loop, 0.0, 0.3, rng)  # new samples are accepted again (not "older than newest")
    assert loop.next_observation(0.3) is not None
    assert loop.counters['clock_jumps_back'] == 1


def test_a_result_from_before_a_clock_jump_is_discarded(spec):
    loop = _loop(spec)
    _feed(loop, 50.0, 0.5, np.random.default_rng(0))
    assert loop.next_observation(50.5) is not None  # in flight across the jump
    loop.check_clock(0.1)
    stale = ActionChunk(50.48, spec.control_period_s, np.zeros((spec.chunk_length, 7)))
    loop.on_chunk(stale, 0.12, StageTimes(1.0, 5.0, 0.1))
    assert loop.counters['chunks_discarded'] == 1 and loop.plan(0.12) is None


def test_the_gripper_width_joins_the_proprio_when_the_model_reads_it(spec) -> None:
    import dataclasses

    from visuomotor.policy.spec import Normalisation, ProprioSpec

    base = spec
    joints = base.proprio.joint_names
    n = len(joints) + 1
    wider = dataclasses.replace(base, proprio=ProprioSpec(
        joints, Normalisation((0.0,) * n, (1.0,) * n), ('finger_a', 'finger_b')))
    loop = PolicyLoop(wider, SyncConfig(), SchedulerConfig(execute_steps=2))
    names = [*joints, 'finger_a', 'finger_b']
    assert loop.on_joint_state(1.0, names, [0.1] * len(joints) + [0.02, 0.03]) is None
    newest = loop.sync.joints.samples[-1].value
    assert newest.shape == (n,) and newest[-1] == pytest.approx(0.05)
    # A driver publishing the gripper separately: the arm's rows take its latest width.
    assert loop.on_joint_state(1.01, ['finger_a', 'finger_b'], [0.01, 0.01]) is None
    assert loop.on_joint_state(1.02, list(joints), [0.2] * len(joints)) is None
    assert loop.sync.joints.samples[-1].value[-1] == pytest.approx(0.02)
    fresh = PolicyLoop(wider, SyncConfig(), SchedulerConfig(execute_steps=2))
    reason = fresh.on_joint_state(1.0, list(joints), [0.1] * len(joints))
    assert reason is not None and 'finger_a' in reason
