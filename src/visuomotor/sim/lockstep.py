"""The twin's bounded lead, pure bookkeeping (the ROS side: visuomotor.ros.lockstep).

In lockstep mode the sim node advances simulated time only while every consumer node it
waits for has reported progress within `max_lead_s` of the next tick. Consumers that have
not reported since the last start or reset count as caught up with that moment, so the twin
waits for a node that is not up yet instead of running ahead of it; reports stamped far ahead
of the clock come from before a reset and are ignored.

A consumer that has reported before and then falls silent for `silence_s` of wall-clock time
(its process died or hangs: a live consumer repeats its report as a heartbeat, even while it
holds the clock) is no longer waited for until it reports again: the twin keeps running, so
the rest of the graph, the safety bridge's watchdog first, sees the failure as it would on a
real robot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Simulated seconds between a consumer's progress reports (only changed values are sent).
REPORT_PERIOD_S = 0.005
#: Wall-clock seconds between a consumer's heartbeats (its last report again).
HEARTBEAT_S = 0.5
#: A report this far ahead of the twin's clock belongs to a timeline before a reset.
FUTURE_S = 1.0


@dataclass
class LockstepGate:
    """The sim node's side (pure bookkeeping): may the clock advance to a time?

    Attributes:
        consumers: node names whose progress the twin waits for.
        max_lead_s: how far the twin's next tick may be ahead of the slowest consumer.
        silence_s: wall seconds without any report after which a consumer that has reported
            before is considered gone (not waited for until it reports again).
    """

    consumers: tuple[str, ...]
    max_lead_s: float
    silence_s: float = 2.0
    origin_s: float = 0.0
    progress: dict[str, float] = field(default_factory=dict)
    holding: set[str] = field(default_factory=set)
    heard_wall_s: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_names(cls, names: str, max_lead_s: float, silence_s: float = 2.0
                   ) -> LockstepGate:
        """A gate for the consumers named in `names`, comma-separated (empty: free running)."""
        return cls(tuple(n.strip() for n in names.split(',') if n.strip()), max_lead_s,
                   silence_s)

    def restart(self, origin_s: float) -> None:
        """Simulated time (re)starts at `origin_s` (start-up, a reset)."""
        self.origin_s = origin_s
        self.progress.clear()
        self.holding.clear()

    def on_report(self, name: str, stamp_s: float, clock_s: float, wall_s: float,
                  holding: bool = False) -> None:
        """A consumer's report (`holding`: the clock must not move past `stamp_s` at all).

        Any report is a sign of life; one stamped before a reset is not progress.
        """
        if name not in self.consumers:
            return
        self.heard_wall_s[name] = wall_s
        if stamp_s <= clock_s + FUTURE_S:
            self.progress[name] = stamp_s  # the latest: a held report may go back
            if holding:
                self.holding.add(name)
            else:
                self.holding.discard(name)

    def gone(self, wall_s: float) -> list[str]:
        """Consumers that reported before and have been silent for `silence_s`."""
        return [n for n, heard in self.heard_wall_s.items() if wall_s - heard > self.silence_s]

    def behind(self, next_time_s: float, wall_s: float) -> list[str]:
        """The live consumers more than `max_lead_s` behind `next_time_s` (empty: go ahead)."""
        gone = set(self.gone(wall_s))
        return [n for n in self.consumers if n not in gone
                and self.progress.get(n, self.origin_s) <
                next_time_s - (0.0 if n in self.holding else self.max_lead_s) - 1e-9]
