"""The One Euro filter on the controller pose (visuomotor.teleop.filters).

Filtered with the shipped settings (config/teleop/sim_quest.yaml), a hand held still with
sub-millimetre tracking jitter must give a clearly steadier target, and a hand moving at a
teleoperation speed must be followed with a lag of millimetres, not centimetres; rotations
stay proper rotation matrices whatever the input.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visuomotor.robots.transforms import rotation_from_vector, rotation_vector
from visuomotor.teleop.config import TeleopConfig, load_teleop_config
from visuomotor.teleop.filters import OneEuroPose, smoothing

RATE_HZ = 50.0
DT = 1.0 / RATE_HZ


def shipped_filter(config: TeleopConfig | None = None) -> OneEuroPose:
    """The filter with the twin's configured parameters."""
    cfg = config or load_teleop_config('sim_quest')
    return OneEuroPose(cfg.filter_min_cutoff_hz, cfg.filter_beta,
                       cfg.filter_derivative_cutoff_hz)


def test_smoothing_factor_is_a_first_order_low_pass() -> None:
    # alpha = dt / (dt + tau), tau = 1 / (2 pi fc): 0 at fc -> 0, 1 at fc -> inf
    assert smoothing(1.0, DT) == pytest.approx(DT / (DT + 1.0 / (2 * math.pi)))
    assert smoothing(1e-9, DT) < 1e-6
    assert smoothing(1e9, DT) > 1.0 - 1e-6
    assert smoothing(1.0, DT) < smoothing(5.0, DT) < smoothing(5.0, 2 * DT)


def test_jitter_at_rest_is_reduced() -> None:
    """0.5 mm Gaussian jitter per axis at 50 Hz: at least twice steadier after the filter."""
    rng = np.random.default_rng(7)
    still = np.array([0.25, 1.1, -0.35])
    samples = still + rng.normal(0.0, 0.0005, (500, 3))
    filt = shipped_filter()
    out = np.array([filt(k * DT, p, np.eye(3))[0] for k, p in enumerate(samples)])
    settled_in, settled_out = samples[100:], out[100:]
    raw_std = float(np.mean(np.std(settled_in, axis=0)))
    filtered_std = float(np.mean(np.std(settled_out, axis=0)))
    assert raw_std == pytest.approx(0.0005, rel=0.2)
    assert filtered_std < raw_std / 2.0
    # and it is not a bias: the filtered pose stays on the hand
    assert np.linalg.norm(np.mean(settled_out, axis=0) - still) < 0.0005


def test_ramp_is_followed_with_a_small_lag() -> None:
    """A hand moving at 5 cm/s: the filtered pose is within 1 cm of it after 1 s."""
    filt = shipped_filter()
    start, direction, speed = np.array([0.2, 1.0, -0.3]), np.array([0.6, 0.0, -0.8]), 0.05
    lags = []
    for k in range(int(2.0 * RATE_HZ) + 1):
        t = k * DT
        hand = start + speed * t * direction
        position, _ = filt(t, hand, np.eye(3))
        lags.append(float(np.linalg.norm(hand - position)))
        # the filter never runs ahead of the hand, and lags along the motion
        assert float(np.dot(hand - position, direction)) >= -1e-12
    assert max(lags[int(RATE_HZ):]) < 0.01
    assert lags[-1] > 0.0  # it is a filter (not a pass-through) at this speed


def test_rotation_at_constant_rate_is_followed() -> None:
    filt = shipped_filter()
    axis = np.array([0.0, 1.0, 0.0])
    rate = 0.5  # rad/s
    for k in range(int(2.0 * RATE_HZ) + 1):
        t = k * DT
        hand = rotation_from_vector(rate * t * axis)
        _, rotation = filt(t, np.zeros(3), hand)
    lag = float(np.linalg.norm(rotation_vector(rotation.T @ hand)))
    assert 0.0 < lag < math.radians(5.0)


def test_reset_passes_the_next_sample_through() -> None:
    filt = shipped_filter()
    for k in range(20):
        filt(k * DT, np.zeros(3), np.eye(3))
    far, turned = np.array([0.3, -0.2, 0.1]), rotation_from_vector([0.0, 0.0, 1.0])
    smoothed, _ = filt(20 * DT, far, turned)
    assert np.linalg.norm(smoothed - far) > 0.05  # filtered: it lags
    filt.reset()
    position, rotation = filt(21 * DT, far, turned)
    np.testing.assert_array_equal(position, far)
    np.testing.assert_allclose(rotation, turned, atol=1e-15)


def test_a_sample_not_after_the_last_restarts_the_filter() -> None:
    filt = shipped_filter()
    filt(1.0, np.zeros(3), np.eye(3))
    filt(1.02, np.zeros(3), np.eye(3))
    jumped = np.array([0.1, 0.0, 0.0])
    position, _ = filt(1.02, jumped, np.eye(3))
    np.testing.assert_array_equal(position, jumped)


def test_output_is_a_copy() -> None:
    filt = shipped_filter()
    position, rotation = filt(0.0, np.ones(3), np.eye(3))
    position[:] = 5.0
    rotation[:] = 0.0
    again, turned = filt(DT, np.ones(3), np.eye(3))
    np.testing.assert_allclose(again, np.ones(3))
    np.testing.assert_allclose(turned, np.eye(3), atol=1e-12)


rotation_vectors = st.tuples(*[st.floats(-3.1, 3.1)] * 3)


@settings(max_examples=60, deadline=None)
@given(turns=st.lists(rotation_vectors, min_size=2, max_size=40),
       steps=st.lists(st.floats(0.001, 0.1), min_size=40, max_size=40))
def test_rotation_stays_orthonormal(turns: list[tuple[float, float, float]],
                                    steps: list[float]) -> None:
    filt = shipped_filter()
    t = 0.0
    for turn, dt in zip(turns, steps, strict=False):
        t += dt
        hand = rotation_from_vector(turn)
        position, rotation = filt(t, np.zeros(3), hand)
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(rotation) == pytest.approx(1.0, abs=1e-9)
        assert np.all(np.isfinite(position))


@settings(max_examples=60, deadline=None)
@given(points=st.lists(st.tuples(*[st.floats(-1.0, 1.0)] * 3), min_size=2, max_size=30))
def test_position_stays_within_the_hull_of_the_samples(
        points: list[tuple[float, float, float]]) -> None:
    """Exponential smoothing is a convex combination: never beyond the samples' box."""
    filt = shipped_filter()
    samples = np.array(points)
    for k, p in enumerate(samples):
        position, _ = filt(k * DT, p, np.eye(3))
        assert np.all(position >= samples[: k + 1].min(axis=0) - 1e-12)
        assert np.all(position <= samples[: k + 1].max(axis=0) + 1e-12)


def test_still_rotation_converges_to_the_hand() -> None:
    filt = shipped_filter()
    filt(0.0, np.zeros(3), np.eye(3))
    hand = rotation_from_vector([0.3, -0.2, 0.5])
    for k in range(1, 200):
        _, rotation = filt(k * DT, np.zeros(3), hand)
    assert float(np.linalg.norm(rotation_vector(rotation.T @ hand))) < 1e-4
