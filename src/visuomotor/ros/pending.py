"""Handle the messages already waiting in a subscription's queue, before a decision.

An executor takes one message per ready subscription per wake-up and runs timers first, so
a timer callback can run while messages it depends on sit unhandled in the queue: a node
that was starved for a while (a loaded CPU) wakes up to a clock that moved on and a backlog
of joint states. A check that judges freshness must first look at what has arrived.

Uses the subscription handle's `take_message(msg_type, raw)`, the call rclpy's own executor
makes to take a message (rclpy/executors.py `_take_subscription`, Humble through Kilted).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rclpy.subscription import Subscription

#: At most this many messages per call (a flood never blocks the caller for long).
LIMIT = 1000


def take_pending(subscription: Subscription[Any], handle: Callable[[Any], None],
                 limit: int = LIMIT) -> int:
    """Pass every message waiting in `subscription` to `handle`, oldest first.

    Returns how many were taken. Where the rclpy build lacks the handle API, nothing is
    taken (the executor still delivers the messages, one wake-up later).
    """
    taken = 0
    take = getattr(subscription.handle, 'take_message', None)
    if take is None:
        return 0
    while taken < limit:
        with subscription.handle:
            result = take(subscription.msg_type, subscription.raw)
        if result is None:
            break
        handle(result[0])
        taken += 1
    return taken
