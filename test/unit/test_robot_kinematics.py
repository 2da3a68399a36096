"""Robot descriptions, DH forward kinematics, the Jacobian and IK, checked against MuJoCo.

The MuJoCo twin builds its arm bodies from the same DH tables; here the pure FK is held to
MuJoCo's body frames and `tcp` site, to a textbook DH product written out independently, and
to the published poses of the Franka ready pose and the UR zero pose.
"""

from __future__ import annotations

import copy
import math
from functools import cache
from pathlib import Path

import mujoco
import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from support import REPO
from visuomotor.robots.description import (
    RobotDescription,
    RobotDescriptionError,
    available_robots,
    load_robot,
    robot_from_dict,
)
from visuomotor.robots.ik import solve_ik
from visuomotor.robots.kinematics import flange_pose, jacobian, link_frames, tcp_pose
from visuomotor.robots.transforms import (
    from_xyz_rpy,
    rot_x,
    rot_z,
    rotation_vector,
    translation,
)
from visuomotor.sim.config import SceneConfig
from visuomotor.sim.scene import SceneNames, build_mjcf

ROBOTS = available_robots()
# Base placements of the arm in the world: at the origin, and offset, yawed and tilted.
BASES = [((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)), ((0.1, -0.2, 0.05), (5.0, -3.0, 150.0))]
POSITION_TOL_M = 1e-6
ROTATION_TOL = 1e-6


@cache
def robot(name: str) -> RobotDescription:
    return load_robot(name)


@cache
def twin_model(name: str, base_index: int) -> tuple[SceneConfig, mujoco.MjModel]:
    xyz, rpy = BASES[base_index]
    config = SceneConfig(robot=robot(name), base_xyz_m=xyz, base_rpy_deg=rpy)
    xml, assets = build_mjcf(config)
    return config, mujoco.MjModel.from_xml_string(xml, assets)


def random_configurations(arm: RobotDescription, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(arm.lower_rad, arm.upper_rad, size=(count, arm.dof))


@st.composite
def joint_vectors(draw: st.DrawFn, arm: RobotDescription) -> np.ndarray:
    """Joint positions inside the limits."""
    return np.array([draw(st.floats(lo, hi, allow_nan=False))
                     for lo, hi in zip(arm.lower_rad, arm.upper_rad, strict=True)])


def assert_pose_close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    position_error = float(np.linalg.norm(actual[:3, 3] - expected[:3, 3]))
    rotation_error = float(np.abs(actual[:3, :3] - expected[:3, :3]).max())
    assert position_error < POSITION_TOL_M, f'{what}: position off by {position_error} m'
    assert rotation_error < ROTATION_TOL, f'{what}: rotation off by {rotation_error}'


def mujoco_pose(position: np.ndarray, xmat: np.ndarray) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = np.reshape(xmat, (3, 3))
    pose[:3, 3] = position
    return pose


# -- forward kinematics vs MuJoCo ---------------------------------------------------------


@pytest.mark.parametrize('base_index', range(len(BASES)))
@pytest.mark.parametrize('name', ROBOTS)
def test_fk_matches_every_mujoco_joint_body_and_the_tcp_site(name: str,
                                                             base_index: int) -> None:
    config, model = twin_model(name, base_index)
    arm = config.robot
    data = mujoco.MjData(model)
    names = SceneNames(arm)
    qpos = [int(model.joint(joint).qposadr[0]) for joint in arm.joint_names]
    configurations = np.vstack([random_configurations(arm, 30, seed=base_index),
                                arm.lower_rad, arm.upper_rad, np.array(arm.home_rad)])
    for q in configurations:
        data.qpos[qpos] = q
        mujoco.mj_kinematics(model, data)
        frames = config.base_pose() @ link_frames(arm, q)
        for i in range(arm.dof):
            body = data.body(names.joint_body(i))
            assert_pose_close(mujoco_pose(body.xpos, body.xmat), frames[i],
                              f'{name} {names.joint_body(i)} at q={q}')
        flange = data.body(names.flange)
        assert_pose_close(mujoco_pose(flange.xpos, flange.xmat), frames[arm.dof],
                          f'{name} flange at q={q}')
        site = data.site(names.tcp_site)
        assert_pose_close(mujoco_pose(site.xpos, site.xmat), frames[arm.dof + 1],
                          f'{name} tcp site at q={q}')


# -- forward kinematics vs the textbook DH product -----------------------------------------


def textbook_frames(arm: RobotDescription, q: np.ndarray) -> tuple[list[np.ndarray],
                                                                     np.ndarray]:
    """(pose of each joint's rotation axis frame, flange pose), from the DH formulas.

    Modified (Craig): T_i = Rx(alpha_{i-1}) Tx(a_{i-1}) Rz(theta_i) Tz(d_i); joint i turns
    about z_i. Standard: T_i = Rz(theta_i) Tz(d_i) Tx(a_i) Rx(alpha_i); joint i turns about
    z_{i-1}, so its frame is frame i-1 turned by theta_i.
    """
    axes = []
    pose = np.eye(4)
    for joint, angle in zip(arm.joints, q, strict=True):
        row = joint.dh
        theta = angle + row.theta_offset_rad
        if arm.dh_convention == 'modified':
            pose = (pose @ rot_x(row.alpha_rad) @ translation(row.a_m, 0, 0) @ rot_z(theta)
                    @ translation(0, 0, row.d_m))
            axes.append(pose)
        else:
            axes.append(pose @ rot_z(theta))
            pose = (pose @ rot_z(theta) @ translation(0, 0, row.d_m)
                    @ translation(row.a_m, 0, 0) @ rot_x(row.alpha_rad))
    row = arm.flange
    if arm.dh_convention == 'modified':
        flange = (pose @ rot_x(row.alpha_rad) @ translation(row.a_m, 0, 0)
                  @ rot_z(row.theta_offset_rad) @ translation(0, 0, row.d_m))
    else:
        flange = (pose @ rot_z(row.theta_offset_rad) @ translation(0, 0, row.d_m)
                  @ translation(row.a_m, 0, 0) @ rot_x(row.alpha_rad))
    return axes, flange


@pytest.mark.parametrize('name', ROBOTS)
@settings(max_examples=40)
@given(data=st.data())
def test_fk_equals_the_textbook_dh_product(name: str, data: st.DataObject) -> None:
    arm = robot(name)
    q = data.draw(joint_vectors(arm))
    axes, flange = textbook_frames(arm, q)
    frames = link_frames(arm, q)
    for i in range(arm.dof):
        assert_pose_close(frames[i], axes[i], f'joint {i}')
    assert_pose_close(frames[arm.dof], flange, 'flange')
    assert_pose_close(flange_pose(arm, q), flange, 'flange_pose')
    tcp = flange @ from_xyz_rpy(arm.tcp_xyz_m, arm.tcp_rpy_rad)
    assert_pose_close(frames[arm.dof + 1], tcp, 'tcp')
    assert_pose_close(tcp_pose(arm, q), tcp, 'tcp_pose')


# -- published poses -------------------------------------------------------------------------


@pytest.mark.parametrize('name', [n for n in ROBOTS if robot(n).family == 'franka'])
def test_franka_ready_pose_matches_the_published_flange_and_tcp(name: str) -> None:
    arm = robot(name)
    home = np.array(arm.home_rad)
    np.testing.assert_allclose(home, [0, -math.pi / 4, 0, -3 * math.pi / 4, 0, math.pi / 2,
                                      math.pi / 4], atol=1e-12)
    # libfranka's O_T_EE at the ready pose: flange at (0.307, 0, 0.5903), pointing down.
    np.testing.assert_allclose(flange_pose(arm, home)[:3, 3], [0.307, 0.0, 0.5903], atol=1e-3)
    tcp = tcp_pose(arm, home)
    np.testing.assert_allclose(tcp[:3, 3], [0.307, 0.0, 0.4869], atol=1e-3)
    np.testing.assert_allclose(tcp[:3, :3], np.diag([1.0, -1.0, -1.0]), atol=1e-9)


@pytest.mark.parametrize('name', [n for n in ROBOTS if robot(n).family == 'ur'])
def test_ur_zero_pose_matches_the_closed_form_dh_flange(name: str) -> None:
    arm = robot(name)
    d = [joint.dh.d_m for joint in arm.joints]
    a = [joint.dh.a_m for joint in arm.joints]
    # All joints at zero: the arm lies stretched along x; the flange points along -y.
    # x = a2 + a3, y = -(d4 + d6), z = d1 - d5 (UR's published DH, 1-based indices).
    expected = [a[1] + a[2], -(d[3] + d[5]), d[0] - d[4]]
    flange = flange_pose(arm, np.zeros(arm.dof))
    np.testing.assert_allclose(flange[:3, 3], expected, atol=1e-9)
    np.testing.assert_allclose(flange[:3, :3], [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-9)
    if name == 'ur5e':
        np.testing.assert_allclose(flange[:3, 3], [-0.8172, -0.2329, 0.0628], atol=1e-9)


# -- Jacobian ---------------------------------------------------------------------------------


def numeric_jacobian(arm: RobotDescription, q: np.ndarray, step: float = 1e-6) -> np.ndarray:
    result = np.empty((6, arm.dof))
    rotation = tcp_pose(arm, q)[:3, :3]
    for i in range(arm.dof):
        dq = np.zeros(arm.dof)
        dq[i] = step
        plus, minus = tcp_pose(arm, q + dq), tcp_pose(arm, q - dq)
        result[:3, i] = (plus[:3, 3] - minus[:3, 3]) / (2 * step)
        # Angular velocity in the base frame: rotation vector of R(q + dq) R(q)^T.
        result[3:, i] = (rotation_vector(plus[:3, :3] @ rotation.T)
                         - rotation_vector(minus[:3, :3] @ rotation.T)) / (2 * step)
    return result


@pytest.mark.parametrize('name', ROBOTS)
@settings(max_examples=30)
@given(data=st.data())
def test_jacobian_matches_finite_differences_of_the_tcp_pose(name: str,
                                                             data: st.DataObject) -> None:
    arm = robot(name)
    q = data.draw(joint_vectors(arm))
    analytic = jacobian(arm, q)
    assert analytic.shape == (6, arm.dof)
    np.testing.assert_allclose(analytic, numeric_jacobian(arm, q), atol=1e-7)


# -- inverse kinematics -----------------------------------------------------------------------


@st.composite
def reachable_configurations(draw: st.DrawFn, arm: RobotDescription) -> np.ndarray:
    """Joint positions up to 0.5 rad from home (the working region of the task), in limits.

    A damped least-squares solver started at home is a local method: targets from the far
    side of the joint space (another IK branch) are not expected to converge from home.
    """
    offsets = np.array([draw(st.floats(-0.5, 0.5)) for _ in range(arm.dof)])
    return np.clip(np.array(arm.home_rad) + offsets, arm.lower_rad + 0.03, arm.upper_rad - 0.03)


@pytest.mark.parametrize('name', ROBOTS)
@settings(max_examples=40)
@given(data=st.data())
def test_ik_reaches_poses_of_random_reachable_configurations(name: str,
                                                             data: st.DataObject) -> None:
    arm = robot(name)
    target = tcp_pose(arm, data.draw(reachable_configurations(arm)))
    result = solve_ik(arm, target, arm.home_rad)
    reached = tcp_pose(arm, result.q)
    position_error = float(np.linalg.norm(reached[:3, 3] - target[:3, 3]))
    rotation_error = float(np.linalg.norm(rotation_vector(reached[:3, :3].T @ target[:3, :3])))
    assert result.converged
    assert position_error < 1e-4 and rotation_error < 1e-3
    assert result.position_error_m == pytest.approx(position_error, abs=1e-9)
    assert result.rotation_error_rad == pytest.approx(rotation_error, abs=1e-9)
    assert arm.within_limits(result.q)


@pytest.mark.parametrize('name', ROBOTS)
@settings(max_examples=20)
@given(data=st.data())
def test_position_only_ik_reaches_the_position(name: str, data: st.DataObject) -> None:
    arm = robot(name)
    target = tcp_pose(arm, data.draw(reachable_configurations(arm)))
    target[:3, :3] = np.eye(3)  # an orientation the arm may not reach: it is ignored
    result = solve_ik(arm, target, arm.home_rad, position_only=True)
    assert result.converged
    assert np.linalg.norm(tcp_pose(arm, result.q)[:3, 3] - target[:3, 3]) < 1e-4
    assert result.rotation_error_rad == 0.0
    assert arm.within_limits(result.q)


@pytest.mark.parametrize('name', ROBOTS)
def test_ik_of_an_unreachable_target_says_so_and_stays_within_limits(name: str) -> None:
    arm = robot(name)
    target = tcp_pose(arm, arm.home_rad)
    target[:3, 3] = (3.0, 0.0, 0.5)  # far outside the workspace
    result = solve_ik(arm, target, arm.home_rad)
    assert not result.converged
    assert result.position_error_m > 1.0
    assert arm.within_limits(result.q)
    # A seed outside the limits is brought inside them.
    result = solve_ik(arm, target, arm.upper_rad + 1.0)
    assert arm.within_limits(result.q)


@pytest.mark.parametrize('bad', [math.nan, math.inf, -math.inf])
def test_ik_rejects_non_finite_targets_and_seeds(bad: float) -> None:
    arm = robot('fr3')
    target = tcp_pose(arm, arm.home_rad)
    broken = target.copy()
    broken[0, 3] = bad
    with pytest.raises(ValueError, match='finite'):
        solve_ik(arm, broken, arm.home_rad)
    broken = target.copy()
    broken[1, 1] = bad
    with pytest.raises(ValueError, match='finite'):
        solve_ik(arm, broken, arm.home_rad)
    seed = np.array(arm.home_rad)
    seed[2] = bad
    with pytest.raises(ValueError, match='finite'):
        solve_ik(arm, target, seed)


def test_ik_rejects_wrong_shapes() -> None:
    arm = robot('ur5e')
    with pytest.raises(ValueError, match='4x4'):
        solve_ik(arm, np.eye(3), arm.home_rad)
    with pytest.raises(ValueError, match='6 finite joint positions'):
        solve_ik(arm, np.eye(4), arm.home_rad[:5])


def test_fk_rejects_the_wrong_number_of_joints() -> None:
    arm = robot('fr3')
    with pytest.raises(ValueError, match='must have 7 values'):
        tcp_pose(arm, np.zeros(6))


# -- robot descriptions -----------------------------------------------------------------------


def test_every_robot_file_is_listed() -> None:
    files = sorted(p.stem for p in (REPO / 'config' / 'robots').glob('*.yaml'))
    assert files == ROBOTS
    assert {'fr3', 'panda', 'ur5e', 'ur5'} <= set(ROBOTS)


@pytest.mark.parametrize('name', ROBOTS)
def test_each_robot_description_loads_consistently(name: str) -> None:
    arm = load_robot(name)
    assert arm.name == name
    assert arm.dof == {'franka': 7, 'ur': 6}[arm.family]
    assert len(set(arm.joint_names)) == arm.dof
    assert np.all(arm.lower_rad < arm.upper_rad)
    assert np.all(arm.max_velocity_rad_s > 0)
    assert arm.within_limits(arm.home_rad)
    assert len(arm.gripper.joint_names) == 2
    assert not set(arm.gripper.joint_names) & set(arm.joint_names)
    assert arm.gripper.max_width_m > 0
    # Loading by path gives the same description.
    assert load_robot(REPO / 'config' / 'robots' / f'{name}.yaml') == arm


def test_within_limits_checks_shape_finiteness_and_bounds() -> None:
    arm = robot('fr3')
    home = np.array(arm.home_rad)
    assert arm.within_limits(home)
    assert not arm.within_limits(home[:6])
    assert not arm.within_limits(np.where(np.arange(7) == 0, math.nan, home))
    assert not arm.within_limits(arm.upper_rad + 1e-3)
    assert arm.within_limits(arm.upper_rad + 1e-3, tolerance_rad=2e-3)


def test_unknown_robot_lists_the_available_ones() -> None:
    with pytest.raises(RobotDescriptionError) as error:
        load_robot('nope')
    assert error.value.field == 'robot'
    assert "'nope'" in str(error.value)
    for name in ROBOTS:
        assert name in str(error.value)


def fr3_data() -> dict[str, object]:
    data = yaml.safe_load((REPO / 'config' / 'robots' / 'fr3.yaml').read_text())
    assert isinstance(data, dict)
    return copy.deepcopy(data)


def _set(data: dict[str, object], path: tuple[object, ...], value: object) -> None:
    target: object = data
    for key in path[:-1]:
        target = target[key]  # type: ignore[index]
    if value is DELETE:
        del target[path[-1]]  # type: ignore[attr-defined]
    else:
        target[path[-1]] = value  # type: ignore[index]


DELETE = object()
BROKEN = [
    (('joints', 3, 'limits', 'lower_rad'), 0.0, 'joints[3].limits.lower_rad'),
    (('joints', 3, 'limits', 'lower_rad'), -0.1518, 'joints[3].limits.lower_rad'),
    (('joints',), DELETE, 'joints'),
    (('joints',), [], 'joints'),
    (('home_rad',), [0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 3.5], 'home_rad'),
    (('home_rad',), [0.0] * 7, 'home_rad'),  # joint 4 must be negative, joint 6 > 0.54
    (('home_rad',), [0.0] * 6, 'home_rad'),
    (('joints', 0, 'limits', 'velocity_rad_s'), 0, 'joints[0].limits.velocity_rad_s'),
    (('joints', 2, 'dh', 'a_m'), DELETE, 'joints[2].dh.a_m'),
    (('joints', 2, 'dh', 'd_m'), 'x', 'joints[2].dh.d_m'),
    (('joints', 1, 'name'), 'fr3_joint1', 'joints'),
    (('dh_convention',), 'craig', 'dh_convention'),
    (('gripper', 'joints'), ['fr3_finger_joint1'], 'gripper.joints'),
    (('gripper', 'max_width_m'), -0.08, 'gripper.max_width_m'),
    (('tcp', 'xyz_m'), [0.0, 0.0], 'tcp.xyz_m'),
    (('controllers',), DELETE, 'controllers'),
]


@pytest.mark.parametrize(('path', 'value', 'field'), BROKEN)
def test_broken_description_names_the_field(path: tuple[object, ...], value: object,
                                            field: str) -> None:
    data = fr3_data()
    assert robot_from_dict(data).name == 'fr3'  # the unbroken file is fine
    _set(data, path, value)
    with pytest.raises(RobotDescriptionError) as error:
        robot_from_dict(data)
    assert error.value.field == field
    assert str(error.value).startswith(f'{field}: ')


def test_broken_description_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    data = fr3_data()
    _set(data, ('joints', 3, 'limits', 'lower_rad'), 1.0)
    path = tmp_path / 'my_fr3.yaml'
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RobotDescriptionError) as error:
        load_robot(path)
    assert error.value.field == f'{path}: joints[3].limits.lower_rad'
    assert 'must be below upper_rad' in str(error.value)


def test_unreadable_description_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / 'broken.yaml'
    path.write_text('joints: [unclosed\n')
    with pytest.raises(RobotDescriptionError, match='not valid YAML'):
        load_robot(path)
    with pytest.raises(RobotDescriptionError, match='cannot read'):
        load_robot(tmp_path / 'missing.yaml')
