"""In-process and through ROS, the same execution: the safety bridge decides the same thing at
every tick.

`make demo` compares the bundled policy's success through the whole deploy graph with the
same policy rolled out in-process. That comparison only means something if both run the
same execution: the same deploy loop, the same bridge, every tick at the same simulated
instant (the twin in lockstep). Here one episode runs both ways and the bridge's decision
records are compared tick by tick.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from visuomotor.policy.backends import open_backend
from visuomotor.policy.bundle import load_bundle
from visuomotor.policy.node_schema import POLICY_NODE_PARAMS, backend_options
from visuomotor.policy.runtime import PolicyRuntime
from visuomotor.ros.demo_deploy import run_deploy_stage
from visuomotor.ros.policy_node import resolve_model
from visuomotor.sim.config import load_scene
from visuomotor.sim.policy_rollout import RolloutSettings, deploy_bridge, rollout
from visuomotor.sim.task import PickPlaceTask
from visuomotor.sim.twin import Twin
from visuomotor.training.demo_policy import EVAL_SEEDS, NAME, evaluate
from visuomotor.training.demos import DEMO_SCENE

SEED = EVAL_SEEDS[1]
COMPARED_S = 2.0  # the first seconds: later, float noise of the order of 1e-7 grows


def _in_process_decisions() -> dict[float, dict[str, object]]:
    bundle = load_bundle(resolve_model(NAME))
    defaults = {p.name: p.default for p in POLICY_NODE_PARAMS}
    backend, _ = open_backend(bundle, ['onnxruntime', 'torch'], backend_options(defaults))
    runtime = PolicyRuntime(bundle, backend)
    config = load_scene(DEMO_SCENE)
    twin = Twin(config)
    bridge = deploy_bridge('fr3')
    decisions: dict[float, dict[str, object]] = {}
    tick = bridge.tick

    def recording_tick(now: float):  # type: ignore[no-untyped-def]
        setpoint, decision = tick(now)
        if decision is not None and now <= COMPARED_S + 1e-9:
            decisions[round(now, 3)] = decision.as_dict()
        return setpoint, decision
    bridge.tick = recording_tick  # type: ignore[method-assign]
    try:
        rollout(twin, PickPlaceTask(config.task), runtime, SEED,
                RolloutSettings(max_duration_s=COMPARED_S + 0.05), bridge=bridge)
    finally:
        twin.close()
    return decisions


def test_the_bridge_decides_the_same_at_every_tick_in_process_and_through_ros(
        tmp_path: Path, verified_rig: Path) -> None:
    log = tmp_path / 'decisions.jsonl'
    reference = evaluate(load_bundle(resolve_model(NAME)), [SEED],
                         RolloutSettings(max_duration_s=COMPARED_S + 0.5))
    run_deploy_stage(tmp_path / 'deploy', [SEED], report=print, calibration=str(verified_rig),
                     in_process=reference, max_episode_s=COMPARED_S + 0.5, decision_log=log)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    # The graph starts one seed before and resets into the episode: its records restart there.
    restart = max(i for i in range(1, len(records)) if records[i]['t'] < records[i - 1]['t'])
    ros = {round(r['t'], 3): r for r in records[restart:] if r['t'] <= COMPARED_S + 1e-9}
    local = _in_process_decisions()
    assert min(ros) == min(local) == 0.01, 'armed at the first joint state, both ways'
    common = sorted(set(ros) & set(local))
    assert len(common) >= 0.95 * len(local), (len(common), len(local))
    moving = 0
    for t in common:
        a, b = local[t], ros[t]
        assert a['state'] == b['state'], (t, a, b)
        assert a['reasons'] == b['reasons'], (t, a, b)
        assert np.allclose(a['limited'], b['limited'], atol=1e-4), (t, a, b)  # type: ignore[arg-type]
        moving += a['state'] == 'armed'
    assert moving > 100  # the policy moved the arm for most of those seconds
