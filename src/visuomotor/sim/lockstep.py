"""The twin in lockstep with its consumers, pure bookkeeping (ROS side: visuomotor.ros.lockstep).

Every consumer node reports its progress: the simulated time up to which it has done all it
had to do, which is the time its tick is next due (the safety bridge after its tick at T:
T + 10 ms). The sim node never steps past the smallest of those (plus `max_lead_s`, 0 by
default): at each consumer's tick the twin waits until the tick has run and its output has
arrived, exactly as the in-process rollout calls every part in turn at each instant. A
consumer that holds the clock (the policy node while it infers) stops it where it is.

Consumers that have not reported since the last start or reset count as caught up with that
moment, so the twin waits for a node that is not up yet instead of running ahead of it;
reports stamped far ahead of the clock come from before a reset and are ignored. A consumer
that has reported before and then falls silent for `silence_s` of wall-clock time (its
process died or hangs: a live consumer repeats its report as a heartbeat, even while it
holds the clock) is no longer waited for until it reports again: the twin keeps running, so
the rest of the graph, the safety bridge's watchdog first, sees the failure as it would on a
real robot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Wall-clock seconds between a consumer's heartbeats (its progress, recomputed and sent).
HEARTBEAT_S = 0.1
#: A report this far ahead of the twin's clock belongs to a timeline before a reset.
FUTURE_S = 1.0


@dataclass
class LockstepGate:
    """The sim node's side: how far may simulated time go now?

    Attributes:
        consumers: node names whose progress the twin waits for.
        max_lead_s: how far past a consumer's progress the twin may run (0: strict lockstep).
        silence_s: wall seconds without any report after which a consumer that has reported
            before is considered gone (not waited for until it reports again).
    """

    consumers: tuple[str, ...]
    max_lead_s: float = 0.0
    silence_s: float = 2.0
    origin_s: float = 0.0
    progress: dict[str, float] = field(default_factory=dict)
    holding: set[str] = field(default_factory=set)
    heard_wall_s: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_names(cls, names: str, max_lead_s: float = 0.0, silence_s: float = 2.0
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

    def limits(self, wall_s: float) -> dict[str, float]:
        """How far each live consumer lets the clock go (all of them: no limit)."""
        gone = set(self.gone(wall_s))
        return {n: self.progress.get(n, self.origin_s)
                + (0.0 if n in self.holding else self.max_lead_s)
                for n in self.consumers if n not in gone}

    def until(self, wall_s: float) -> float | None:
        """The latest simulated time the twin may reach now (None: free running)."""
        limits = self.limits(wall_s)
        return min(limits.values()) if limits else None

    def behind(self, next_time_s: float, wall_s: float) -> list[str]:
        """The live consumers that do not let the clock reach `next_time_s` yet."""
        return [n for n, limit in self.limits(wall_s).items() if limit < next_time_s - 1e-9]
