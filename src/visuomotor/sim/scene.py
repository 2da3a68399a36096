"""Builds the twin's MuJoCo model (MJCF text + assets) from a SceneConfig.

The arm's bodies are placed with the exact fixed transforms of
`visuomotor.robots.kinematics.fixed_transforms`, so MuJoCo's body frames are the DH joint
frames, the `tcp` site is the TCP, and forward kinematics matches to float precision.
Geometry is simple (capsules and housings in the vendor's colours) because software GL
renders it in ~1.3 ms per 96x96 frame; shadows are off by default (a 4096 px shadow map costs
~25 ms per frame on the 2-core build machine, see bench/results/sim.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

import numpy as np

from visuomotor.robots.description import RobotDescription
from visuomotor.robots.kinematics import fixed_transforms
from visuomotor.robots.transforms import Matrix, from_xyz_rpy, quat_from_matrix
from visuomotor.sim.board import board_size_m, board_texture_png
from visuomotor.sim.config import CameraConfig, SceneConfig

TABLE_HEIGHT_M = 0.75
# MuJoCo cameras look along -z with y up; the optical frame looks along +z with y down.
OPTICAL_TO_MUJOCO = np.diag([1.0, -1.0, -1.0, 1.0])
HIDDEN_GROUP = 4  # sites and helper geoms not drawn by the renderer


@dataclass(frozen=True)
class SceneNames:
    """Names of the model elements the twin addresses."""

    robot: RobotDescription

    @property
    def prefix(self) -> str:
        """Body-name prefix of the arm (`fr3`, `ur5e`, ...)."""
        return self.robot.name

    def joint_body(self, index: int) -> str:
        """Body that rotates with arm joint `index` (0-based)."""
        return f'{self.prefix}_link{index + 1}'

    flange = 'flange'
    hand = 'hand'
    tcp_site = 'tcp'
    object_body = 'object'
    object_joint = 'object_joint'
    target_geom = 'target'
    board_body = 'board'
    gripper_actuator = 'gripper'


def _vec(values: object) -> str:
    return ' '.join(f'{float(v):.17g}' for v in np.ravel(values))  # type: ignore[call-overload]


def _pose_attrs(pose: Matrix) -> str:
    return f'pos="{_vec(pose[:3, 3])}" quat="{_vec(quat_from_matrix(pose))}"'


def _segment_points(robot: RobotDescription, index: int) -> list[Matrix]:
    """Points (in joint frame `index`) that the link to the next frame passes through."""
    chain = fixed_transforms(robot)
    if index + 1 < robot.dof:
        end = chain.joint_offsets[index + 1][:3, 3]
    else:
        end = chain.flange[:3, 3]
    if robot.dh_convention == 'modified':
        row = robot.joints[index + 1].dh if index + 1 < robot.dof else robot.flange
        corner = np.array([row.a_m, 0.0, 0.0])
    else:
        corner = np.array([0.0, 0.0, robot.joints[index].dh.d_m])
    return [np.zeros(3), corner, end]


def _link_geoms(robot: RobotDescription, index: int) -> list[str]:
    radius = robot.link_radius_m
    color = _vec(robot.color_rgba)
    joint_color = _vec(robot.joint_color_rgba)
    geoms = [f'<geom class="arm" type="cylinder" size="{radius:.4f} {radius * 0.95:.4f}" '
             f'rgba="{joint_color}"/>']
    points = _segment_points(robot, index)
    for start, end in zip(points[:-1], points[1:], strict=True):
        if np.linalg.norm(end - start) > 1e-6:
            geoms.append(f'<geom class="arm" type="capsule" size="{radius * 0.8:.4f}" '
                         f'fromto="{_vec(start)} {_vec(end)}" rgba="{color}"/>')
    return geoms


def _camera_xml(camera: CameraConfig) -> str:
    mujoco_pose = camera.optical_pose() @ OPTICAL_TO_MUJOCO
    # MuJoCo's principal offset is measured from the image centre in GL pixel coordinates
    # (centres at +0.5), with the sign of its frustum shift: cx = W/2 - 0.5 - offset_x.
    offset_x = camera.width / 2.0 - 0.5 - camera.cx_px
    offset_y = camera.height / 2.0 - 0.5 - camera.cy_px
    return (f'<camera name={quoteattr(camera.name)} {_pose_attrs(mujoco_pose)} '
            f'resolution="{camera.width} {camera.height}" sensorsize="1 1" '
            f'focalpixel="{camera.fx_px!r} {camera.fy_px!r}" '
            f'principalpixel="{offset_x!r} {offset_y!r}"/>')


def _gripper_xml(config: SceneConfig, names: SceneNames) -> str:
    robot = config.robot
    gripper = robot.gripper
    tcp_rotation = from_xyz_rpy((0.0, 0.0, 0.0), robot.tcp_rpy_rad)
    tcp_in_hand = tcp_rotation[:3, :3].T @ np.asarray(robot.tcp_xyz_m)
    length = float(tcp_in_hand[2])
    finger_half = (0.009, 0.007, 0.028)
    finger_z = length - finger_half[2] + 0.004
    palm_top = max(length - 2 * finger_half[2] - 0.01, 0.03)
    palm_half_y = gripper.max_width_m / 2 + 2 * finger_half[1] + 0.01
    color = _vec(robot.color_rgba)
    dark = _vec(robot.joint_color_rgba)
    fingers = []
    for side, joint in zip((1, -1), gripper.joint_names, strict=True):
        fingers.append(
            f'<body name="finger_{"left" if side > 0 else "right"}">'
            f'<joint name={quoteattr(joint)} type="slide" axis="0 {side} 0" '
            f'range="0 {gripper.max_width_m / 2!r}" armature="0.01" damping="2"/>'
            f'<geom class="finger" type="box" size="{_vec(finger_half)}" '
            f'pos="0 {side * finger_half[1]:.4f} {finger_z:.4f}" rgba="{dark}"/></body>')
    cameras = ''.join(_camera_xml(c) for c in config.cameras if c.mount == 'hand')
    return (
        f'<body name="{names.hand}" {_pose_attrs(tcp_rotation)} gravcomp="1">'
        f'<geom class="hand" type="box" size="0.03 {palm_half_y:.4f} {palm_top / 2:.4f}" '
        f'pos="0 0 {palm_top / 2:.4f}" rgba="{color}"/>'
        f'<site name="{names.tcp_site}" pos="{_vec(tcp_in_hand)}" size="0.005" '
        f'group="{HIDDEN_GROUP}"/>'
        + ''.join(fingers) + '</body>' + cameras)


def _board_xml(config: SceneConfig) -> tuple[str, str]:
    """(asset xml, body xml) of the optional calibration board."""
    if config.board is None:
        return '', ''
    width, height = board_size_m(config.board)
    vertices = f'0 0 0 {width!r} 0 0 {width!r} {height!r} 0 0 {height!r} 0'
    asset = ('<texture name="board" type="2d" file="board.png"/>'
             '<material name="board" texture="board" specular="0" shininess="0"/>'
             f'<mesh name="board" vertex="{vertices}" face="0 2 1 0 3 2" '
             'texcoord="0 0 1 0 1 1 0 1" inertia="shell"/>')
    # The quad is the printed face at board z = 0; a backing slab sits behind it (+z).
    body = (f'<body name="board" {_pose_attrs(config.board.pose())}>'
            '<geom type="mesh" mesh="board" material="board" contype="0" conaffinity="0" '
            'mass="0.01"/>'
            f'<geom type="box" size="{width / 2!r} {height / 2!r} 0.002" '
            f'pos="{width / 2!r} {height / 2!r} 0.0021" rgba="0.9 0.9 0.9 1" contype="0" '
            'conaffinity="0" mass="0.05"/></body>')
    return asset, body


def build_mjcf(config: SceneConfig) -> tuple[str, dict[str, bytes]]:
    """The scene as MJCF text plus the asset files it references."""
    robot = config.robot
    names = SceneNames(robot)
    chain = fixed_transforms(robot)
    task = config.task
    assets: dict[str, bytes] = {}
    board_asset, board_body = _board_xml(config)
    if config.board is not None:
        assets['board.png'] = board_texture_png(config.board)

    # The arm: nested bodies, innermost last.
    closing = ''
    body_xml = ''
    for i, joint in enumerate(robot.joints):
        body_xml += (
            f'<body name="{names.joint_body(i)}" {_pose_attrs(chain.joint_offsets[i])} '
            f'gravcomp="1"><joint name={quoteattr(joint.name)} '
            f'range="{joint.lower_rad!r} {joint.upper_rad!r}" armature="0.1" damping="1"/>'
            + ''.join(_link_geoms(robot, i)))
        closing += '</body>'
    flange_body = (f'<body name="{names.flange}" {_pose_attrs(chain.flange)} gravcomp="1">'
                   + _gripper_xml(config, names)
                   + (board_body if config.board and config.board.mount == 'hand' else '')
                   + '</body>')
    base_radius = robot.link_radius_m * 1.25
    base_geoms = (f'<geom class="arm" type="cylinder" size="{base_radius:.4f} 0.02" '
                  f'pos="0 0 0.02" rgba="{_vec(robot.joint_color_rgba)}"/>')
    first_joint = chain.joint_offsets[0][:3, 3]
    if np.linalg.norm(first_joint) > 1e-6:  # Franka: a column up to joint 1; UR: none
        base_geoms += (f'<geom class="arm" type="capsule" '
                       f'size="{robot.link_radius_m * 0.9:.4f}" fromto="0 0 0 '
                       f'{_vec(first_joint)}" rgba="{_vec(robot.color_rgba)}"/>')
    arm_xml = (f'<body name="{names.prefix}_base" {_pose_attrs(config.base_pose())}>'
               + base_geoms + body_xml + flange_body + closing + '</body>')

    actuators = ''
    for joint, (kp, kv) in zip(robot.joints, joint_gains(robot), strict=True):
        actuators += (f'<position name={quoteattr(joint.name)} joint={quoteattr(joint.name)} '
                      f'kp="{kp!r}" kv="{kv!r}" forcerange="{-joint.max_effort_nm!r} '
                      f'{joint.max_effort_nm!r}"/>')
    finger_left, finger_right = robot.gripper.joint_names
    actuators += (f'<position name="{names.gripper_actuator}" joint={quoteattr(finger_left)} '
                  f'kp="2000" kv="40" ctrlrange="0 {robot.gripper.max_width_m / 2!r}" '
                  f'forcerange="{-robot.gripper.max_force_n!r} '
                  f'{robot.gripper.max_force_n!r}"/>')

    half = task.object_size_m / 2
    table_x, table_y = config.table_center_xy_m
    table_half = (config.table_size_m[0] / 2, config.table_size_m[1] / 2)
    world_cameras = ''.join(_camera_xml(c) for c in config.cameras if c.mount == 'world')
    max_w = max([640] + [c.width for c in config.cameras])
    max_h = max([480] + [c.height for c in config.cameras])
    shadow = 1024 if config.shadows else 0
    legs = ''.join(
        f'<geom type="box" size="0.03 0.03 {TABLE_HEIGHT_M / 2 - 0.02:.4f}" '
        f'pos="{table_x + sx * (table_half[0] - 0.05):.4f} '
        f'{table_y + sy * (table_half[1] - 0.05):.4f} {-TABLE_HEIGHT_M / 2 - 0.02:.4f}" '
        f'material="table_leg" contype="0" conaffinity="0"/>'
        for sx in (-1, 1) for sy in (-1, 1))
    xml = f"""<mujoco model="visuomotor_twin_{names.prefix}">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{config.timestep_s!r}" integrator="implicitfast" cone="elliptic"
          impratio="10"/>
  <visual>
    <global offwidth="{max_w}" offheight="{max_h}"/>
    <quality shadowsize="{shadow}" offsamples="0"/>
    <headlight ambient="0.35 0.35 0.35" diffuse="0.35 0.35 0.35" specular="0.05 0.05 0.05"/>
  </visual>
  <asset>
    <texture name="floor" type="2d" builtin="checker" rgb1="0.32 0.33 0.36"
             rgb2="0.27 0.28 0.31" width="256" height="256"/>
    <material name="floor" texture="floor" texrepeat="8 8"/>
    <material name="table" rgba="0.62 0.5 0.38 1" specular="0.1"/>
    <material name="table_leg" rgba="0.3 0.3 0.32 1"/>
    {board_asset}
  </asset>
  <default>
    <default class="arm"><geom contype="0" conaffinity="0" density="400"/></default>
    <default class="hand">
      <geom contype="1" conaffinity="1" density="400" friction="1 0.005 0.0001"/>
    </default>
    <default class="finger">
      <geom contype="1" conaffinity="1" condim="4" friction="1.5 0.01 0.001" density="800"
            solref="0.004 1"/>
    </default>
  </default>
  <worldbody>
    <light name="key" pos="0.6 -0.4 1.6" dir="-0.3 0.25 -1" directional="true"
           diffuse="0.55 0.55 0.55" specular="0.1 0.1 0.1"
           castshadow="{str(config.shadows).lower()}"/>
    <geom name="floor" type="plane" size="3 3 0.1" pos="0 0 {-TABLE_HEIGHT_M - 0.04:.4f}"
          material="floor"/>
    <geom name="table" type="box" size="{table_half[0]!r} {table_half[1]!r} 0.02"
          pos="{table_x!r} {table_y!r} -0.02" material="table" friction="0.8 0.005 0.0001"/>
    {legs}
    <geom name="{names.target_geom}" type="box"
          size="{task.target_half_m!r} {task.target_half_m!r} 0.0005" pos="0.5 0.15 0.0005"
          rgba="{_vec(task.target_rgba)}" contype="0" conaffinity="0"/>
    <body name="{names.object_body}" pos="0.5 -0.1 {half!r}">
      <freejoint name="{names.object_joint}"/>
      <geom name="object" type="box" size="{half!r} {half!r} {half!r}"
            mass="{task.object_mass_kg!r}" rgba="{_vec(task.object_rgba)}" condim="4"
            friction="1.2 0.01 0.001"/>
    </body>
    {arm_xml}
    {board_body if config.board and config.board.mount == 'world' else ''}
    {world_cameras}
  </worldbody>
  <equality>
    <joint joint1={quoteattr(finger_right)} joint2={quoteattr(finger_left)} polycoef="0 1 0 0 0"/>
  </equality>
  <actuator>{actuators}</actuator>
</mujoco>
"""
    return xml, assets


def joint_gains(robot: RobotDescription) -> list[tuple[float, float]]:
    """Position-servo (stiffness, damping) per arm joint, scaled by the joint's size.

    The twin feeds velocity forward through the same numbers (kv / kp).
    """
    gains = []
    for joint in robot.joints:
        kp = 60.0 * joint.max_effort_nm
        gains.append((kp, 2.0 * math.sqrt(kp * 0.5)))
    return gains
