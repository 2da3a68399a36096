"""Faults on the whole deploy graph on the twin: processes over DDS, started by the runner.

The graph is deploy_graph(robot:=sim) with the bundled policy, run by the launch-free runner
(one process per node, as `ros2 launch` would). A supervisor node in the test process arms the
bridge and watches the bridge's decisions, its state, the policy's latency and /diagnostics.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.context import Context
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from visuomotor.paths import share_dir
from visuomotor.ros.demo_deploy import GraphSession, Supervisor
from visuomotor.ros.graph import deploy_graph
from visuomotor.ros.runner import GraphProcesses
from visuomotor.sim.calibration_capture import verify_on_twin
from visuomotor.sim.config import load_scene
from visuomotor.training.demos import DEMO_SCENE

MODEL = share_dir() / 'models' / 'pick_place_fr3'
WATCHDOG_S = 0.15  # the bridge's default (safety_anchors 7.2)
PERIOD_S = 0.01    # bridge tick at 100 Hz

pytestmark = pytest.mark.skipif(not (MODEL / 'policy.onnx').is_file(),
                                reason='the bundled model is missing; run make train-demo')


class Monitor(Supervisor):
    """The demo supervisor plus decisions, diagnostics, arm speed and a camera relay."""

    def __init__(self, context: Context) -> None:
        super().__init__(context, load_scene(DEMO_SCENE))
        self.decisions: list[dict[str, object]] = []
        self.policy_status: list[tuple[float, bytes, str]] = []
        self.speed = 0.0
        self.freeze = False
        self._frozen: Image | None = None
        self.create_subscription(String, '/safety_bridge/decisions',
                                 lambda m: self.decisions.append(json.loads(m.data)), 500)
        self.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        self.create_subscription(JointState, '/joint_states', self._on_speed, 50)
        self.relay = self.create_publisher(Image, '/relay/scene_camera/image_raw', 10)
        self.create_subscription(Image, '/scene_camera/image_raw', self._relay, 10)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == 'visuomotor: policy':
                self.policy_status.append((self.now(), status.level, status.message))

    def _on_speed(self, msg: JointState) -> None:
        arm = [msg.velocity[msg.name.index(j)] for j in self.robot.joint_names]
        self.speed = float(np.max(np.abs(arm)))

    def _relay(self, msg: Image) -> None:
        if self.freeze and self._frozen is not None:
            frozen = self._frozen  # same pixels, new stamp: a driver stuck on one frame
            frozen.header.stamp = msg.header.stamp
            self.relay.publish(frozen)
            return
        self._frozen = msg
        self.relay.publish(msg)


@pytest.fixture
def graph(tmp_path: Path) -> Iterator[tuple[GraphSession, Monitor, GraphProcesses]]:
    # The session starts as on a real rig: the cameras verified first (the gate checks).
    rig = tmp_path / 'calibration' / 'twin_fr3'
    shutil.copytree(share_dir() / 'calibration' / 'twin_fr3', rig,
                    ignore=shutil.ignore_patterns('verification'))
    assert verify_on_twin(rig, DEMO_SCENE, datetime.datetime.now(datetime.UTC)).passed
    nodes = deploy_graph({'robot': 'sim', 'scene': DEMO_SCENE, 'policy': str(MODEL),
                          'seed': '5000', 'backend': 'onnxruntime', 'calibration': str(rig)})
    # The policy reads the scene camera through the monitor's relay (to freeze it).
    nodes = [dataclasses.replace(n, parameters={
        **n.parameters, 'camera_topics': 'scene_camera=/relay/scene_camera/image_raw'})
        if n.executable == 'policy_node' else n for n in nodes]
    context = Context()
    rclpy.init(context=context)
    processes = GraphProcesses(nodes, tmp_path / 'logs')
    monitor = Monitor(context)
    try:
        processes.start()
        session = GraphSession(monitor, processes)
        session.spin_until(lambda: bool(monitor.latency) and monitor.bridge_state != '', 120.0,
                           'the first chunk')
        assert session.call('arm').success
        session.spin_until(lambda: monitor.speed > 0.05, 60.0, 'the arm to move')
        yield session, monitor, processes
    finally:
        processes.close()
        monitor.destroy_node()
        rclpy.shutdown(context=context)


def test_killing_the_policy_stops_the_arm_and_a_restart_waits_for_acknowledge(
        graph: tuple[GraphSession, Monitor, GraphProcesses]) -> None:
    session, monitor, processes = graph
    before = len(monitor.decisions)
    processes.kill('policy')
    session.spin_until(lambda: monitor.bridge_state.startswith('holding'), 60.0,
                       'the bridge to stop the arm')
    stop = next(d for d in monitor.decisions[before:] if d['state'] == 'stopping')
    assert stop['since_command'] is not None
    assert float(stop['since_command']) <= WATCHDOG_S + 2 * PERIOD_S  # type: ignore[arg-type]
    session.wait_sim(0.5)
    assert monitor.speed < 0.01  # at rest

    processes.start('policy')  # a new process: a new publisher on the command topic
    session.spin_until(lambda: monitor.bridge_state.startswith('fault'), 120.0,
                       'the bridge to refuse the restarted policy')
    chunks = len(monitor.latency)
    session.spin_until(lambda: len(monitor.latency) > chunks + 5, 60.0,
                       'the restarted policy to send chunks')
    peak = [0.0]
    end = monitor.now() + 2.0

    def watch() -> bool:
        peak[0] = max(peak[0], monitor.speed)
        return monitor.now() >= end

    session.spin_until(watch, 60.0, 'two simulated seconds with the fault latched')
    assert peak[0] < 0.01, 'the arm moved before the operator acknowledged'

    assert session.call('acknowledge').success
    session.spin_until(lambda: monitor.speed > 0.05, 60.0, 'motion after acknowledge')


def test_a_frozen_camera_pauses_the_policy_which_says_why(
        graph: tuple[GraphSession, Monitor, GraphProcesses]) -> None:
    session, monitor, _ = graph
    monitor.freeze = True
    frozen_at = monitor.now()
    session.spin_until(lambda: any(t > frozen_at and level == DiagnosticStatus.ERROR
                                   and 'scene_camera' in text and 'frozen' in text
                                   for t, level, text in monitor.policy_status), 60.0,
                       'the policy to report the frozen camera')
    session.wait_sim(0.5)
    chunks = len(monitor.latency)
    # The plan runs out and the watchdog stops the arm (a loaded machine may also see a
    # joint-state fault first: either way the arm stops).
    session.spin_until(lambda: monitor.bridge_state.startswith(('holding', 'fault')), 60.0,
                       'the arm to stop when the plan ran out')
    session.wait_sim(1.0)
    assert len(monitor.latency) == chunks, 'the policy kept inferring on a frozen camera'
    assert monitor.speed < 0.01
    monitor.freeze = False
    session.spin_until(lambda: len(monitor.latency) > chunks, 60.0, 'the policy to resume')
