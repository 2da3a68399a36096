"""The scripted Quest (visuomotor.teleop.scripted) and the haptic patterns (teleop.haptics).

The scripted operator is the reference the twin's teleop tests compare the arm with, so its
poses must be exactly the cumulative moves of the script, its motion smooth (min-jerk), and
the session it plays slow enough for the commissioning tier's TCP caps whenever the clutch
is held (the arm then moves with the hand). Haptic patterns must always end switched off.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visuomotor.robots.transforms import rotation_from_vector, rotation_vector
from visuomotor.safety.profile import load_safety_profile
from visuomotor.teleop.config import load_teleop_config
from visuomotor.teleop.haptics import PATTERNS, HapticPlayer, pulse_schedule
from visuomotor.teleop.scripted import (
    HAND_START_M,
    ScriptedQuest,
    Segment,
    min_jerk,
    press,
    teleop_session,
)

COMMISSIONING = load_safety_profile('fr3', 'commissioning').limits


# -- min-jerk ----------------------------------------------------------------------------------


def test_min_jerk_endpoints_and_midpoint() -> None:
    assert min_jerk(0.0) == 0.0
    assert min_jerk(1.0) == pytest.approx(1.0, abs=1e-15)
    assert min_jerk(0.5) == pytest.approx(0.5, abs=1e-15)
    assert min_jerk(-0.3) == 0.0 and min_jerk(1.7) == pytest.approx(1.0, abs=1e-15)


def test_min_jerk_starts_and_stops_at_rest() -> None:
    h = 1e-4
    assert min_jerk(h) / h < 1e-6  # zero velocity at the start
    assert (1.0 - min_jerk(1.0 - h)) / h < 1e-6  # and at the end
    # peak velocity 1.875 (15/8) in the middle
    assert (min_jerk(0.5 + h) - min_jerk(0.5 - h)) / (2 * h) == pytest.approx(1.875, rel=1e-6)


@settings(max_examples=80, deadline=None)
@given(a=st.floats(-0.5, 1.5), b=st.floats(-0.5, 1.5))
def test_min_jerk_is_monotonic_and_symmetric(a: float, b: float) -> None:
    low, high = min(a, b), max(a, b)
    assert min_jerk(low) <= min_jerk(high)
    assert 0.0 <= min_jerk(a) <= 1.0 + 1e-15
    if 0.0 <= a <= 1.0:
        assert min_jerk(1.0 - a) == pytest.approx(1.0 - min_jerk(a), abs=1e-12)


# -- the scripted controller ----------------------------------------------------------------------


segments = st.lists(st.builds(
    Segment, duration_s=st.floats(0.1, 3.0),
    move_m=st.tuples(*[st.floats(-0.2, 0.2)] * 3),
    turn_rad=st.tuples(*[st.floats(-0.5, 0.5)] * 3)), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(script=segments)
def test_exact_pose_at_segment_boundaries_is_the_cumulative_moves(
        script: list[Segment]) -> None:
    quest = ScriptedQuest(script)
    assert quest.duration_s == pytest.approx(sum(s.duration_s for s in script))
    position = np.array(HAND_START_M)
    rotation = np.eye(3)
    start = 0.0
    for index, segment in enumerate(script):
        at_start, rot_start = quest.exact(start)
        assert quest.index_at(start) == index
        np.testing.assert_allclose(at_start, position, atol=1e-12)
        np.testing.assert_allclose(rot_start, rotation, atol=1e-12)
        position = position + np.array(segment.move_m)
        rotation = rotation_from_vector(segment.turn_rad) @ rotation
        start += segment.duration_s
    at_end, rot_end = quest.exact(quest.duration_s)
    np.testing.assert_allclose(at_end, position, atol=1e-12)
    np.testing.assert_allclose(rot_end, rotation, atol=1e-12)
    # after the end the controller stays where the script left it
    np.testing.assert_allclose(quest.exact(quest.duration_s + 5.0)[0], position, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(script=segments, fraction=st.floats(0.0, 1.0))
def test_within_a_segment_the_hand_moves_along_the_segment(script: list[Segment],
                                                           fraction: float) -> None:
    quest = ScriptedQuest(script)
    index = len(script) // 2
    t0 = float(quest.starts[index])
    segment = script[index]
    t = t0 + fraction * segment.duration_s
    position, rotation = quest.exact(t)
    start, rot_start = quest.exact(t0)
    s = min_jerk(fraction)
    np.testing.assert_allclose(position, start + s * np.array(segment.move_m), atol=1e-9)
    turned = rotation_vector(rotation @ rot_start.T)
    np.testing.assert_allclose(turned, s * np.array(segment.turn_rad), atol=1e-9)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)


def test_sample_reports_the_segment_inputs_and_tracking() -> None:
    script = [Segment(1.0, grip=True, trigger=True, label='held'),
              Segment(0.5, tracked=False, label='lost'),
              Segment(1.0, lower=True, upper=True, label='buttons')]
    quest = ScriptedQuest(script)
    held, lost, buttons = quest.sample(0.5), quest.sample(1.2), quest.sample(2.0)
    assert (held.inputs.grip, held.inputs.trigger, held.tracked) == (1.0, 1.0, True)
    assert not (held.inputs.lower or held.inputs.upper)
    assert lost.tracked is False and lost.segment == 1
    assert lost.inputs.grip == 0.0
    assert buttons.tracked and buttons.inputs.lower and buttons.inputs.upper
    assert buttons.inputs.grip == 0.0


def test_jitter_is_gaussian_about_the_exact_pose_and_seeded() -> None:
    script = [Segment(10.0)]
    a = ScriptedQuest(script, jitter_m=0.0005, seed=3)
    b = ScriptedQuest(script, jitter_m=0.0005, seed=3)
    times = np.arange(0.0, 10.0, 0.02)
    noise = np.array([a.sample(t).position - a.exact(t)[0] for t in times])
    assert np.std(noise) == pytest.approx(0.0005, rel=0.15)
    assert np.all(np.abs(np.mean(noise, axis=0)) < 0.0001)
    np.testing.assert_array_equal(b.sample(0.0).position, a.exact(0.0)[0] + noise[0])
    clean = ScriptedQuest(script)
    np.testing.assert_array_equal(clean.sample(3.0).position, clean.exact(3.0)[0])


def test_press_holds_then_releases_only_that_button() -> None:
    hold, after = press('upper', 'discard', hold_s=0.3, after_s=0.5)
    assert hold.upper and not hold.lower and hold.duration_s == 0.3
    assert not (after.upper or after.lower or after.grip) and after.duration_s == 0.5


# -- the scripted session ----------------------------------------------------------------------


def clutched_speeds(quest: ScriptedQuest, dt: float = 0.005) -> tuple[float, float]:
    """Peak linear (m/s) and angular (rad/s) hand speed while the grip is held."""
    linear = angular = 0.0
    for t in np.arange(0.0, quest.duration_s, dt):
        if not (quest.sample(t).inputs.grip and quest.sample(t + dt).inputs.grip):
            continue
        (p0, r0), (p1, r1) = quest.exact(t), quest.exact(t + dt)
        linear = max(linear, float(np.linalg.norm(p1 - p0)) / dt)
        angular = max(angular, float(np.linalg.norm(rotation_vector(r1 @ r0.T))) / dt)
    return linear, angular


@pytest.mark.parametrize('episodes', [1, 3])
def test_session_stays_under_the_commissioning_tcp_caps_while_clutched(episodes: int) -> None:
    """The arm moves with the hand (scale 1 in the twin) only while the grip is held."""
    quest = ScriptedQuest(teleop_session(episodes))
    config = load_teleop_config('sim_quest')
    linear, angular = clutched_speeds(quest)
    assert 0.01 < linear * config.translation_scale < COMMISSIONING.tcp_linear_m_s
    assert 0.0 < angular * config.rotation_scale < COMMISSIONING.tcp_angular_rad_s


def test_session_structure() -> None:
    script = teleop_session(3, discard=True)
    lower = [s.label for s in script if s.lower]
    assert lower == [f'{what} episode {k}' for k in range(3) for what in ('start', 'stop')] + [
        'start the discarded episode']
    upper = [s.label for s in script if s.upper]
    assert upper.count('discard') == 1
    assert upper.count('home (held)') == 4  # after each kept episode and after the discard
    assert all(s.tracked for s in script)
    assert all(not (s.grip and (s.lower or s.upper)) for s in script)
    without = teleop_session(3, discard=False)
    assert 'discard' not in [s.label for s in without]
    assert len(without) < len(script)
    # each kept episode ends with the hand at the start's lateral position (x) and height (y)
    quest = ScriptedQuest(without)
    end, _ = quest.exact(quest.duration_s)
    np.testing.assert_allclose(end[:2], np.array(HAND_START_M)[:2], atol=1e-12)


def test_buttons_are_pressed_one_at_a_time_with_a_release_between() -> None:
    """Every press is a rising edge: no two adjacent segments hold the same button."""
    script = teleop_session(2)
    assert not (script[0].lower or script[0].upper)
    for previous, segment in zip(script, script[1:], strict=False):
        assert not (segment.lower and previous.lower)
        assert not (segment.upper and previous.upper and 'home' not in segment.label)
        assert not (segment.lower and segment.upper)


# -- haptics -----------------------------------------------------------------------------------


@pytest.mark.parametrize('event', sorted(PATTERNS))
def test_pulse_schedule_ends_switched_off(event: str) -> None:
    now = 12.5
    schedule = pulse_schedule(event, now)
    assert schedule[-1][1] == 0.0
    assert schedule[0][0] == now and schedule[0][1] > 0.0
    times = [t for t, _ in schedule]
    assert times == sorted(times)
    assert all(0.0 <= amplitude <= 1.0 for _, amplitude in schedule)
    assert len(schedule) == 2 * len(PATTERNS[event])
    # every pulse is switched off after its own duration
    for (on_t, on_a), (off_t, off_a) in zip(schedule[::2], schedule[1::2], strict=True):
        assert on_a > 0.0 and off_a == 0.0 and off_t > on_t
    assert schedule[-1][0] - now < 1.0  # a short cue, not a long buzz


def test_pulse_schedule_of_an_unknown_event_is_refused() -> None:
    with pytest.raises(KeyError):
        pulse_schedule('exploded', 0.0)


def test_patterns_are_distinguishable() -> None:
    shapes = {tuple(pattern) for pattern in PATTERNS.values()}
    assert len(shapes) == len(PATTERNS)
    assert {'started', 'stopped', 'discarded', 'refused', 'aligned'} <= set(PATTERNS)
    assert math.isclose(max(a for p in PATTERNS.values() for *_, a in p), 1.0)


def _play(player: HapticPlayer, ticks: list[float]) -> list[tuple[float, float]]:
    sent = []
    for now in ticks:
        amplitude = player.step(now)
        if amplitude is not None:
            sent.append((now, amplitude))
    return sent


def _pulses_felt(sent: list[tuple[float, float]]) -> list[float]:
    """Durations of the pulses a controller that rumbles while the last setting is > 0 feels."""
    durations, on_since = [], None
    for now, amplitude in sent:
        if amplitude > 0.0 and on_since is None:
            on_since = now
        elif amplitude == 0.0 and on_since is not None:
            durations.append(now - on_since)
            on_since = None
    assert on_since is None, 'the controller was left rumbling'
    return durations


def test_haptic_player_on_time_ticks_plays_the_pattern_as_scheduled() -> None:
    player = HapticPlayer()
    player.add('stopped', 1.0)
    sent = _play(player, [1.0 + 0.01 * k for k in range(100)])
    assert sent == [(pytest.approx(t), a) for t, a in pulse_schedule('stopped', 1.0)]
    assert player.idle


def test_haptic_player_late_ticks_still_give_every_pulse() -> None:
    # The bug this guards: a timer 0.3 s late saw 'on' and 'off' due together, sent only the
    # 'off', and the operator felt nothing.
    player = HapticPlayer()
    player.add('stopped', 0.0)
    felt = _pulses_felt(_play(player, [0.3 * k for k in range(1, 20)]))
    assert len(felt) == 2
    assert all(d >= 0.08 - 1e-9 for d in felt)


@settings(max_examples=200, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from(sorted(PATTERNS)),
                                 st.floats(0.0, 1.0)), min_size=1, max_size=6),
       periods=st.lists(st.floats(0.005, 0.5), min_size=1, max_size=8))
def test_haptic_player_never_loses_or_shortens_a_pulse(events: list[tuple[str, float]],
                                                       periods: list[float]) -> None:
    player, now, k, sent = HapticPlayer(), 0.0, 0, []
    added = 0
    for event, after in events:
        # ticks up to the moment the next event arrives
        target = now + after
        while now < target:
            now += periods[k % len(periods)]
            k += 1
            amplitude = player.step(now)
            if amplitude is not None:
                sent.append((now, amplitude))
        player.add(event, now)
        added += len(PATTERNS[event])
    while not player.idle:
        now += periods[k % len(periods)]
        k += 1
        amplitude = player.step(now)
        if amplitude is not None:
            sent.append((now, amplitude))
    felt = _pulses_felt(sent)
    assert len(felt) == added
    shortest = min(duration for pattern in PATTERNS.values() for _, duration, _ in pattern)
    assert all(d >= shortest - 1e-9 for d in felt)
