"""Fault injection on the twin through the real safety bridge node, over DDS, on sim time."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Time
from rclpy.parameter import Parameter

from support import REPO
from visuomotor.robots.kinematics import TcpKinematics, tcp_pose
from visuomotor.robots.transforms import quat_from_matrix
from visuomotor.ros.bridge_node import main as bridge_main
from visuomotor.ros.controller_output import setpoint_to_pose
from visuomotor.ros.twin_graph import BridgeHarness
from visuomotor.safety.bridge import Setpoint
from visuomotor.safety.profile import load_safety_profile


@pytest.fixture
def graph(ros_context):
    harness = BridgeHarness(ros_context)
    yield harness
    harness.close()


def _moving(decisions):
    return [d for d in decisions if d['state'] in ('armed', 'stopping')]


def _assert_within_caps(harness, decisions):
    """Every command sent moved each joint at most v_cap * dt from the previous one."""
    lim = harness.limits
    dt = harness.bridge.bridge.timing.control_period_s
    sent = np.array([d['limited'] for d in decisions if d['limited'] is not None])
    assert np.all(np.isfinite(sent))
    steps = np.abs(np.diff(sent, axis=0))
    assert np.all(steps <= lim.velocity_rad_s * dt * (1 + 1e-6) + 1e-6), steps.max(axis=0)
    assert np.all(sent >= lim.lower_rad - 1e-6) and np.all(sent <= lim.upper_rad + 1e-6)


def _controller_values(harness):
    """Every number the twin's trajectory controller received from the bridge."""
    values = [v for msg in harness.client.record.controller for p in msg.points
              for v in (*p.positions, *p.velocities)]
    return np.array(values)


def test_bridge_arms_at_the_measured_pose_and_follows_a_policy_within_the_caps(graph):
    """Arming holds the measured pose; streamed chunks move the arm there under the caps."""
    graph.arm()
    assert graph.client.state == 'holding'
    first = next(d for d in graph.client.record.decisions if d['limited'] is not None)
    np.testing.assert_allclose(first['limited'], graph.client.measured(), atol=2e-3)
    target = graph.home + np.array([0.15, -0.1, 0.1, 0.1, 0.0, 0.1, -0.15])
    graph.run_for(3.0, graph.stream(target))
    np.testing.assert_allclose(graph.client.measured(), target, atol=0.02)
    _assert_within_caps(graph, graph.client.record.decisions)
    # The measured joint speeds stayed under the commissioning cap as well.
    speeds = np.array([v for _, _, v in graph.client.record.joint_states])
    assert np.all(np.abs(speeds) <= graph.limits.velocity_rad_s * 1.1)


def test_nan_and_inf_commands_never_reach_the_controller_and_three_in_a_row_fault(graph):
    """NaN/Inf chunks are rejected; one valid chunk resets the count; three in a row latch."""
    graph.arm()
    bad = graph.home.copy()
    for value in (math.nan, math.inf):
        bad[2] = value
        graph.client.send([(0.1, bad)])
        graph.run_for(0.05)
    graph.client.send([(0.1, graph.home)])
    graph.run_for(0.05)
    assert graph.client.state in ('holding', 'armed')
    for value in (math.nan, -math.inf, math.nan):
        bad[4] = value
        graph.client.send([(0.1, bad)])
        graph.run_for(0.05)
    assert graph.wait_for_state('fault')
    graph.run_for(0.5)
    assert np.all(np.isfinite(_controller_values(graph)))
    counters = graph.bridge.bridge.counters.values
    assert counters['rejected_non_finite'] == 5


def test_a_2_5_rad_step_is_spread_over_many_ticks_within_the_velocity_cap(graph):
    """A +2.5 rad jump on one joint is never forwarded as a jump (UR target_outside_limits)."""
    graph.arm()
    target = graph.home.copy()
    target[0] += 2.5
    start = graph.client.measured().copy()
    graph.run_for(1.0, graph.stream(target, horizon=1))
    decisions = _moving(graph.client.record.decisions)
    assert decisions, 'the bridge never moved'
    _assert_within_caps(graph, decisions)
    travelled = graph.client.measured()[0] - start[0]
    assert 0.05 < travelled < 0.5 * 1.0 + 0.05  # moving, at most v_cap for 1 s
    assert graph.sim.rejected_commands == 0


def test_stale_and_reordered_chunks_are_not_executed(graph):
    """A chunk stamped 0.5 s ago and one older than the last accepted are both dropped."""
    graph.arm()
    graph.run_for(0.6)  # so that "0.5 s ago" is a valid stamp
    now = graph.client.now()
    away = graph.home + 0.2
    graph.client.send([(0.6, away), (0.7, away)], stamp_s=now - 0.5)
    graph.run_for(0.3)
    counters = graph.bridge.bridge.counters.values
    assert counters['dropped_stale'] == 1
    assert graph.client.state == 'holding'
    # A fresh chunk holding still, then one stamped just before it toward `away`.
    now = graph.client.now()
    graph.client.send([(0.1, graph.home), (0.2, graph.home)], stamp_s=now)
    graph.run_for(0.02)
    graph.client.send([(0.1, away), (0.2, away)], stamp_s=now - 0.01)
    graph.run_for(0.3)
    assert counters['dropped_not_newer'] == 1
    np.testing.assert_allclose(graph.client.measured(), graph.home, atol=0.01)


def test_a_stalled_policy_starts_a_stop_within_the_watchdog_period_plus_one_tick(graph):
    """The policy goes silent mid-motion: a controlled stop starts in time, then holding."""
    graph.arm()
    target = graph.home + np.array([0.4, 0, 0, 0, 0, 0, 0])
    graph.run_for(0.6, graph.stream(target))
    assert graph.client.state == 'armed'
    graph.client.record.decisions.clear()
    assert graph.wait_for_state('holding', 3.0)
    timing = graph.bridge.bridge.timing
    decisions = graph.client.record.decisions
    first_stop = next(d for d in decisions if d['state'] == 'stopping')
    assert first_stop['since_command'] <= timing.watchdog_s + timing.control_period_s + 1e-6
    # Deceleration along the stop stays within a_stop (finite differences of the commands).
    stop = [d['limited'] for d in decisions
            if d['state'] == 'stopping' and 'hold_measured' not in d['reasons']]
    velocity = np.diff(np.array(stop), axis=0) / timing.control_period_s
    decel = np.abs(np.diff(velocity, axis=0)) / timing.control_period_s
    assert decel.max() <= graph.limits.stop_acceleration_rad_s2 * 1.05 + 1e-6
    graph.run_for(0.3)
    assert np.all(np.abs(graph.client.record.joint_states[-1][2]) < 0.02)


def test_frozen_joint_states_fault_then_acknowledge_resumes_without_a_jump(graph):
    """Frozen /joint_states: stop + fault; after acknowledge the first command = measured."""
    graph.arm()
    target = graph.home + np.array([0, 0.3, 0, 0, 0, 0, 0])
    policy = graph.stream(target)
    graph.run_for(0.4, policy)
    graph.client.relay_mode = 'frozen'
    assert graph.wait_for_state('fault', 0.5, policy)
    reason = graph.bridge.bridge.fault_reason
    assert 'joint states' in reason
    graph.run_for(1.0, policy)  # commands keep coming; none is executed
    assert graph.call('arm').success is False
    graph.client.relay_mode = 'live'
    graph.run_for(0.2)
    graph.client.record.decisions.clear()
    response = graph.call('acknowledge')
    assert response.success, response.message
    graph.run_for(0.05)
    held = next(d for d in graph.client.record.decisions if d['limited'] is not None)
    assert held['reasons'] == [] and held['state'] == 'holding'
    np.testing.assert_allclose(held['limited'], graph.client.measured(), atol=2e-3)
    graph.run_for(1.5, policy)
    assert graph.client.state == 'armed'
    _assert_within_caps(graph, graph.client.record.decisions)
    np.testing.assert_allclose(graph.client.measured()[1], target[1], atol=0.05)


def test_the_bridge_refuses_to_start_with_limits_above_the_vendor_table(tmp_path, capsys):
    """A tier faster than the vendor allows: exit code 2 and a message naming the value."""
    data = yaml.safe_load((REPO / 'config' / 'robots' / 'fr3.yaml').read_text())
    data['safety']['tiers']['nominal']['velocity_rad_s'] = 3.0
    path = tmp_path / 'fast_fr3.yaml'
    path.write_text(yaml.safe_dump(data))
    code = bridge_main(['safety_bridge', '--ros-args', '-p', f'robot:={path}',
                        '-p', 'tier:=nominal', '-p', 'workspace:=twin_fr3'])
    assert code == 2
    error = capsys.readouterr().err
    assert 'refusing to start' in error and 'velocity_rad_s' in error
    assert '3 rad/s for fr3_joint1 is above the vendor limit 2' in error


def test_without_a_workspace_box_arming_is_refused_over_the_service(ros_context):
    """No default box: the node starts, says so, and ~/arm answers with the reason."""
    harness = BridgeHarness(ros_context, workspace='')
    try:
        harness.run_for(0.3)
        response = harness.call('arm')
        assert not response.success and 'workspace' in response.message
        assert harness.client.state == 'disarmed'
    finally:
        harness.close()


def test_the_forward_position_interface_moves_the_ur5e_twin_within_the_caps(ros_context):
    """interface:=forward_position streams limited positions the twin's position controller
    follows (UR profile: no Franka rate-limiter requirement)."""
    harness = BridgeHarness(ros_context, scene='ur5e', workspace='twin_ur5e',
                            bridge_params=[Parameter('interface', value='forward_position')])
    try:
        harness.arm()
        target = harness.home + np.array([0.2, -0.15, 0.15, 0.1, -0.1, 0.2])
        harness.run_for(2.5, harness.stream(target))
        assert harness.sim.twin.controller.mode == 'position'
        assert harness.client.state == 'armed'
        np.testing.assert_allclose(harness.client.measured(), target, atol=0.03)
        _assert_within_caps(harness, harness.client.record.decisions)
    finally:
        harness.close()


def test_the_cartesian_interface_sends_the_tcp_pose_of_the_limited_command():
    """interface:=cartesian_pose: the PoseStamped is FK of the setpoint in the base frame."""
    profile = load_safety_profile('fr3', interface='cartesian_pose')
    kinematics = TcpKinematics(profile.robot)
    q = np.array(profile.robot.home_rad) + 0.1
    msg = setpoint_to_pose(Setpoint(q, np.zeros_like(q), 0.01), kinematics,
                           profile.driver.base_frame, Time(sec=3))
    expected = tcp_pose(profile.robot, q)
    assert msg.header.frame_id == 'fr3_link0' and msg.header.stamp.sec == 3
    position = [msg.pose.position.x, msg.pose.position.y, msg.pose.position.z]
    np.testing.assert_allclose(position, expected[:3, 3], atol=1e-12)
    o = msg.pose.orientation
    np.testing.assert_allclose(np.abs(np.dot([o.w, o.x, o.y, o.z],
                                             quat_from_matrix(expected))), 1.0, atol=1e-12)
    assert profile.command_topic == '/cartesian_impedance_controller/target_pose'


def test_the_bridge_refuses_a_rate_faster_than_the_robot_controller(capsys):
    """UR5 (CB3) controllers run at 125 Hz: a 200 Hz bridge is refused, naming the value."""
    code = bridge_main(['safety_bridge', '--ros-args', '-p', 'robot:=ur5',
                        '-p', 'control_rate_hz:=200.0'])
    assert code == 2
    error = capsys.readouterr().err
    assert 'control_rate_hz' in error and '125 Hz' in error
