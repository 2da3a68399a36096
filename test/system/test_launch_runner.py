"""`visuomotor launch` as a user runs it: it follows the graph and ends loudly.

A node that refuses to start, or a safety bridge that latches a fault, ends the run with a
non-zero exit code and the reason on the console (before: "started X" and exit 0).
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from pathlib import Path

import rclpy
from rclpy.context import Context
from rclpy.node import Node
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from support import REPO, FollowedProcess
from visuomotor.robots.description import load_robot
from visuomotor.ros.runner import EXIT_FAULT


def _launch(args: list[str], log_dir: Path, domain: int) -> FollowedProcess:
    env = {**os.environ, 'ROS_DOMAIN_ID': str(domain),
           'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    return FollowedProcess([sys.executable, '-m', 'visuomotor.cli', 'launch', *args,
                            '--log-dir', str(log_dir)], env, REPO)


def test_a_node_refusing_to_start_ends_the_run_with_its_code_and_reason(tmp_path: Path) -> None:
    """The policy node refuses at the calibration gate (no verification record)."""
    calibration = tmp_path / 'no_verification'
    run = _launch(['deploy', 'robot:=sim', 'policy:=pick_place_fr3',
                   f'calibration:={calibration}'], tmp_path / 'logs', 71)
    code = run.finish(120)
    assert code == 2, run.output
    assert 'policy exited with code 2' in run.output
    assert 'refusing to start' in run.output and 'calibration' in run.output
    assert 'graph on ROS domain 71 (from ROS_DOMAIN_ID)' in run.output


def test_a_latched_fault_ends_the_run_with_exit_3_and_the_reason(tmp_path: Path) -> None:
    """Three NaN commands in a row latch a fault; the runner stops the graph and says why."""
    domain = 72
    run = _launch(['record', 'robot:=sim', 'teleop:=none', 'arm_on_start:=true',
                   f'dataset:={tmp_path / "ds"}', 'calibration_override:=runner test'],
                  tmp_path / 'logs', domain)
    process = run.process
    context = Context()
    rclpy.init(context=context, domain_id=domain)
    node = Node('nan_policy', context=context)
    try:
        assert run.wait_for(r'safety bridge: .*-> holding', 90.0), run.output  # armed
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
    assert code == EXIT_FAULT, run.output
    assert 'safety bridge: FAULT latched' in run.output
    assert 'consecutive invalid commands' in run.output
    assert f'stopping the graph (exit {EXIT_FAULT})' in run.output
