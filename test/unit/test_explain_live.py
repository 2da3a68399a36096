"""Pacing and settings of the policy node's live overlays (visuomotor.explain.live).

What a user turning on `debug_rate_hz` checks: the first inference after start is kept for
an overlay, later ones on a fixed cadence of 1/rate (a late overlay does not shift the next,
a stalled loop does not cause a burst), so irregular inference times still give the rate;
saliency maps come at their own, lower rate and never when saliency is off; nonsensical
rates and scales are refused; the node parameters turn overlays off at rate 0 and refuse
saliency without overlays, naming the parameter.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from visuomotor.explain.live import OverlayPacer, OverlaySettings
from visuomotor.params import ParameterError, resolve
from visuomotor.policy.node_schema import POLICY_NODE_PARAMS, overlay_settings


def test_first_inference_is_due_then_waits_one_period() -> None:
    pacer = OverlayPacer(OverlaySettings(rate_hz=4.0, saliency=False, saliency_rate_hz=1.0,
                                         scale=4))
    assert pacer.due(100.0)
    assert pacer.due(100.0)  # asking does not take it
    pacer.taken(100.0)
    for now in (100.0, 100.05, 100.1, 100.2, 100.249):
        assert not pacer.due(now)
    assert pacer.due(100.25)
    assert pacer.due(101.0)


def test_a_late_overlay_keeps_the_cadence() -> None:
    pacer = OverlayPacer(OverlaySettings(rate_hz=4.0, saliency=False, saliency_rate_hz=1.0,
                                         scale=4))
    pacer.taken(100.0)  # next due at 100.25
    pacer.taken(100.3)  # taken 50 ms late: the one after is due at 100.5, not 100.55
    assert not pacer.due(100.49)
    assert pacer.due(100.5)


def test_far_behind_restarts_from_now_without_a_burst() -> None:
    pacer = OverlayPacer(OverlaySettings(rate_hz=4.0, saliency=False, saliency_rate_hz=1.0,
                                         scale=4))
    pacer.taken(100.0)  # next due at 100.25
    pacer.taken(102.0)  # the loop stalled for seconds: one overlay, then one period
    assert not pacer.due(102.0)
    assert not pacer.due(102.2)
    assert pacer.due(102.25)


def test_saliency_has_its_own_lower_rate() -> None:
    pacer = OverlayPacer(OverlaySettings(rate_hz=10.0, saliency=True, saliency_rate_hz=0.5,
                                         scale=2))
    assert pacer.saliency_due(0.0)  # the first overlay computes one
    assert not pacer.saliency_due(0.0)  # asking takes it
    for now in (0.1, 0.5, 1.0, 1.99):
        assert not pacer.saliency_due(now)
    assert pacer.saliency_due(2.0)
    assert not pacer.saliency_due(2.1)


def test_overlays_at_rate_with_saliency_fewer_times() -> None:
    pacer = OverlayPacer(OverlaySettings(rate_hz=4.0, saliency=True, saliency_rate_hz=1.0,
                                         scale=4))
    overlays = saliency = 0
    for tick in range(320):  # 10 s of inferences at 32 Hz (times exact in binary)
        now = tick / 32.0
        if pacer.due(now):
            pacer.taken(now)
            overlays += 1
            saliency += pacer.saliency_due(now)
    # 4 per second: every 8th tick (0.25 s) -> 40; saliency once a second -> 10
    assert overlays == 40
    assert saliency == 10


@settings(max_examples=60, deadline=None)
@given(rate=st.floats(0.1, 30.0), times=st.lists(st.floats(0.0, 100.0), min_size=1,
                                                  max_size=60))
def test_saliency_never_when_off(rate: float, times: list[float]) -> None:
    pacer = OverlayPacer(OverlaySettings(rate_hz=rate, saliency=False, saliency_rate_hz=rate,
                                         scale=1))
    for now in sorted(times):
        if pacer.due(now):
            pacer.taken(now)
        assert not pacer.saliency_due(now)


@settings(max_examples=80, deadline=None)
@given(rate=st.floats(0.5, 30.0), fractions=st.lists(st.floats(0.01, 0.99), min_size=2,
                                                      max_size=200))
def test_overlays_follow_the_rate_whatever_the_tick_jitter(rate: float,
                                                           fractions: list[float]) -> None:
    # inferences come at irregular times, each less than one overlay period after the last
    period = 1.0 / rate
    pacer = OverlayPacer(OverlaySettings(rate_hz=rate, saliency=False, saliency_rate_hz=1.0,
                                         scale=1))
    now, taken = 0.0, []
    for fraction in fractions:
        now += fraction * period
        if pacer.due(now):
            pacer.taken(now)
            taken.append(now)
    assert taken[0] == fractions[0] * period  # the first inference is always used
    span = (taken[-1] - taken[0]) / period
    assert len(taken) - 1 <= span + 1e-6  # never more than the rate
    # ... and not fewer: the k-th overlay is the first inference after k periods
    expected = math.floor((now - taken[0]) / period + 1e-9) + 1
    assert abs(len(taken) - expected) <= 1
    for k, t in enumerate(taken):
        assert t >= taken[0] + k * period - 1e-6
        assert t < taken[0] + k * period + period


@pytest.mark.parametrize('field', ['rate_hz', 'saliency_rate_hz'])
@pytest.mark.parametrize('value', [0.0, -1.0, float('nan')])
def test_settings_refuse_non_positive_rates(field: str, value: float) -> None:
    kwargs = {'rate_hz': 2.0, 'saliency': True, 'saliency_rate_hz': 1.0, 'scale': 4,
              field: value}
    with pytest.raises(ValueError, match='rates must be positive'):
        OverlaySettings(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize('scale', [0, -2])
def test_settings_refuse_scale_below_one(scale: int) -> None:
    with pytest.raises(ValueError, match='scale must be at least 1'):
        OverlaySettings(rate_hz=2.0, saliency=False, saliency_rate_hz=1.0, scale=scale)


def test_node_parameters_turn_overlays_off_at_rate_zero() -> None:
    assert overlay_settings(resolve(POLICY_NODE_PARAMS, {})) is None  # the default: off
    assert overlay_settings(resolve(POLICY_NODE_PARAMS, {'debug_rate_hz': 0.0,
                                                         'debug_scale': 8})) is None


def test_node_parameters_give_the_settings() -> None:
    params = resolve(POLICY_NODE_PARAMS, {'debug_rate_hz': 2.0, 'debug_saliency': True,
                                          'debug_saliency_rate_hz': 0.5, 'debug_scale': 3})
    assert overlay_settings(params) == OverlaySettings(2.0, True, 0.5, 3)


def test_node_parameters_refuse_saliency_without_overlays() -> None:
    params = resolve(POLICY_NODE_PARAMS, {'debug_rate_hz': 0.0, 'debug_saliency': True})
    with pytest.raises(ParameterError, match='debug_rate_hz') as info:
        overlay_settings(params)
    assert info.value.field == 'debug_saliency'
    assert 'debug_saliency' in str(info.value)
