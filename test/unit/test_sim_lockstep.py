"""The twin's bounded lead (pure bookkeeping of visuomotor.sim.lockstep)."""

from __future__ import annotations

from visuomotor.sim.lockstep import FUTURE_S, LockstepGate

WALL = 100.0  # a monotonic wall-clock reading


def gate() -> LockstepGate:
    g = LockstepGate.from_names(' safety_bridge, policy ,', 0.03, silence_s=2.0)
    g.restart(0.0)
    return g


def report(g: LockstepGate, name: str, stamp: float, clock: float, wall: float = WALL) -> None:
    g.on_report(name, stamp, clock, wall)


def test_names_are_trimmed_and_an_empty_list_runs_free() -> None:
    assert gate().consumers == ('safety_bridge', 'policy')
    free = LockstepGate.from_names('', 0.03)
    assert free.consumers == ()
    assert free.behind(1e6, WALL) == []


def test_silent_consumers_count_as_caught_up_with_the_start_only() -> None:
    g = gate()
    assert g.behind(0.03, WALL) == []  # within the lead of the start
    assert g.behind(0.031, WALL) == ['safety_bridge', 'policy']  # nobody has reported
    # A node that never reported is waited for however long it takes to start.
    assert g.behind(0.031, WALL + 3600.0) == ['safety_bridge', 'policy']


def test_the_slowest_consumer_holds_the_clock() -> None:
    g = gate()
    report(g, 'safety_bridge', 1.00, clock=1.0)
    report(g, 'policy', 0.95, clock=1.0)
    assert g.behind(0.98, WALL) == []
    assert g.behind(0.99, WALL) == ['policy']
    report(g, 'policy', 1.00, clock=1.0)
    assert g.behind(1.03, WALL) == []


def test_a_held_report_may_go_back() -> None:
    """The policy node reports its inference's observation time while it runs."""
    g = gate()
    report(g, 'safety_bridge', 2.0, clock=2.0)
    report(g, 'policy', 2.0, clock=2.0)
    report(g, 'policy', 1.9, clock=2.0)
    assert g.behind(1.94, WALL) == ['policy']


def test_a_reset_forgets_progress_and_ignores_reports_from_the_old_timeline() -> None:
    g = gate()
    report(g, 'safety_bridge', 35.2, clock=35.2)
    report(g, 'policy', 35.2, clock=35.2)
    g.restart(0.0)
    report(g, 'safety_bridge', 35.21, clock=0.004)  # in flight across the reset
    assert g.progress == {}
    assert g.behind(0.05, WALL) == ['safety_bridge', 'policy']
    report(g, 'safety_bridge', 0.02, clock=0.02)
    report(g, 'policy', 0.02 + FUTURE_S / 2, clock=0.02)  # a clock slightly behind
    assert g.behind(0.05, WALL) == []


def test_unknown_reporters_are_ignored() -> None:
    g = gate()
    report(g, 'someone_else', 0.0, clock=5.0)
    assert 'someone_else' not in g.progress


def test_a_consumer_that_falls_silent_is_not_waited_for_until_it_reports_again() -> None:
    """A killed policy node must not freeze the twin: the bridge's watchdog has to see it."""
    g = gate()
    report(g, 'safety_bridge', 5.0, clock=5.0, wall=WALL)
    report(g, 'policy', 5.0, clock=5.0, wall=WALL)
    assert g.behind(5.1, WALL + 1.0) == ['safety_bridge', 'policy']
    report(g, 'safety_bridge', 5.2, clock=5.2, wall=WALL + 2.5)  # the bridge lives on
    assert g.gone(WALL + 2.5) == ['policy']
    assert g.behind(5.2, WALL + 2.5) == []  # policy silent for 2.5 s: gone
    report(g, 'policy', 5.2, clock=5.2, wall=WALL + 3.0)  # restarted: waited for again
    assert g.gone(WALL + 3.0) == []
    assert g.behind(5.3, WALL + 3.0) == ['safety_bridge', 'policy']
