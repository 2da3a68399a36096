"""Following a running graph from outside: the bridge's state, /diagnostics, what changed.

`visuomotor launch` and the demo's stages run one of these next to the graph they started,
so a latched fault, a node that reports an error or a node that dies is printed when it
happens, with its reason, instead of leaving "started X" as the last word.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.context import Context
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import String

BRIDGE_STATE_TOPIC = '/safety_bridge/state'
BRIDGE_DIAGNOSTICS = 'visuomotor: safety bridge'
_LEVELS = {DiagnosticStatus.OK: 'ok', DiagnosticStatus.WARN: 'warn',
           DiagnosticStatus.ERROR: 'error', DiagnosticStatus.STALE: 'stale'}


@dataclass(frozen=True)
class GraphEvent:
    """Something worth a line: a state change, a new error, a fault (with its reason)."""

    level: str  # info | warn | error
    text: str


class GraphMonitor:
    """Subscribes to the bridge's latched state and /diagnostics; collects what changed.

    Args:
        context: an initialised rclpy context on the graph's domain.
    """

    def __init__(self, context: Context) -> None:
        self.node = Node('graph_monitor', context=context)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(String, BRIDGE_STATE_TOPIC, self._on_state, latched)
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics,
                                      50)
        self.bridge_state = ''
        self.fault_reason = ''
        self.events: deque[GraphEvent] = deque(maxlen=1000)
        self.faults = 0
        self.values: dict[str, dict[str, str]] = {}  # the latest key-values of each status
        self._statuses: dict[str, tuple[str, str]] = {}

    @property
    def faulted(self) -> bool:
        """Whether the bridge is in a latched fault now."""
        return self.bridge_state == 'fault'

    def _on_state(self, msg: String) -> None:
        if msg.data == self.bridge_state:
            return
        previous, self.bridge_state = self.bridge_state, msg.data
        if msg.data == 'fault':
            self.faults += 1
            self.events.append(GraphEvent('error', 'safety bridge: FAULT latched'
                                          + (f': {self.fault_reason}' if self.fault_reason
                                             else ' (reason follows on /diagnostics)')))
        else:
            self.events.append(GraphEvent('info', f'safety bridge: {previous or "(started)"} '
                                          f'-> {msg.data}'))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            level = _LEVELS.get(status.level, 'error')
            self.values[status.name] = {kv.key: kv.value for kv in status.values}
            if status.name == BRIDGE_DIAGNOSTICS and status.message.startswith('fault: '):
                reason = status.message.removeprefix('fault: ')
                if reason != self.fault_reason:
                    self.fault_reason = reason
                    self.events.append(GraphEvent('error', f'safety bridge fault: {reason}'))
                continue
            before = self._statuses.get(status.name)
            self._statuses[status.name] = (level, status.message)
            if level == 'error' and before != (level, status.message):
                self.events.append(GraphEvent('error', f'{status.name}: {status.message}'))
            elif before is not None and before[0] == 'error' and level != 'error':
                self.events.append(GraphEvent('info', f'{status.name}: recovered '
                                              f'({status.message})'))

    def drain(self) -> list[GraphEvent]:
        """The events since the last call."""
        events = list(self.events)
        self.events.clear()
        return events

    def close(self) -> None:
        """Destroy the monitor's node."""
        self.node.destroy_node()
