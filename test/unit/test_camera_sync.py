"""Camera / joint-state synchronisation and stream health (pure numpy, time is an argument).

What the policy loop relies on: each stream counts the frames it lost (sequence gaps), refuses
stamps that repeat or go back, marks a camera frozen when its content stops changing (and
clears it when it changes again) and measures its rate; a tick either gets an observation
aligned to the newest time every camera has reached (history steps one period apart, oldest
first, every frame the nearest one and within `max_skew_s` of its target, joint positions
interpolated there) or a refusal naming the stream and why: missing, frozen, stale, skew.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from visuomotor.cameras.sync import (
    Aligned,
    Refusal,
    Sample,
    StreamBuffer,
    SyncConfig,
    Synchronizer,
    interpolate,
)

FPS = 30.0
JOINT_HZ = 100.0
#: The joint trajectory q(t) = A + B t, so interpolated positions are known exactly.
A = np.array([0.3, -1.2, 2.0])
B = np.array([0.5, 0.25, -1.0])


def image(k: int) -> np.ndarray:
    """Frame `k`: its content differs from its neighbours' in every pixel."""
    return np.full((16, 16, 3), k % 251, dtype=np.uint8)


def camera_stamps(offset: float, until: float, *, fps: float = FPS,
                  jitter: Sequence[float] = ()) -> list[float]:
    """Capture times `offset + k / fps (+ jitter[k])` up to `until`."""
    stamps = []
    for k in range(int(until * fps) + 2):
        t = offset + k / fps + (jitter[k] if k < len(jitter) else 0.0)
        if t <= until:
            stamps.append(t)
    return stamps


def feed_camera(sync: Synchronizer, name: str, stamps: Sequence[float]) -> None:
    """Push distinct frames at `stamps`; all must be stored."""
    for k, t in enumerate(stamps):
        assert sync.cameras[name].push(Sample(t, image(k), k)) is None


def feed_joints(sync: Synchronizer, start: float, until: float, offset: float = 0.003) -> None:
    """q(t) = A + B t at 100 Hz from `start` to `until`."""
    j = int(np.ceil((start - offset) * JOINT_HZ))
    while (t := offset + j / JOINT_HZ) <= until:
        assert sync.joints.push(Sample(t, A + B * t)) is None
        j += 1


def healthy(offsets: dict[str, float], now: float, config: SyncConfig | None = None,
            ) -> Synchronizer:
    """Cameras at 30 fps with the given offsets and joint states, all from 0 until `now`."""
    sync = Synchronizer(list(offsets), config or SyncConfig())
    for name, offset in offsets.items():
        feed_camera(sync, name, camera_stamps(offset, now))
    feed_joints(sync, 0.0, now)
    return sync


def refusal(result: Aligned | Refusal) -> Refusal:
    """The result, which must be a refusal."""
    assert isinstance(result, Refusal), result
    return result


def aligned(result: Aligned | Refusal) -> Aligned:
    """The result, which must be an aligned observation."""
    assert isinstance(result, Aligned), result
    return result


# -- stream health ----------------------------------------------------------------------------

def test_sequence_gaps_count_dropped_frames() -> None:
    buffer: StreamBuffer[int] = StreamBuffer('cam', SyncConfig())
    for seq, t in [(1, 0.0), (2, 0.033), (5, 0.133)]:
        assert buffer.push(Sample(t, seq, seq)) is None
    assert buffer.stats.dropped == 2
    assert buffer.push(Sample(0.166, 6, 6)) is None
    assert buffer.stats.dropped == 2
    assert buffer.push(Sample(0.3, 10, 10)) is None
    assert buffer.stats.dropped == 5
    assert buffer.push(Sample(0.4, 0, None)) is None  # no sequence number: nothing counted
    assert buffer.stats.dropped == 5
    assert buffer.stats.received == 6
    assert len(buffer.samples) == 6


def test_refused_frames_are_not_counted_as_dropped() -> None:
    # A driver republishing its last image: new sequence numbers, the same stamp. No frame is
    # lost, but every republish after the first counts the ones before it again (1+2+3 = 6).
    buffer: StreamBuffer[int] = StreamBuffer('cam', SyncConfig(frozen_repeats=0))
    assert buffer.push(Sample(0.0, 0, 1)) is None
    for seq in (2, 3, 4):
        assert buffer.push(Sample(0.0, 0, seq)) == 'repeated stamp'
    assert buffer.push(Sample(0.033, 0, 5)) is None
    assert buffer.stats.repeated_stamps == 3
    assert buffer.stats.dropped == 0


def test_repeated_and_out_of_order_stamps_are_refused() -> None:
    buffer: StreamBuffer[int] = StreamBuffer('cam', SyncConfig())
    assert buffer.push(Sample(1.0, 0, 0)) is None
    assert buffer.push(Sample(1.033, 1, 1)) is None
    reason = buffer.push(Sample(1.033, 2, 2))
    assert reason is not None and 'repeated' in reason
    assert buffer.stats.repeated_stamps == 1
    reason = buffer.push(Sample(1.0, 3, 3))
    assert reason is not None and 'older' in reason
    assert buffer.stats.out_of_order == 1
    assert buffer.push(Sample(0.5, 4, 4)) is not None
    assert buffer.stats.out_of_order == 2
    # neither was stored
    assert [s.value for s in buffer.samples] == [0, 1]
    assert buffer.newest_stamp() == 1.033
    assert buffer.stats.received == 5


@pytest.mark.parametrize('repeats', [1, 3, 5])
def test_identical_content_freezes_and_new_content_thaws(repeats: int) -> None:
    # `repeats` frames whose content equals the previous one's (repeats + 1 identical frames);
    # SyncConfig's docstring reads as if `repeats` identical frames were enough.
    buffer: StreamBuffer[np.ndarray] = StreamBuffer(
        'cam', SyncConfig(frozen_repeats=repeats), check_content=True)
    t = 0.0
    for k in range(repeats + 1):
        assert not buffer.stats.frozen
        assert buffer.push(Sample(t, image(7), k)) is None  # stored: the stamps advance
        assert buffer.stats.identical_run == k
        t += 1 / FPS
    assert buffer.stats.frozen
    assert buffer.push(Sample(t, image(7), 99)) is None
    assert buffer.stats.frozen
    assert buffer.push(Sample(t + 1 / FPS, image(8), 100)) is None  # it moves again
    assert not buffer.stats.frozen
    assert buffer.stats.identical_run == 0
    assert len(buffer.samples) == repeats + 3


def test_only_the_subsample_is_fingerprinted() -> None:
    # A change off the 8-pixel grid is not seen; one on it is.
    buffer: StreamBuffer[np.ndarray] = StreamBuffer('cam', SyncConfig(frozen_repeats=1),
                                                    check_content=True)
    buffer.push(Sample(0.0, image(1)))
    on_grid = image(1)
    on_grid[8, 8] = 0
    buffer.push(Sample(0.1, on_grid))
    assert not buffer.stats.frozen
    off_grid = on_grid.copy()
    off_grid[3, 5] = 0
    buffer.push(Sample(0.2, off_grid))
    assert buffer.stats.frozen


@pytest.mark.parametrize('repeats', [1, 4])
def test_repeated_stamps_freeze(repeats: int) -> None:
    buffer: StreamBuffer[np.ndarray] = StreamBuffer(
        'cam', SyncConfig(frozen_repeats=repeats), check_content=True)
    buffer.push(Sample(0.0, image(0)))
    for k in range(repeats):
        assert not buffer.stats.frozen
        assert buffer.push(Sample(0.0, image(k + 1))) == 'repeated stamp'
    assert buffer.stats.frozen
    assert buffer.stats.repeated_stamps == repeats
    assert buffer.push(Sample(0.033, image(50))) is None
    assert not buffer.stats.frozen


def test_frozen_repeats_zero_disables_the_check() -> None:
    buffer: StreamBuffer[np.ndarray] = StreamBuffer('cam', SyncConfig(frozen_repeats=0),
                                                    check_content=True)
    for k in range(40):
        assert buffer.push(Sample(k / FPS, image(3))) is None
        assert buffer.push(Sample(k / FPS, image(3))) == 'repeated stamp'
        assert not buffer.stats.frozen
    assert buffer.stats.repeated_stamps == 40


def test_content_is_only_checked_where_asked() -> None:
    # Joint states hold still for long stretches: identical values are not a frozen stream.
    buffer: StreamBuffer[np.ndarray] = StreamBuffer('joints', SyncConfig(frozen_repeats=2))
    for k in range(20):
        assert buffer.push(Sample(k * 0.01, np.zeros(6))) is None
    assert not buffer.stats.frozen
    assert buffer.stats.identical_run == 0


@given(st.floats(5.0, 1000.0), st.integers(2, 100), st.floats(0.0, 1e4),
       st.integers(2, 64))
def test_rate_is_measured_from_the_stamps(rate: float, count: int, start: float,
                                          size: int) -> None:
    buffer: StreamBuffer[int] = StreamBuffer('cam', SyncConfig(buffer_size=size))
    assert buffer.stats.rate_hz == 0.0
    for k in range(count):
        assert buffer.push(Sample(start + k / rate, k, k)) is None
    assert buffer.stats.rate_hz == pytest.approx(rate, rel=1e-6)
    assert len(buffer.samples) == min(count, size)
    assert buffer.stats.dropped == 0


def test_interpolate_brackets_holds_and_gives_up() -> None:
    buffer: StreamBuffer[np.ndarray] = StreamBuffer('joints', SyncConfig(buffer_size=64))
    for t in (0.0, 0.01, 0.02, 0.1, 0.11):  # a 80 ms gap between 0.02 and 0.1
        buffer.push(Sample(t, A + B * t))
    for t in (0.0, 0.005, 0.013, 0.02, 0.104, 0.11):
        q = interpolate(buffer, t, 0.025)
        assert q is not None
        np.testing.assert_allclose(q, A + B * t, rtol=0, atol=1e-14)
    # across the gap and beyond the ends: the nearest sample, if close enough
    np.testing.assert_array_equal(interpolate(buffer, 0.03, 0.025), A + B * 0.02)
    np.testing.assert_array_equal(interpolate(buffer, 0.125, 0.025), A + B * 0.11)
    np.testing.assert_array_equal(interpolate(buffer, -0.02, 0.025), A)
    assert interpolate(buffer, 0.06, 0.025) is None
    assert interpolate(buffer, 0.14, 0.025) is None
    empty: StreamBuffer[np.ndarray] = StreamBuffer('joints', SyncConfig())
    assert interpolate(empty, 0.0, 0.025) is None


def test_config_is_validated() -> None:
    for kwargs in ({'max_skew_s': 0.0}, {'max_age_s': -1.0}, {'max_skew_s': float('nan')}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            SyncConfig(**kwargs)
    with pytest.raises(ValueError, match='frozen_repeats'):
        SyncConfig(frozen_repeats=-1)
    with pytest.raises(ValueError, match='buffer_size'):
        SyncConfig(buffer_size=1)


# -- refusals ---------------------------------------------------------------------------------

def test_missing_camera_is_named() -> None:
    sync = Synchronizer(['left', 'right'])
    result = refusal(sync.assemble(0.0, 2, 0.1))
    assert (result.stream, result.reason) == ('left', 'missing')
    feed_camera(sync, 'left', camera_stamps(0.0, 1.0))
    feed_joints(sync, 0.0, 1.0)
    result = refusal(sync.assemble(1.0, 2, 0.1))
    assert (result.stream, result.reason) == ('right', 'missing')
    assert str(result).startswith('right: missing')


def test_stale_names_the_slowest_camera() -> None:
    sync = Synchronizer(['left', 'right', 'wrist'])
    feed_camera(sync, 'left', camera_stamps(0.0, 1.0))
    feed_camera(sync, 'right', camera_stamps(0.0, 0.7))  # stopped 300 ms ago
    feed_camera(sync, 'wrist', camera_stamps(0.0, 0.85))
    feed_joints(sync, 0.0, 1.0)
    result = refusal(sync.assemble(1.0, 2, 0.1))
    assert (result.stream, result.reason) == ('right', 'stale')
    assert '300 ms old' in result.detail
    # the age is that of the slowest camera's newest frame (0.7 s)
    aligned(sync.assemble(0.7 + 0.19, 2, 0.1))
    assert refusal(sync.assemble(0.7 + 0.21, 2, 0.1)).reason == 'stale'


def test_frozen_camera_is_refused() -> None:
    sync = healthy({'left': 0.0, 'right': 0.005}, 1.0, SyncConfig(frozen_repeats=3))
    for k in range(4):  # the same picture, fresh stamps
        sync.cameras['right'].push(Sample(1.1 + k / FPS, image(0)))
        sync.cameras['left'].push(Sample(1.1 + k / FPS, image(1000 + k)))
    feed_joints(sync, 1.01, 1.2)
    result = refusal(sync.assemble(1.2, 2, 0.1))
    assert (result.stream, result.reason) == ('right', 'frozen')


def test_joint_states_missing_or_stale() -> None:
    sync = Synchronizer(['cam'])
    feed_camera(sync, 'cam', camera_stamps(0.0, 1.0))
    result = refusal(sync.assemble(1.0, 2, 0.1))
    assert (result.stream, result.reason) == ('joint_states', 'missing')
    feed_joints(sync, 0.0, 0.7)
    result = refusal(sync.assemble(1.0, 2, 0.1))
    assert (result.stream, result.reason) == ('joint_states', 'stale')
    feed_joints(sync, 0.71, 1.0)
    aligned(sync.assemble(1.0, 2, 0.1))


def test_camera_without_a_frame_near_a_target_is_skewed() -> None:
    sync = Synchronizer(['left', 'right'])
    feed_camera(sync, 'left', camera_stamps(0.0, 1.0))
    # right (the reference: newest 0.996 s) lost its frames around 0.9 s, one period before
    feed_camera(sync, 'right', [t for t in camera_stamps(-0.004, 1.0) if abs(t - 0.9) > 0.05])
    feed_joints(sync, 0.0, 1.0)
    result = refusal(sync.assemble(1.0, 2, 0.1))
    assert (result.stream, result.reason) == ('right', 'skew')
    assert '0.896 s' in result.detail
    # history 1 needs only the reference: fine
    aligned(sync.assemble(1.0, 1, 0.1))


def test_camera_offset_beyond_max_skew_is_skewed() -> None:
    # 10 fps cameras 40 ms apart: no frame of the second within 25 ms of the first's.
    sync = Synchronizer(['left', 'right'])
    feed_camera(sync, 'left', camera_stamps(0.0, 1.0, fps=10.0))
    feed_camera(sync, 'right', camera_stamps(0.04, 1.0, fps=10.0))
    feed_joints(sync, 0.0, 1.0)
    result = refusal(sync.assemble(1.0, 2, 0.1))
    assert (result.stream, result.reason) == ('left', 'skew')  # reference: right's 0.94 s


def test_joint_gap_at_a_target_is_skewed() -> None:
    sync = Synchronizer(['cam'])
    feed_camera(sync, 'cam', camera_stamps(0.0, 1.0))
    feed_joints(sync, 0.0, 0.85)
    feed_joints(sync, 0.95, 1.0)
    result = refusal(sync.assemble(1.0, 3, 0.1))
    assert (result.stream, result.reason) == ('joint_states', 'skew')
    assert '0.900' in result.detail


# -- alignment --------------------------------------------------------------------------------

@pytest.mark.parametrize('offset', [0.005, -0.005])
@pytest.mark.parametrize('history', [1, 2, 3])
def test_two_cameras_and_joint_states_are_aligned(offset: float, history: int) -> None:
    now, period = 1.01, 0.1
    sync = healthy({'left': 0.0, 'right': offset}, now)
    obs = aligned(sync.assemble(now, history, period))
    newest = {name: buf.newest_stamp() for name, buf in sync.cameras.items()}
    reference = min(newest.values())
    assert obs.stamp_s == reference
    assert reference == pytest.approx(min(1.0, 1.0 + offset), abs=1e-12)
    targets = np.array([reference - (history - 1 - k) * period for k in range(history)])
    assert (np.diff(targets) > 0).all()  # oldest first
    np.testing.assert_allclose(np.diff(targets), period, rtol=1e-12)
    assert set(obs.frames) == {'left', 'right'}
    for name in obs.frames:
        stamps = np.array([s.stamp_s for s in obs.frames[name]])
        assert len(stamps) == history
        # both cameras are on the 30 fps grid and 0.1 s is 3 frames: the reference camera has
        # a frame at every target, the other one 5 ms away
        expected_skew = 0.0 if newest[name] == reference else abs(offset)
        np.testing.assert_allclose(np.abs(stamps - targets), expected_skew, atol=1e-12)
        for sample in obs.frames[name]:
            k = round((sample.stamp_s - (offset if name == 'right' else 0.0)) * FPS)
            np.testing.assert_array_equal(sample.value, image(k))  # the frame of that stamp
        assert sync.cameras[name].stats.last_skew_s == pytest.approx(expected_skew, abs=1e-12)
    assert obs.skew_s == pytest.approx(abs(offset), abs=1e-12)
    assert obs.age_s == pytest.approx(now - reference, abs=1e-12)
    # joint states (at 100 Hz, 3 ms off the cameras) interpolated at the targets
    assert obs.joint_positions.shape == (history, 3)
    np.testing.assert_allclose(obs.joint_positions, A + B * targets[:, None], rtol=0,
                               atol=1e-12)


@given(st.lists(st.floats(-0.5, 0.5), min_size=1, max_size=3), st.floats(0.01, 0.03),
       st.floats(0.0, 0.006), st.integers(0, 2**32 - 1), st.integers(1, 4),
       st.sampled_from([1 / FPS, 0.05, 2 / FPS, 0.1]), st.floats(0.0, 0.04))
def test_frames_are_the_nearest_and_within_max_skew(
        offsets: list[float], max_skew: float, jitter: float, seed: int, history: int,
        period: float, late: float) -> None:
    rng = np.random.default_rng(seed)
    names = [f'cam{i}' for i in range(len(offsets))]
    shifts = [f * max_skew for f in offsets]  # within +-max_skew / 2
    now = 1.2 + late
    sync = Synchronizer(names, SyncConfig(max_skew_s=max_skew))
    for name, shift in zip(names, shifts, strict=True):
        feed_camera(sync, name, camera_stamps(shift, now,
                                              jitter=rng.uniform(-jitter, jitter, 64)))
    feed_joints(sync, 0.0, now)
    result = sync.assemble(now, history, period)
    # offsets and jitter that leave room on a frame grid the period is a multiple of
    spread = max(shifts) - min(shifts) + 2 * jitter
    room = round(period * FPS, 9).is_integer() and spread < max_skew - 1e-9

    reference = min(b.newest_stamp() for b in sync.cameras.values())
    targets = [reference - (history - 1 - k) * period for k in range(history)]
    nearest = {name: [min(abs(s.stamp_s - t) for s in sync.cameras[name].samples)
                      for t in targets] for name in names}
    worst = max(max(d) for d in nearest.values())
    event('aligned' if isinstance(result, Aligned) else 'refused')
    if room:  # nothing is refused, and no frame is farther than the spread
        assert isinstance(result, Aligned), result
        assert worst <= spread + 1e-9
    if isinstance(result, Refusal):
        # only ever for a real reason: some camera has no frame close enough to a target
        assert result.reason == 'skew'
        assert worst > max_skew
        assert max(nearest[result.stream]) > max_skew
        return
    assert worst <= max_skew
    assert result.stamp_s == reference
    assert result.age_s == pytest.approx(now - reference)
    skews = []
    for name in names:
        chosen = result.frames[name]
        assert len(chosen) == history
        for sample, target, best in zip(chosen, targets, nearest[name], strict=True):
            off = abs(sample.stamp_s - target)
            assert off <= max_skew
            assert off == best  # the nearest frame there is
            assert sample in sync.cameras[name].samples
            skews.append(off)
        stamps = [s.stamp_s for s in chosen]
        assert stamps == sorted(stamps)  # oldest first
    assert result.skew_s == max(skews)
    # interpolated between the joint states around each target; past the newest one (up to
    # 10 ms here, less than max_skew_s) that one is held, not extrapolated
    held = np.minimum(targets, sync.joints.newest_stamp())
    np.testing.assert_allclose(result.joint_positions, A + B * held[:, None], rtol=0,
                               atol=1e-12)
