"""Safety profiles: the vendor limit table of each arm and the bridge's limit tiers (pure).

Each robot file in config/robots/ carries a `safety:` block (see fr3.yaml for the annotated
layout): the vendor's published limits, a `commissioning` tier (the default: 0.5 rad/s joints,
0.10 m/s TCP) and a `nominal` tier, the command interface and topics of its ROS 2 driver,
and the driver settings the bridge relies on. `load_safety_profile` validates a tier against
the vendor table with margin and refuses, naming the value, anything that could not be
executed safely: a cap above the vendor limit, a slowdown zone too short to brake in, an
envelope with no room, a driver setting outside the vendor's range.

Numbers and sources: ../shared/research/safety_anchors.md sections 1, 2 and 7.2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.config_fields import FieldReader, config_path, read_yaml
from visuomotor.errors import FieldError
from visuomotor.robots.description import RobotDescription, robot_from_dict, robots_dir

Vector = npt.NDArray[np.float64]

TIERS = ('commissioning', 'nominal')
INTERFACES = ('joint_trajectory', 'forward_position', 'cartesian_pose')


class ProfileError(FieldError):
    """A safety profile or tier is invalid or unsafe; the bridge refuses to start."""


@dataclass(frozen=True)
class VendorTable:
    """The vendor's published limits the bridge's tiers must stay inside (arrays per joint)."""

    lower_rad: Vector
    upper_rad: Vector
    velocity_rad_s: Vector
    acceleration_rad_s2: Vector
    tcp_linear_m_s: float
    tcp_angular_rad_s: float


@dataclass(frozen=True)
class SafetyLimits:
    """The limits the bridge enforces: one tier of a profile, validated.

    Attributes:
        tier: `commissioning` or `nominal`.
        lower_rad, upper_rad: the hard envelope commands are clamped to (vendor limits minus
            the hard margin, intersected with the window about home when the tier has one).
        fault_lower_rad, fault_upper_rad: a *measured* position outside these (the envelope
            widened by half the hard margin) latches a fault.
        slowdown_zone_rad: inside this distance from the envelope, speed toward it is capped
            at v_cap * sqrt(distance / zone), a braking curve the acceleration cap can follow.
        velocity_rad_s: per-joint speed caps.
        acceleration_rad_s2: per-joint caps on the change of commanded velocity.
        stop_acceleration_rad_s2: deceleration of a controlled stop.
        tcp_linear_m_s, tcp_angular_rad_s: Cartesian TCP speed caps.
        tracking_error_rad: largest |commanded - measured| before a stop and fault.
    """

    tier: str
    lower_rad: Vector
    upper_rad: Vector
    fault_lower_rad: Vector
    fault_upper_rad: Vector
    slowdown_zone_rad: float
    velocity_rad_s: Vector
    acceleration_rad_s2: Vector
    stop_acceleration_rad_s2: float
    tcp_linear_m_s: float
    tcp_angular_rad_s: float
    tracking_error_rad: float


@dataclass(frozen=True)
class DriverSettings:
    """What the bridge assumes about the robot-side driver (checked at startup).

    Attributes:
        package: `franka_ros2` or `ur_robot_driver` (or `visuomotor_twin`).
        controller_rate_hz: the ros2_control update rate.
        base_frame: frame_id of Cartesian targets (the robot's base link).
        position_rate_limiter: Franka only; franka_hardware's joint position rate limiter
            (off by default there): required for the forward position interface.
        robot_receive_timeout_s: UR only; the driver's reverse-interface timeout.
        servoj_gain, servoj_lookahead_s: UR only; the driver's servoj settings.
        officially_supported: false where the vendor's compatibility matrix excludes this
            robot with this driver (Panda with franka_ros2); logged as a warning.
        joint_states_topic: where the driver publishes the measured arm joints.
        joint_state_rate_hz: how often it publishes them (franka_ros2's merged /joint_states:
            30 Hz; the UR driver's joint_state_broadcaster: the controller update rate).
        joint_state_timeout_s: joint states older than this stop the arm and latch a fault;
            at least 3 publishing periods, so one late message never faults.
    """

    package: str
    controller_rate_hz: float
    base_frame: str
    position_rate_limiter: bool | None
    robot_receive_timeout_s: float | None
    servoj_gain: float | None
    servoj_lookahead_s: float | None
    officially_supported: bool
    joint_states_topic: str = '/joint_states'
    joint_state_rate_hz: float = 100.0
    joint_state_timeout_s: float = 0.05


@dataclass(frozen=True)
class SafetyProfile:
    """A robot, its vendor table, the chosen tier's limits and its command interface."""

    robot: RobotDescription
    vendor: VendorTable
    limits: SafetyLimits
    interface: str
    topics: dict[str, str]
    driver: DriverSettings
    source: str
    warnings: tuple[str, ...]

    @property
    def command_topic(self) -> str:
        """Topic of the configured command interface."""
        return self.topics[self.interface]


def _per_joint(reader: FieldReader, key: str, names: tuple[str, ...]) -> Vector:
    value = reader.raw(key)
    if isinstance(value, list):
        result = np.array(reader.numbers(key, len(names)))
    else:
        result = np.full(len(names), reader.number(key))
    if np.any(result <= 0):
        raise reader.fail(key, f'must be > 0 for every joint, got {result.tolist()}')
    return result


def _vendor(reader: FieldReader, robot: RobotDescription) -> VendorTable:
    names = robot.joint_names
    lower = np.array(reader.numbers('lower_rad', robot.dof, tuple(robot.lower_rad)))
    upper = np.array(reader.numbers('upper_rad', robot.dof, tuple(robot.upper_rad)))
    for i, name in enumerate(names):
        if lower[i] >= upper[i]:
            raise reader.fail('lower_rad', f'{name}: {lower[i]} is not below {upper[i]}')
    return VendorTable(
        lower_rad=lower, upper_rad=upper,
        velocity_rad_s=_per_joint(reader, 'velocity_rad_s', names),
        acceleration_rad_s2=_per_joint(reader, 'acceleration_rad_s2', names),
        tcp_linear_m_s=reader.number('tcp_linear_m_s', positive=True),
        tcp_angular_rad_s=reader.number('tcp_angular_rad_s', positive=True))


def _check_cap(tier: FieldReader, key: str, values: Vector, vendor: Vector, margin: float,
               names: tuple[str, ...], unit: str) -> None:
    allowed = (1.0 - margin) * vendor
    for i, name in enumerate(names):
        if values[i] > allowed[i] + 1e-12:
            raise tier.fail(key, f'{values[i]:g} {unit} for {name} is above the vendor limit '
                            f'{vendor[i]:g} {unit} minus the {margin:.0%} margin '
                            f'(at most {allowed[i]:.4g}); lower it')


def _tier(reader: FieldReader, name: str, robot: RobotDescription, vendor: VendorTable,
          margin: float) -> SafetyLimits:
    names = robot.joint_names
    reader.unknown({'hard_margin_rad', 'slowdown_zone_rad', 'velocity_rad_s',
                    'acceleration_rad_s2', 'stop_acceleration_rad_s2', 'tcp_linear_m_s',
                    'tcp_angular_rad_s', 'tracking_error_rad', 'window_about_home_rad'})
    hard = reader.number('hard_margin_rad', positive=True)
    zone = reader.number('slowdown_zone_rad', positive=True)
    velocity = _per_joint(reader, 'velocity_rad_s', names)
    acceleration = _per_joint(reader, 'acceleration_rad_s2', names)
    stop = reader.number('stop_acceleration_rad_s2', positive=True)
    linear = reader.number('tcp_linear_m_s', positive=True)
    angular = reader.number('tcp_angular_rad_s', positive=True)
    tracking = reader.number('tracking_error_rad', positive=True)
    _check_cap(reader, 'velocity_rad_s', velocity, vendor.velocity_rad_s, margin, names,
               'rad/s')
    _check_cap(reader, 'acceleration_rad_s2', acceleration, vendor.acceleration_rad_s2,
               margin, names, 'rad/s^2')
    _check_cap(reader, 'stop_acceleration_rad_s2', np.full(len(names), stop),
               vendor.acceleration_rad_s2, margin, names, 'rad/s^2')
    _check_cap(reader, 'tcp_linear_m_s', np.array([linear]), np.array([vendor.tcp_linear_m_s]),
               margin, ('the TCP',), 'm/s')
    _check_cap(reader, 'tcp_angular_rad_s', np.array([angular]),
               np.array([vendor.tcp_angular_rad_s]), margin, ('the TCP',), 'rad/s')
    # The slowdown curve v = v_cap sqrt(d / zone) needs v_cap^2 / zone of deceleration at the
    # end; the acceleration cap must cover it, and a stop at a_stop must fit inside the zone.
    for i, joint in enumerate(names):
        needed = max(velocity[i] ** 2 / acceleration[i], velocity[i] ** 2 / (2.0 * stop))
        if zone < needed - 1e-12:
            raise reader.fail('slowdown_zone_rad', f'{zone:g} rad is too short to brake {joint} '
                              f'from {velocity[i]:g} rad/s within {acceleration[i]:g} rad/s^2 '
                              f'(and stop at {stop:g} rad/s^2): it needs at least '
                              f'{needed:.3f} rad; raise it or lower velocity_rad_s')
    lower = vendor.lower_rad + hard
    upper = vendor.upper_rad - hard
    if reader.has('window_about_home_rad'):
        window = reader.number('window_about_home_rad', positive=True)
        home = np.array(robot.home_rad)
        lower, upper = np.maximum(lower, home - window), np.minimum(upper, home + window)
    for i, joint in enumerate(names):
        if upper[i] - lower[i] < 2.0 * zone:
            raise reader.fail('hard_margin_rad', f'leaves {joint} an envelope of '
                              f'[{lower[i]:.3f}, {upper[i]:.3f}] rad, narrower than two '
                              f'slowdown zones ({2 * zone:g} rad)')
    return SafetyLimits(
        tier=name, lower_rad=lower, upper_rad=upper,
        fault_lower_rad=lower - hard / 2.0, fault_upper_rad=upper + hard / 2.0,
        slowdown_zone_rad=zone, velocity_rad_s=velocity, acceleration_rad_s2=acceleration,
        stop_acceleration_rad_s2=stop, tcp_linear_m_s=linear, tcp_angular_rad_s=angular,
        tracking_error_rad=tracking)


#: Publishing periods a joint-state freshness limit must span: one late message (a DDS
#: hiccup, a busy host) must never fault the arm.
MIN_JOINT_STATE_PERIODS = 3


def check_joint_state_timeout(timeout_s: float, rate_hz: float) -> str:
    """Why `timeout_s` is too short for joint states at `rate_hz` ('' if it is not)."""
    shortest = MIN_JOINT_STATE_PERIODS / rate_hz
    if timeout_s + 1e-9 < shortest:
        return (f'{timeout_s:g} s is shorter than {MIN_JOINT_STATE_PERIODS} periods of the '
                f'{rate_hz:g} Hz joint states ({shortest:.3f} s): one late message would fault '
                f'the arm; use at least {shortest:.3f} s')
    return ''


def _joint_state_settings(reader: FieldReader) -> dict[str, Any]:
    """The driver's joint-state topic, rate and the freshness limit that follows from it."""
    topic = reader.text('joint_states_topic', '/joint_states')
    if not topic.startswith('/'):
        raise reader.fail('joint_states_topic', f'must be an absolute topic name, got {topic!r}')
    rate = reader.number('joint_state_rate_hz', positive=True)
    timeout = reader.number('joint_state_timeout_s', MIN_JOINT_STATE_PERIODS / rate,
                            positive=True)
    problem = check_joint_state_timeout(timeout, rate)
    if problem:
        raise reader.fail('joint_state_timeout_s', problem)
    return {'joint_states_topic': topic, 'joint_state_rate_hz': rate,
            'joint_state_timeout_s': timeout}


def _driver(reader: FieldReader, robot: RobotDescription) -> tuple[DriverSettings, list[str]]:
    package = reader.text('package', choices=('franka_ros2', 'ur_robot_driver',
                                              'visuomotor_twin'))
    rate = reader.number('controller_rate_hz', positive=True)
    settings = DriverSettings(
        package=package, controller_rate_hz=rate, base_frame=reader.text('base_frame'),
        position_rate_limiter=reader.boolean('position_rate_limiter')
        if reader.has('position_rate_limiter') else None,
        robot_receive_timeout_s=reader.number('robot_receive_timeout_s', positive=True)
        if reader.has('robot_receive_timeout_s') else None,
        servoj_gain=reader.number('servoj_gain') if reader.has('servoj_gain') else None,
        servoj_lookahead_s=reader.number('servoj_lookahead_s')
        if reader.has('servoj_lookahead_s') else None,
        officially_supported=reader.boolean('officially_supported', True),
        **_joint_state_settings(reader))
    warnings = []
    if package == 'ur_robot_driver':
        # Universal_Robots_Client_Library: realtime modes clamp the timeout to <= 200 ms and
        # cannot turn it off; UR's servoj ranges are gain [100, 2000], lookahead [0.03, 0.2].
        timeout = settings.robot_receive_timeout_s
        if timeout is None or timeout > 0.2:
            raise reader.fail('robot_receive_timeout_s', f'must be set and <= 0.2 s for the UR '
                              f'realtime interfaces, got {timeout}')
        if settings.servoj_gain is None or not 100 <= settings.servoj_gain <= 2000:
            raise reader.fail('servoj_gain', f"must be within UR's [100, 2000], got "
                              f'{settings.servoj_gain}')
        if settings.servoj_lookahead_s is None or \
                not 0.03 <= settings.servoj_lookahead_s <= 0.2:
            raise reader.fail('servoj_lookahead_s', f"must be within UR's [0.03, 0.2] s, got "
                              f'{settings.servoj_lookahead_s}')
    if package == 'franka_ros2' and not settings.officially_supported:
        warnings.append(f"{robot.name} is not in franka_ros2's official compatibility matrix "
                        f'(frankaemika/docs compatibility_data); use a supported backend')
    return settings, warnings


def safety_profile_from_dict(data: object, tier: str = 'commissioning',
                             interface: str = '', source: str = 'robot description',
                             ) -> SafetyProfile:
    """Build and validate the profile of a parsed robot file (its `safety` block).

    Args:
        data: the parsed robot YAML (with its `safety` block).
        tier: `commissioning` (the default) or `nominal`.
        interface: the command interface; '' takes the profile's default.
        source: where `data` came from (for messages).

    Raises:
        ProfileError: naming the field and value, e.g.
            `safety.tiers.nominal.velocity_rad_s: 3 rad/s for fr3_joint1 is above ...`.
    """
    robot = robot_from_dict(data, source)
    top = FieldReader(data, '', ProfileError)
    if not top.has('safety'):
        raise ProfileError('safety', f'{source} has no safety block: add the vendor table '
                           f'and tiers (see config/robots/fr3.yaml)')
    reader = top.child('safety')
    reader.unknown({'source', 'vendor', 'vendor_margin', 'tiers', 'interface',
                    'cartesian_pose_topic', 'driver'})
    vendor = _vendor(reader.child('vendor'), robot)
    margin = reader.number('vendor_margin', minimum=0.0, maximum=0.5)
    tiers = reader.child('tiers')
    if tier not in TIERS:
        raise ProfileError('tier', f'must be one of {list(TIERS)}, got {tier!r}')
    limits = _tier(tiers.child(tier), tier, robot, vendor, margin)
    chosen = interface or reader.text('interface', choices=INTERFACES)
    if chosen not in INTERFACES:
        raise ProfileError('interface', f'must be one of {list(INTERFACES)}, got {chosen!r}')
    driver, warnings = _driver(reader.child('driver'), robot)
    if chosen == 'forward_position' and driver.package == 'franka_ros2' and \
            not driver.position_rate_limiter:
        raise ProfileError('safety.driver.position_rate_limiter', 'the forward position '
                           "interface streams steps at the bridge rate: enable franka_hardware's "
                           'joint position rate limiter (off by default) and set this to true, '
                           'or use interface joint_trajectory')
    topics = {'joint_trajectory': f'/{robot.controllers.trajectory}/joint_trajectory',
              'forward_position': f'/{robot.controllers.position}/commands',
              'cartesian_pose': reader.text('cartesian_pose_topic'),
              'gripper': f'/{robot.controllers.gripper}/commands'}
    return SafetyProfile(robot=robot, vendor=vendor, limits=limits, interface=chosen,
                         topics=topics, driver=driver, source=reader.text('source'),
                         warnings=tuple(warnings))


def load_safety_profile(robot: str | Path, tier: str = 'commissioning',
                        interface: str = '') -> SafetyProfile:
    """The validated safety profile of a robot by name (`fr3`...) or robot YAML path.

    Raises:
        ProfileError: an unknown robot or an invalid or unsafe profile, naming the value.
    """
    path = config_path(robot, robots_dir(), 'robot', ProfileError)
    data = read_yaml(path, ProfileError, 'robot')
    try:
        return safety_profile_from_dict(data, tier, interface, str(path))
    except FieldError as error:
        raise ProfileError(f'{path}: {error.field}', str(error).split(': ', 1)[1]) from None

