"""Safety profiles and workspace boxes: what ships loads, and what is unsafe is refused.

What a user configuring a robot checks: every shipped robot loads in both tiers with the
commissioning tier as the default; a tier above the vendor table (minus its margin), a
slowdown zone too short to brake in, an unknown key or a driver setting outside the vendor's
range is refused with a message naming the field path, the joint and the value; there is no
default workspace box.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from support import REPO
from visuomotor.robots.kinematics import TcpKinematics
from visuomotor.safety.profile import (
    TIERS,
    ProfileError,
    load_safety_profile,
    safety_profile_from_dict,
)
from visuomotor.safety.workspace import WorkspaceError, load_workspace, workspace_from_dict

ROBOTS = ('fr3', 'panda', 'ur5e', 'ur5')


def robot_yaml(robot: str) -> dict[str, Any]:
    data = yaml.safe_load((REPO / 'config' / 'robots' / f'{robot}.yaml').read_text())
    assert isinstance(data, dict)
    return data


FR3_YAML = robot_yaml('fr3')
UR5E_YAML = robot_yaml('ur5e')


def fr3() -> dict[str, Any]:
    """A fresh copy of fr3.yaml to modify."""
    return copy.deepcopy(FR3_YAML)


def tier_block(data: dict[str, Any], tier: str = 'nominal') -> dict[str, Any]:
    block = data['safety']['tiers'][tier]
    assert isinstance(block, dict)
    return block


def refused(data: object, tier: str = 'nominal', interface: str = '') -> str:
    with pytest.raises(ProfileError) as error:
        safety_profile_from_dict(data, tier, interface)
    return str(error.value)


# -- what ships --------------------------------------------------------------------------------


@pytest.mark.parametrize('tier', TIERS)
@pytest.mark.parametrize('robot', ROBOTS)
def test_every_shipped_robot_loads_in_both_tiers(robot: str, tier: str) -> None:
    """Each robot file loads in each tier, inside the vendor table minus its margin."""
    profile = load_safety_profile(robot, tier)
    lim, vendor = profile.limits, profile.vendor
    margin = 1.0 - robot_yaml(robot)['safety']['vendor_margin']
    assert profile.robot.name == robot
    assert lim.tier == tier
    assert np.all(lim.velocity_rad_s <= vendor.velocity_rad_s * margin + 1e-12)
    assert np.all(lim.acceleration_rad_s2 <= vendor.acceleration_rad_s2 * margin + 1e-12)
    assert np.all(lim.stop_acceleration_rad_s2 <= vendor.acceleration_rad_s2 * margin + 1e-12)
    assert lim.tcp_linear_m_s <= vendor.tcp_linear_m_s * margin + 1e-12
    assert lim.tcp_angular_rad_s <= vendor.tcp_angular_rad_s * margin + 1e-12
    # Envelope inside the vendor range, faults between the two, room for two slowdown zones.
    assert np.all(vendor.lower_rad < lim.fault_lower_rad)
    assert np.all(lim.fault_lower_rad < lim.lower_rad)
    assert np.all(lim.upper_rad < lim.fault_upper_rad)
    assert np.all(lim.fault_upper_rad < vendor.upper_rad)
    assert np.all(lim.upper_rad - lim.lower_rad >= 2 * lim.slowdown_zone_rad)
    home = np.array(profile.robot.home_rad)
    assert np.all((lim.lower_rad <= home) & (home <= lim.upper_rad))
    assert profile.interface == 'joint_trajectory'
    assert profile.command_topic.endswith('/joint_trajectory')


@pytest.mark.parametrize('robot', ROBOTS)
def test_commissioning_is_the_default_tier(robot: str) -> None:
    """Without a tier, the reduced commissioning caps apply."""
    assert load_safety_profile(robot).limits.tier == 'commissioning'
    assert safety_profile_from_dict(robot_yaml(robot)).limits.tier == 'commissioning'
    default = load_safety_profile(robot).limits
    nominal = load_safety_profile(robot, 'nominal').limits
    assert np.all(default.velocity_rad_s <= nominal.velocity_rad_s)
    assert default.tcp_linear_m_s < nominal.tcp_linear_m_s


@pytest.mark.parametrize('tier', TIERS)
def test_panda_warns_that_franka_ros2_does_not_support_it(tier: str) -> None:
    """Panda loads, with a warning that franka_ros2 does not officially support it."""
    profile = load_safety_profile('panda', tier)
    assert not profile.driver.officially_supported
    assert len(profile.warnings) == 1
    assert 'panda' in profile.warnings[0] and 'franka_ros2' in profile.warnings[0]
    for robot in ('fr3', 'ur5e', 'ur5'):
        assert load_safety_profile(robot, tier).warnings == ()


def test_fr3_commissioning_caps_are_half_a_radian_and_ten_centimetres() -> None:
    """FR3 commissioning: every joint at most 0.5 rad/s, the TCP at most 0.10 m/s."""
    lim = load_safety_profile('fr3').limits
    np.testing.assert_array_equal(lim.velocity_rad_s, np.full(7, 0.5))
    assert lim.tcp_linear_m_s == 0.10


@pytest.mark.parametrize('robot', ROBOTS)
def test_every_commissioning_tier_has_the_same_reduced_caps(robot: str) -> None:
    """Every robot's commissioning tier caps joints at 0.5 rad/s and the TCP at 0.10 m/s."""
    lim = load_safety_profile(robot, 'commissioning').limits
    assert np.all(lim.velocity_rad_s == 0.5)
    assert lim.tcp_linear_m_s == 0.10


def test_ur_commissioning_keeps_joints_near_home() -> None:
    """UR5e commissioning clamps every joint to home +- 1.5 rad."""
    profile = load_safety_profile('ur5e')
    home = np.array(profile.robot.home_rad)
    assert np.all(profile.limits.lower_rad >= home - 1.5 - 1e-12)
    assert np.all(profile.limits.upper_rad <= home + 1.5 + 1e-12)


# -- unsafe tiers are refused, naming what to change -------------------------------------------


def test_velocity_above_the_vendor_margin_is_refused() -> None:
    """A joint velocity under the vendor limit but inside its margin is refused by name."""
    data = fr3()
    velocity = list(tier_block(data)['velocity_rad_s'])
    velocity[1] = 0.95  # fr3_joint2: vendor 1.0 rad/s, at most 0.9 with the 10 % margin
    tier_block(data)['velocity_rad_s'] = velocity
    message = refused(data)
    assert message.startswith('safety.tiers.nominal.velocity_rad_s:')
    assert 'fr3_joint2' in message and '0.95' in message and '0.9' in message
    velocity[1] = 0.9
    tier_block(data)['velocity_rad_s'] = velocity
    assert safety_profile_from_dict(data, 'nominal').limits.velocity_rad_s[1] == 0.9


def test_commissioning_velocity_above_the_vendor_margin_is_refused() -> None:
    """The commissioning tier is checked the same way (a scalar cap names the slowest joint)."""
    data = fr3()
    tier_block(data, 'commissioning')['velocity_rad_s'] = 0.95
    message = refused(data, 'commissioning')
    assert message.startswith('safety.tiers.commissioning.velocity_rad_s:')
    assert 'fr3_joint2' in message and '0.95' in message


@pytest.mark.parametrize(('key', 'value', 'names'), [
    ('acceleration_rad_s2', [2.5, 2.5, 2.5, 2.5, 9.5, 2.5, 2.5], ('fr3_joint5', '9.5')),
    ('stop_acceleration_rad_s2', 9.5, ('fr3_joint1', '9.5')),
    ('tcp_linear_m_s', 2.8, ('the TCP', '2.8')),
    ('tcp_angular_rad_s', 2.3, ('the TCP', '2.3')),
])
def test_cap_above_the_vendor_margin_is_refused(key: str, value: object,
                                                names: tuple[str, ...]) -> None:
    """Accelerations, the stop deceleration and TCP caps above vendor - margin are refused."""
    data = fr3()
    tier_block(data)[key] = value
    message = refused(data)
    assert message.startswith(f'safety.tiers.nominal.{key}:')
    for name in names:
        assert name in message
    assert 'vendor limit' in message


def test_slowdown_zone_too_short_to_brake_is_refused() -> None:
    """A slowdown zone shorter than v^2 / a is refused, naming the joint and the length."""
    data = fr3()
    # Nominal FR3: 0.8 rad/s within 2.5 rad/s^2 needs 0.256 rad.
    tier_block(data)['slowdown_zone_rad'] = 0.25
    message = refused(data)
    assert message.startswith('safety.tiers.nominal.slowdown_zone_rad:')
    assert 'fr3_joint1' in message and '0.25' in message and '0.256' in message
    tier_block(data)['slowdown_zone_rad'] = 0.26
    assert safety_profile_from_dict(data, 'nominal').limits.slowdown_zone_rad == 0.26


def test_hard_margin_leaving_no_room_is_refused() -> None:
    """A hard margin that leaves less than two slowdown zones of envelope is refused."""
    data = fr3()
    tier_block(data)['hard_margin_rad'] = 0.8  # fr3_joint4 spans 2.30 rad
    message = refused(data)
    assert message.startswith('safety.tiers.nominal.hard_margin_rad:')
    assert 'fr3_joint4' in message


def test_missing_safety_block_is_refused() -> None:
    """A robot file without a safety block cannot be used by the bridge."""
    data = fr3()
    del data['safety']
    message = refused(data)
    assert message.startswith('safety:') and 'no safety block' in message


def test_unknown_key_in_a_tier_is_refused() -> None:
    """A misspelt tier key is refused (not silently ignored), listing the allowed keys."""
    data = fr3()
    tier_block(data)['velocity_rads'] = 0.3
    message = refused(data)
    assert message.startswith('safety.tiers.nominal:')
    assert 'velocity_rads' in message and 'velocity_rad_s' in message


def test_missing_tier_value_is_refused() -> None:
    """A tier without its tracking bound is refused, naming the field."""
    data = fr3()
    del tier_block(data, 'commissioning')['tracking_error_rad']
    message = refused(data, 'commissioning')
    assert 'safety.tiers.commissioning.tracking_error_rad' in message and 'missing' in message


def test_unknown_tier_is_refused() -> None:
    """Only commissioning and nominal exist."""
    with pytest.raises(ProfileError) as error:
        load_safety_profile('fr3', 'fast')
    assert "'fast'" in str(error.value) and 'commissioning' in str(error.value)


@pytest.mark.parametrize(('key', 'bad', 'good'), [
    ('robot_receive_timeout_s', 0.5, 0.2),
    ('servoj_gain', 3000, 2000),
    ('servoj_lookahead_s', 0.5, 0.2),
])
def test_ur_driver_setting_outside_the_vendor_range_is_refused(key: str, bad: float,
                                                                good: float) -> None:
    """UR receive timeout above 0.2 s and servoj settings outside UR's ranges are refused."""
    data = copy.deepcopy(UR5E_YAML)
    data['safety']['driver'][key] = bad
    message = refused(data, 'commissioning')
    assert message.startswith(f'safety.driver.{key}:')
    assert str(float(bad)) in message or str(bad) in message
    data['safety']['driver'][key] = good
    safety_profile_from_dict(data, 'commissioning')


def test_forward_position_on_franka_needs_the_rate_limiter() -> None:
    """The forward position interface on Franka is refused until position_rate_limiter."""
    for via_file in (False, True):
        data = fr3()
        interface = 'forward_position'
        if via_file:
            data['safety']['interface'], interface = interface, ''
        message = refused(data, 'commissioning', interface)
        assert message.startswith('safety.driver.position_rate_limiter:')
        data['safety']['driver']['position_rate_limiter'] = True
        profile = safety_profile_from_dict(data, 'commissioning', interface)
        assert profile.interface == 'forward_position'
        assert profile.command_topic == '/forward_position_controller/commands'


def test_errors_from_a_file_name_the_file_and_the_field(tmp_path: Path) -> None:
    """A robot file given by path that is unsafe names the file and the field path."""
    data = fr3()
    tier_block(data)['tcp_linear_m_s'] = 2.8
    path = tmp_path / 'fr3_fast.yaml'
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError) as error:
        load_safety_profile(path, 'nominal')
    message = str(error.value)
    assert str(path) in message and 'safety.tiers.nominal.tcp_linear_m_s' in message
    assert '2.8' in message
    assert load_safety_profile(path, 'commissioning').limits.tcp_linear_m_s == 0.10


# -- workspace boxes ---------------------------------------------------------------------------


def test_there_is_no_default_workspace() -> None:
    """An empty workspace name is refused with a message saying there is no default."""
    with pytest.raises(WorkspaceError) as error:
        load_workspace('')
    assert 'no default' in str(error.value)


def test_unknown_workspace_lists_the_known_ones() -> None:
    """An unknown workspace name is refused, listing the shipped boxes."""
    with pytest.raises(WorkspaceError) as error:
        load_workspace('kitchen')
    message = str(error.value)
    assert "'kitchen'" in message and 'twin_fr3' in message and 'twin_ur5e' in message


def _box(width_x: float, zone: float = 0.03) -> dict[str, object]:
    return {'robot': 'fr3', 'frame': 'fr3_link0', 'min_xyz_m': [0.2, -0.4, 0.0],
            'max_xyz_m': [0.2 + width_x, 0.4, 0.7], 'slowdown_zone_m': zone}


def test_box_narrower_than_two_slowdown_zones_is_refused() -> None:
    """A box no wider than two slowdown zones along an axis is refused, naming the axis."""
    for width in (0.01, 0.06):
        with pytest.raises(WorkspaceError) as error:
            workspace_from_dict(_box(width))
        assert 'x range' in str(error.value) and 'two slowdown zones' in str(error.value)
    assert workspace_from_dict(_box(0.07)).slowdown_zone_m == 0.03


def test_workspace_with_an_unknown_key_is_refused() -> None:
    """A misspelt workspace key is refused."""
    data = _box(0.5)
    data['slowdown_zone'] = 0.03
    with pytest.raises(WorkspaceError) as error:
        workspace_from_dict(data)
    assert 'slowdown_zone' in str(error.value)


@pytest.mark.parametrize('robot', ['fr3', 'ur5e'])
def test_shipped_twin_boxes_contain_the_home_tcp(robot: str) -> None:
    """Each twin's box is for its robot and contains the TCP at home (so arming works)."""
    box = load_workspace(f'twin_{robot}')
    profile = load_safety_profile(robot)
    assert box.robot == robot
    tcp = TcpKinematics(profile.robot).pose(np.array(profile.robot.home_rad))[:3, 3]
    assert box.contains(tcp)
    by_path = load_workspace(REPO / 'config' / 'workspaces' / f'twin_{robot}.yaml')
    np.testing.assert_array_equal(by_path.min_xyz_m, box.min_xyz_m)
    np.testing.assert_array_equal(by_path.max_xyz_m, box.max_xyz_m)


# -- joint-state freshness follows the driver's rate ------------------------------------------


@pytest.mark.parametrize('robot', ROBOTS)
def test_every_robot_file_gives_a_joint_state_limit_of_at_least_three_periods(robot: str
                                                                               ) -> None:
    driver = load_safety_profile(robot).driver
    assert driver.joint_states_topic.startswith('/')
    assert driver.joint_state_timeout_s >= 3.0 / driver.joint_state_rate_hz - 1e-9


def test_franka_ros2_joint_states_at_30_hz_get_a_100_ms_limit() -> None:
    """One late message of franka_ros2's 30 Hz /joint_states must not fault the arm."""
    driver = load_safety_profile('fr3').driver
    assert driver.joint_state_rate_hz == 30
    assert driver.joint_state_timeout_s == pytest.approx(0.1)


def test_a_joint_state_limit_shorter_than_three_periods_is_refused() -> None:
    data = fr3()
    data['safety']['driver']['joint_state_timeout_s'] = 0.05
    message = refused(data)
    assert 'joint_state_timeout_s' in message and '30 Hz' in message and '0.100' in message


def test_the_joint_state_limit_defaults_to_three_periods() -> None:
    data = fr3()
    del data['safety']['driver']['joint_state_timeout_s']
    data['safety']['driver']['joint_state_rate_hz'] = 100
    driver = safety_profile_from_dict(data, 'nominal').driver
    assert driver.joint_state_timeout_s == pytest.approx(0.03)


def test_a_missing_joint_state_rate_is_refused() -> None:
    data = fr3()
    del data['safety']['driver']['joint_state_rate_hz']
    assert 'joint_state_rate_hz' in refused(data)


def test_a_node_parameter_cannot_shorten_the_limit_below_three_periods() -> None:
    from visuomotor.params import ParameterError, resolve
    from visuomotor.safety.node_schema import BRIDGE_NODE_PARAMS, timing_from_params

    driver = load_safety_profile('fr3').driver
    assert timing_from_params(resolve(BRIDGE_NODE_PARAMS, {}), driver
                              ).joint_state_timeout_s == pytest.approx(0.1)
    assert timing_from_params(resolve(BRIDGE_NODE_PARAMS, {'joint_state_timeout_s': 0.2}),
                              driver).joint_state_timeout_s == pytest.approx(0.2)
    with pytest.raises(ParameterError, match='joint_state_timeout_s'):
        timing_from_params(resolve(BRIDGE_NODE_PARAMS, {'joint_state_timeout_s': 0.05}), driver)
