"""Demo stage 3: the safety bridge between a misbehaving policy and the FR3 twin.

The twin (1x real time), the bridge (commissioning tier, the twin's workspace box) and a
scripted policy client run over DDS on simulated time. The policy moves the arm, then sends a
NaN chunk, a +2.5 rad step, goes silent, and finally the joint states freeze; the bridge's
own decision records and counters are reported, and the decision log is written.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.parameter import Parameter

from visuomotor.ros.demo_checks import Check
from visuomotor.ros.twin_graph import BridgeHarness


@dataclass(frozen=True)
class SafetyFigures:
    """What the stage measured (simulated seconds, radians)."""

    joint_speed_max: float
    joint_speed_cap: float
    nan_rejected: int
    step_ticks: int
    step_max_per_tick: float
    step_bound_per_tick: float
    stop_start_s: float
    stop_bound_s: float
    at_rest_s: float
    fault_reason: str
    acknowledge_jump: float
    decision_log: Path


def run_safety_stage(out_dir: Path) -> SafetyFigures:
    """Run the scenario once and return its figures."""
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / 'safety_decisions.jsonl'
    log.unlink(missing_ok=True)
    context = Context()
    rclpy.init(context=context)
    graph = BridgeHarness(context, real_time_factor=1.0,
                          bridge_params=[Parameter('decision_log', value=str(log))])
    try:
        lim, timing = graph.limits, graph.bridge.bridge.timing
        counters = graph.bridge.bridge.counters.values
        graph.arm()
        target = graph.home + np.array([0.25, -0.15, 0.1, 0.15, 0.0, 0.15, -0.2])
        graph.run_for(2.0, graph.stream(target))
        speeds = np.array([np.max(np.abs(v)) for _, _, v in graph.client.record.joint_states])

        bad = graph.client.measured().copy()
        bad[3] = math.nan
        graph.client.send([(0.1, bad)])
        graph.run_for(0.2)

        graph.client.record.decisions.clear()
        step = graph.client.measured().copy()
        step[0] += 2.5
        graph.run_for(1.0, graph.stream(step, horizon=1))
        moving = [d['limited'] for d in graph.client.record.decisions
                  if d['state'] == 'armed']
        per_tick = np.abs(np.diff(np.array(moving)[:, 0]))

        graph.client.record.decisions.clear()
        graph.client.record.joint_states.clear()
        graph.wait_for_state('holding', 3.0)
        stops = [d for d in graph.client.record.decisions if d['state'] == 'stopping']
        stop_start = float(stops[0]['since_command']) if stops else math.nan
        last_valid = float(stops[0]['t']) - stop_start if stops else math.nan
        graph.run_for(0.3)
        at_rest = next((s - last_valid for s, _, v in graph.client.record.joint_states
                        if np.max(np.abs(v)) < 0.01 and s > last_valid), math.nan)

        graph.run_for(0.5, graph.stream(graph.home))
        graph.client.relay_mode = 'frozen'
        graph.wait_for_state('fault', 1.0, graph.stream(graph.home))
        graph.run_for(0.5)
        reason = graph.bridge.bridge.fault_reason
        graph.client.relay_mode = 'live'
        graph.run_for(0.2)
        graph.client.record.decisions.clear()
        graph.call('acknowledge')
        graph.run_for(0.05)
        held = next(d for d in graph.client.record.decisions if d['limited'] is not None)
        jump = float(np.max(np.abs(np.array(held['limited']) - graph.client.measured())))
        return SafetyFigures(
            joint_speed_max=float(speeds.max()), joint_speed_cap=float(lim.velocity_rad_s.max()),
            nan_rejected=int(counters['rejected_non_finite']), step_ticks=len(moving),
            step_max_per_tick=float(per_tick.max()) if len(per_tick) else 0.0,
            step_bound_per_tick=float(lim.velocity_rad_s[0] * timing.control_period_s),
            stop_start_s=stop_start, stop_bound_s=timing.watchdog_s + timing.control_period_s,
            at_rest_s=at_rest, fault_reason=reason, acknowledge_jump=jump, decision_log=log)
    finally:
        graph.close()
        rclpy.try_shutdown(context=context)


def summary_lines(figures: SafetyFigures) -> list[str]:
    """The stage's report."""
    f = figures
    records = sum(1 for _ in f.decision_log.open()) if f.decision_log.is_file() else 0
    return [
        f'  policy moves the arm: max measured joint speed {f.joint_speed_max:.3f} rad/s '
        f'(commissioning cap {f.joint_speed_cap:g})',
        f'  NaN chunk: rejected ({f.nan_rejected}), nothing sent',
        f'  +2.5 rad step on joint 1: spread over {f.step_ticks} ticks, at most '
        f'{f.step_max_per_tick:.4f} rad per tick (cap {f.step_bound_per_tick:.4f})',
        f'  policy goes silent: stop began {f.stop_start_s * 1e3:.0f} ms after the last '
        f'command (bound {f.stop_bound_s * 1e3:.0f} ms), arm at rest after '
        f'{f.at_rest_s * 1e3:.0f} ms',
        f'  joint states freeze: fault latched ({f.fault_reason})',
        f'  acknowledge: holding the measured pose (jump {f.acknowledge_jump:.4f} rad)',
        f'  decision log: {f.decision_log} ({records} records)',
        f'  a limited decision: {json.dumps(_first_record(f.decision_log))}',
    ]


def checks(figures: SafetyFigures) -> list[Check]:
    """What the stage must show."""
    f = figures
    return [Check('the arm moved under the commissioning joint speed cap',
                  0.0 < f.joint_speed_max <= f.joint_speed_cap * 1.1),
            Check('the NaN chunk was rejected', f.nan_rejected > 0),
            Check('the step was spread within the velocity cap',
                  f.step_ticks > 1 and f.step_max_per_tick <= f.step_bound_per_tick + 1e-9),
            Check('a silent policy was stopped within the watchdog bound',
                  f.stop_start_s <= f.stop_bound_s + 1e-9),
            Check('frozen joint states latched a fault', bool(f.fault_reason)),
            Check('acknowledge resumed without a jump', f.acknowledge_jump < 0.01)]


def _first_record(path: Path) -> object:
    with path.open() as stream:
        for line in stream:
            record = json.loads(line)
            if record['reasons']:
                return record
    return None
