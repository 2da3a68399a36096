"""The twin in lockstep with its consumers (pure bookkeeping of visuomotor.sim.lockstep)."""

from __future__ import annotations

import pytest

from visuomotor.sim.lockstep import FUTURE_S, LockstepGate

WALL = 100.0  # a monotonic wall-clock reading


def gate(lead: float = 0.0) -> LockstepGate:
    g = LockstepGate.from_names(' safety_bridge, policy ,', lead, silence_s=2.0)
    g.restart(0.0)
    return g


def report(g: LockstepGate, name: str, due: float, clock: float, wall: float = WALL,
           holding: bool = False) -> None:
    g.on_report(name, due, clock, wall, holding)


def test_names_are_trimmed_and_an_empty_list_runs_free() -> None:
    assert gate().consumers == ('safety_bridge', 'policy')
    free = LockstepGate.from_names('')
    assert free.consumers == () and free.until(WALL) is None
    assert free.behind(1e6, WALL) == []


def test_silent_consumers_hold_the_clock_at_the_start() -> None:
    g = gate()
    assert g.until(WALL) == 0.0
    assert g.behind(0.002, WALL) == ['safety_bridge', 'policy']  # nobody has reported
    # A node that never reported is waited for however long it takes to start.
    assert g.behind(0.002, WALL + 3600.0) == ['safety_bridge', 'policy']


def test_the_clock_goes_as_far_as_the_earliest_next_tick() -> None:
    """Each consumer reports when its tick is next due: the bridge every 10 ms, the policy
    every 100 ms; the twin stops at each of those ticks until it has run."""
    g = gate()
    report(g, 'safety_bridge', 0.01, clock=0.0)
    report(g, 'policy', 0.1, clock=0.0)
    assert g.until(WALL) == 0.01
    assert g.behind(0.01, WALL) == []  # the bridge's tick time itself may be reached
    assert g.behind(0.012, WALL) == ['safety_bridge']  # not past it
    report(g, 'safety_bridge', 0.02, clock=0.01)  # its tick at 0.01 ran
    assert g.until(WALL) == 0.02


def test_a_lead_lets_the_clock_run_ahead_of_the_slowest_consumer() -> None:
    g = gate(lead=0.03)
    report(g, 'safety_bridge', 1.00, clock=1.0)
    report(g, 'policy', 1.05, clock=1.0)
    assert g.until(WALL) == pytest.approx(1.03)


def test_a_holding_consumer_stops_the_clock_even_with_a_lead() -> None:
    """The policy node holds simulated time while it infers, as the in-process rollout does."""
    g = gate(lead=0.03)
    report(g, 'safety_bridge', 3.01, clock=3.0)
    report(g, 'policy', 3.0, clock=3.0, holding=True)
    assert g.until(WALL) == 3.0
    report(g, 'policy', 3.1, clock=3.0)  # released: next due at 3.1
    assert g.until(WALL) == pytest.approx(3.04)


def test_a_reset_forgets_progress_and_ignores_reports_from_the_old_timeline() -> None:
    g = gate()
    report(g, 'safety_bridge', 35.21, clock=35.2)
    report(g, 'policy', 35.3, clock=35.2)
    g.restart(0.0)
    report(g, 'safety_bridge', 35.22, clock=0.0)  # in flight across the reset
    assert g.progress == {} and g.until(WALL) == 0.0
    report(g, 'safety_bridge', 0.01, clock=0.0)
    report(g, 'policy', 0.1, clock=0.0)
    assert g.until(WALL) == 0.01
    assert FUTURE_S >= 0.5  # a report a policy period ahead of the clock is not "future"


def test_unknown_reporters_are_ignored() -> None:
    g = gate()
    report(g, 'someone_else', 5.0, clock=5.0)
    assert 'someone_else' not in g.progress


def test_a_consumer_that_falls_silent_is_not_waited_for_until_it_reports_again() -> None:
    """A killed policy node must not freeze the twin: the bridge's watchdog has to see it."""
    g = gate()
    report(g, 'safety_bridge', 5.01, clock=5.0, wall=WALL)
    report(g, 'policy', 5.1, clock=5.0, wall=WALL)
    report(g, 'safety_bridge', 5.11, clock=5.1, wall=WALL + 2.5)  # the bridge lives on
    assert g.gone(WALL + 2.5) == ['policy']
    assert g.until(WALL + 2.5) == 5.11  # policy silent for 2.5 s: gone
    report(g, 'policy', 5.2, clock=5.1, wall=WALL + 3.0)  # restarted: waited for again
    assert g.gone(WALL + 3.0) == []
    assert g.until(WALL + 3.0) == 5.11
