"""Robot descriptions: published DH kinematics, joint limits, gripper and controller names.

One YAML file per robot under config/robots/ (`fr3`, `panda`, `ur5e`, `ur5`) is the single
source: the MuJoCo twin builds its arm from it, and forward kinematics, IK and the safety
bridge read the same values. A user with a factory-calibrated arm (UR ships per-robot DH
corrections) copies the file and edits the numbers.

Conventions:
    `modified` DH (Craig; Franka's published table): row i holds a_{i-1}, alpha_{i-1}, d_i
        and the link transform is Rx(alpha) Tx(a) Rz(theta) Tz(d).
    `standard` DH (UR's published table): row i holds a_i, alpha_i, d_i and the transform
        is Rz(theta) Tz(d) Tx(a) Rx(alpha).
    theta = q + theta_offset. Angles in the files are in degrees (`alpha_deg`) so that 90
    is exact; limits are in radians as the vendors publish them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from visuomotor.config_fields import FieldReader, config_path, read_yaml
from visuomotor.errors import FieldError
from visuomotor.paths import share_dir


class RobotDescriptionError(FieldError):
    """A robot description file is missing a value or has an impossible one."""


@dataclass(frozen=True)
class DHRow:
    """One row of a DH table (metres, radians)."""

    a_m: float
    d_m: float
    alpha_rad: float
    theta_offset_rad: float = 0.0


@dataclass(frozen=True)
class JointSpec:
    """A revolute arm joint: its DH row and its limits, as the vendor publishes them."""

    name: str
    dh: DHRow
    lower_rad: float
    upper_rad: float
    max_velocity_rad_s: float
    max_acceleration_rad_s2: float | None
    max_effort_nm: float


@dataclass(frozen=True)
class GripperSpec:
    """A parallel gripper with two symmetric fingers.

    Attributes:
        joint_names: the finger joints as the driver publishes them on /joint_states; each
            finger's position is half the opening width, in metres.
        max_width_m: fully open width between the fingers.
        max_speed_m_s: fastest change of the opening width.
        max_force_n: largest grasp force.
    """

    joint_names: tuple[str, str]
    max_width_m: float
    max_speed_m_s: float
    max_force_n: float


@dataclass(frozen=True)
class ControllerNames:
    """ros2_control controller names; topics are `/<name>/joint_trajectory` etc."""

    trajectory: str
    position: str
    gripper: str


@dataclass(frozen=True)
class RobotDescription:
    """Everything the stack knows about one arm model.

    Attributes:
        name: short name (`fr3`, `panda`, `ur5e`, `ur5`).
        family: `franka` or `ur`.
        dh_convention: `modified` or `standard` (see the module docstring).
        joints: arm joints from base to wrist.
        flange: the fixed DH row from the last joint frame to the flange.
        tcp_xyz_m, tcp_rpy_rad: tool centre point relative to the flange (between the
            fingertips of the gripper).
        home_rad: a comfortable ready pose inside the limits.
        gripper: the parallel gripper.
        controllers: controller names the real driver uses.
        link_radius_m: drawing radius of the links in the twin.
        color_rgba, joint_color_rgba: link and joint-housing colours in the twin.
        source: where the numbers come from.
    """

    name: str
    family: str
    dh_convention: Literal['modified', 'standard']
    joints: tuple[JointSpec, ...]
    flange: DHRow
    tcp_xyz_m: tuple[float, float, float]
    tcp_rpy_rad: tuple[float, float, float]
    home_rad: tuple[float, ...]
    gripper: GripperSpec
    controllers: ControllerNames
    link_radius_m: float
    color_rgba: tuple[float, float, float, float]
    joint_color_rgba: tuple[float, float, float, float]
    source: str

    @property
    def dof(self) -> int:
        """Number of arm joints."""
        return len(self.joints)

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Arm joint names in chain order (the order of every joint vector here)."""
        return tuple(joint.name for joint in self.joints)

    @property
    def lower_rad(self) -> np.ndarray:
        """Lower position limits as an array."""
        return np.array([joint.lower_rad for joint in self.joints])

    @property
    def upper_rad(self) -> np.ndarray:
        """Upper position limits as an array."""
        return np.array([joint.upper_rad for joint in self.joints])

    @property
    def max_velocity_rad_s(self) -> np.ndarray:
        """Velocity limits as an array."""
        return np.array([joint.max_velocity_rad_s for joint in self.joints])

    def within_limits(self, positions: Sequence[float] | np.ndarray,
                      tolerance_rad: float = 0.0) -> bool:
        """Whether every position is finite and inside its joint's limits."""
        q = np.asarray(positions, dtype=np.float64)
        return bool(q.shape == (self.dof,) and np.all(np.isfinite(q))
                    and np.all(q >= self.lower_rad - tolerance_rad)
                    and np.all(q <= self.upper_rad + tolerance_rad))


def _dh_row(reader: FieldReader) -> DHRow:
    return DHRow(a_m=reader.number('a_m'), d_m=reader.number('d_m'),
                 alpha_rad=math.radians(reader.number('alpha_deg')),
                 theta_offset_rad=math.radians(reader.number('theta_offset_deg', 0.0)))


def _joint(reader: FieldReader) -> JointSpec:
    limits = reader.child('limits')
    lower, upper = limits.number('lower_rad'), limits.number('upper_rad')
    if lower >= upper:
        raise RobotDescriptionError(f'{limits.path}.lower_rad', f'must be below upper_rad '
                                    f'({lower} >= {upper})')
    acceleration = None
    if 'acceleration_rad_s2' in limits.data and limits.data['acceleration_rad_s2'] is not None:
        acceleration = limits.number('acceleration_rad_s2', positive=True)
    return JointSpec(
        name=reader.text('name'), dh=_dh_row(reader.child('dh')), lower_rad=lower,
        upper_rad=upper, max_velocity_rad_s=limits.number('velocity_rad_s', positive=True),
        max_acceleration_rad_s2=acceleration,
        max_effort_nm=limits.number('effort_nm', positive=True))


def robot_from_dict(data: object, source: str = 'robot description') -> RobotDescription:
    """Build and validate a description from parsed YAML.

    Raises:
        RobotDescriptionError: naming the field, e.g. `joints[3].limits.lower_rad`.
    """
    reader = FieldReader(data, '', RobotDescriptionError)
    convention = reader.text('dh_convention')
    if convention not in ('modified', 'standard'):
        raise RobotDescriptionError('dh_convention', f"must be 'modified' or 'standard', "
                                    f'got {convention!r}')
    raw_joints = reader.raw('joints')
    if not isinstance(raw_joints, list) or len(raw_joints) < 1:
        raise RobotDescriptionError('joints', 'must be a non-empty list')
    joints = tuple(_joint(FieldReader(j, f'joints[{i}]', RobotDescriptionError))
                   for i, j in enumerate(raw_joints))
    names = [joint.name for joint in joints]
    if len(set(names)) != len(names):
        raise RobotDescriptionError('joints', f'names must be unique, got {names}')
    gripper = reader.child('gripper')
    finger_names = gripper.raw('joints')
    if not isinstance(finger_names, list) or len(finger_names) != 2 or \
            not all(isinstance(n, str) and n for n in finger_names):
        raise RobotDescriptionError('gripper.joints', f'must be two finger joint names, got '
                                    f'{finger_names!r}')
    controllers = reader.child('controllers')
    geometry = reader.child('geometry')
    home = reader.numbers('home_rad', len(joints))
    description = RobotDescription(
        name=reader.text('name'), family=reader.text('family'),
        dh_convention=convention,  # type: ignore[arg-type]
        joints=joints, flange=_dh_row(reader.child('flange')),
        tcp_xyz_m=reader.child('tcp').numbers('xyz_m', 3),  # type: ignore[arg-type]
        tcp_rpy_rad=tuple(math.radians(v) for v in  # type: ignore[arg-type]
                          reader.child('tcp').numbers('rpy_deg', 3)),
        home_rad=home,
        gripper=GripperSpec(
            joint_names=(finger_names[0], finger_names[1]),
            max_width_m=gripper.number('max_width_m', positive=True),
            max_speed_m_s=gripper.number('max_speed_m_s', positive=True),
            max_force_n=gripper.number('max_force_n', positive=True)),
        controllers=ControllerNames(trajectory=controllers.text('trajectory'),
                                    position=controllers.text('position'),
                                    gripper=controllers.text('gripper')),
        link_radius_m=geometry.number('link_radius_m', positive=True),
        color_rgba=geometry.numbers('color_rgba', 4),  # type: ignore[arg-type]
        joint_color_rgba=geometry.numbers('joint_color_rgba', 4),  # type: ignore[arg-type]
        source=reader.text('source'))
    if not description.within_limits(home):
        raise RobotDescriptionError('home_rad', f'{list(home)} is outside the joint limits '
                                    f'of {source}')
    return description


def robots_dir() -> Path:
    """config/robots of the checkout or the installed share directory."""
    return share_dir() / 'config' / 'robots'


def available_robots() -> list[str]:
    """Names of the robot descriptions shipped in config/robots."""
    return sorted(path.stem for path in robots_dir().glob('*.yaml'))


def load_robot(name_or_path: str | Path) -> RobotDescription:
    """Load a robot by name (`fr3`, `panda`, `ur5e`, `ur5`) or from a YAML file path.

    Raises:
        RobotDescriptionError: unknown name or an invalid file, naming the field.
    """
    path = config_path(name_or_path, robots_dir(), 'robot', RobotDescriptionError)
    data = read_yaml(path, RobotDescriptionError, 'robot')
    try:
        return robot_from_dict(data, str(path))
    except RobotDescriptionError as error:
        raise RobotDescriptionError(f'{path}: {error.field}',
                                    str(error).split(': ', 1)[1]) from None
