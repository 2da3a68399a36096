"""`visuomotor launch` as a user runs it: it follows the graph and ends loudly.

A node that refuses to start, or a safety bridge that latches a fault, ends the run with a
non-zero exit code and the reason on the console (before: "started X" and exit 0).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.node import Node
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from support import REPO
from visuomotor.robots.description import load_robot
from visuomotor.ros.runner import EXIT_FAULT


def _launch(args: list[str], log_dir: Path, domain: int) -> subprocess.Popen[str]:
    env = {**os.environ, 'ROS_DOMAIN_ID': str(domain),
           'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST', 'PYTHONUNBUFFERED': '1'}
    return subprocess.Popen([sys.executable, '-m', 'visuomotor.cli', 'launch', *args,
                             '--log-dir', str(log_dir)], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


class _Output:
    """The runner's console, read on a thread so the test can wait for a line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip())

    def wait_for(self, text: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            time.sleep(0.05)
        return False

    @property
    def text(self) -> str:
        return '\n'.join(self.lines)


def test_a_node_refusing_to_start_ends_the_run_with_its_code_and_reason(tmp_path: Path) -> None:
    """The policy node refuses at the calibration gate (no verification record)."""
    calibration = tmp_path / 'no_verification'
    process = _launch(['deploy', 'robot:=sim', 'policy:=pick_place_fr3',
                       f'calibration:={calibration}'], tmp_path / 'logs', 71)
    output = _Output(process)
    code = process.wait(timeout=120)
    assert code == 2, output.text
    assert 'policy exited with code 2' in output.text
    assert 'refusing to start' in output.text and 'calibration' in output.text
    assert 'graph on ROS domain 71 (from ROS_DOMAIN_ID)' in output.text


def test_a_latched_fault_ends_the_run_with_exit_3_and_the_reason(tmp_path: Path) -> None:
    """Three NaN commands in a row latch a fault; the runner stops the graph and says why."""
    domain = 72
    process = _launch(['record', 'robot:=sim', 'teleop:=none', 'arm_on_start:=true',
                       f'dataset:={tmp_path / "ds"}', 'calibration_override:=runner test'],
                      tmp_path / 'logs', domain)
    output = _Output(process)
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    node = Node('nan_policy', context=context)
    try:
        assert output.wait_for('safety bridge: disarmed -> holding', 90.0), output.text
        publisher = node.create_publisher(JointTrajectory, '/safety_bridge/command', 10)
        robot = load_robot('fr3')
        deadline = time.monotonic() + 30.0
        while process.poll() is None and time.monotonic() < deadline:
            msg = JointTrajectory(joint_names=list(robot.joint_names))
            msg.header.stamp = node.get_clock().now().to_msg()
            msg.points = [JointTrajectoryPoint(positions=[math.nan] * robot.dof)]
            msg.points[0].time_from_start.nanosec = 100_000_000
            publisher.publish(msg)
            time.sleep(0.1)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
        node.destroy_node()
        rclpy.shutdown(context=context)
    assert code == EXIT_FAULT, output.text
    assert 'safety bridge: FAULT latched' in output.text
    assert 'consecutive invalid commands' in output.text
    assert f'stopping the graph (exit {EXIT_FAULT})' in output.text
