"""The twin's bounded lead (pure bookkeeping of visuomotor.sim.lockstep)."""

from __future__ import annotations

from visuomotor.sim.lockstep import FUTURE_S, LockstepGate


def gate() -> LockstepGate:
    g = LockstepGate.from_names(' safety_bridge, policy ,', 0.03)
    g.restart(0.0)
    return g


def test_names_are_trimmed_and_an_empty_list_runs_free() -> None:
    assert gate().consumers == ('safety_bridge', 'policy')
    free = LockstepGate.from_names('', 0.03)
    assert free.consumers == ()
    assert free.behind(1e6) == []


def test_silent_consumers_count_as_caught_up_with_the_start_only() -> None:
    g = gate()
    assert g.behind(0.03) == []  # within the lead of the start
    assert g.behind(0.031) == ['safety_bridge', 'policy']  # nobody has reported


def test_the_slowest_consumer_holds_the_clock() -> None:
    g = gate()
    g.on_report('safety_bridge', 1.00, clock_s=1.0)
    g.on_report('policy', 0.95, clock_s=1.0)
    assert g.behind(0.98) == []
    assert g.behind(0.99) == ['policy']
    g.on_report('policy', 1.00, clock_s=1.0)
    assert g.behind(1.03) == []


def test_a_held_report_may_go_back() -> None:
    """The policy node reports its inference's observation time while it runs."""
    g = gate()
    g.on_report('safety_bridge', 2.0, clock_s=2.0)
    g.on_report('policy', 2.0, clock_s=2.0)
    g.on_report('policy', 1.9, clock_s=2.0)
    assert g.behind(1.94) == ['policy']


def test_a_reset_forgets_progress_and_ignores_reports_from_the_old_timeline() -> None:
    g = gate()
    g.on_report('safety_bridge', 35.2, clock_s=35.2)
    g.on_report('policy', 35.2, clock_s=35.2)
    g.restart(0.0)
    g.on_report('safety_bridge', 35.21, clock_s=0.004)  # in flight across the reset
    assert g.progress == {}
    assert g.behind(0.05) == ['safety_bridge', 'policy']
    g.on_report('safety_bridge', 0.02, clock_s=0.02)
    g.on_report('policy', 0.02 + FUTURE_S / 2, clock_s=0.02)  # a clock slightly behind
    assert g.behind(0.05) == []


def test_unknown_reporters_are_ignored() -> None:
    g = gate()
    g.on_report('someone_else', 0.0, clock_s=5.0)
    assert 'someone_else' not in g.progress
