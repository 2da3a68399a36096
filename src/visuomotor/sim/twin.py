"""The MuJoCo twin: physics, the robot's controllers and the cameras, on simulated time.

`Twin.step(duration)` advances simulated time by whole physics steps and applies the
controllers at every step, so what happens depends only on simulated time, never on how long
rendering or the host takes. The ROS node (visuomotor.ros.sim_node) wraps this class.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from visuomotor.sim import mujoco_gl  # noqa: F401  (sets MUJOCO_GL before mujoco loads)

# isort: split
import mujoco
import numpy as np
import numpy.typing as npt

from visuomotor.cameras.intrinsics import CameraIntrinsics
from visuomotor.robots.kinematics import tcp_pose
from visuomotor.robots.transforms import (
    Matrix,
    invert,
    matrix_from_quat,
    quat_from_matrix,
    rot_z,
    rotation_from_vector,
    translation,
)
from visuomotor.sim.arm_controller import ArmController
from visuomotor.sim.config import SceneConfig
from visuomotor.sim.scene import OPTICAL_TO_MUJOCO, SceneNames, build_mjcf, joint_gains

Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class JointStateSample:
    """Measured joints, as sensor_msgs/JointState carries them (arm, then fingers)."""

    stamp_s: float
    names: tuple[str, ...]
    positions: npt.NDArray[np.float64]
    velocities: npt.NDArray[np.float64]
    efforts: npt.NDArray[np.float64]


def _pose(position: npt.ArrayLike, rotation: npt.ArrayLike) -> Matrix:
    pose = np.eye(4)
    pose[:3, :3] = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    pose[:3, 3] = np.asarray(position, dtype=np.float64)
    return pose


class Twin:
    """A simulated arm, gripper, table-top task and cameras.

    Args:
        config: the scene (robot, cameras, task, board).
    """

    def __init__(self, config: SceneConfig) -> None:
        self.config = config
        self.robot = config.robot
        self.names = SceneNames(config.robot)
        xml, assets = build_mjcf(config)
        self.model = mujoco.MjModel.from_xml_string(xml, assets)
        self.data = mujoco.MjData(self.model)
        model = self.model
        self._arm_qpos = np.array([model.joint(n).qposadr[0] for n in self.robot.joint_names])
        self._arm_dof = np.array([model.joint(n).dofadr[0] for n in self.robot.joint_names])
        fingers = self.robot.gripper.joint_names
        self._finger_qpos = np.array([model.joint(n).qposadr[0] for n in fingers])
        self._finger_dof = np.array([model.joint(n).dofadr[0] for n in fingers])
        self._arm_actuators = np.array([model.actuator(n).id for n in self.robot.joint_names])
        self._gripper_actuator = model.actuator(self.names.gripper_actuator).id
        self._velocity_feedforward = np.array([kv / kp for kp, kv in joint_gains(self.robot)])
        object_joint = model.joint(self.names.object_joint)
        self._object_qpos = int(object_joint.qposadr[0])
        self._object_dof = int(object_joint.dofadr[0])
        self._tcp_site = model.site(self.names.tcp_site).id
        self._camera_ids = {c.name: model.camera(c.name).id for c in config.cameras}
        self._nominal_cameras = {name: (model.cam_pos[i].copy(), model.cam_quat[i].copy())
                                 for name, i in self._camera_ids.items()}
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._scene_option = mujoco.MjvOption()
        self.base_pose = config.base_pose()
        self.controller = ArmController(self.robot, self.robot.home_rad, 0.0)
        self.reset()

    # -- state ---------------------------------------------------------------------------

    @property
    def time_s(self) -> float:
        """Simulated time in seconds."""
        return float(self.data.time)

    @property
    def timestep_s(self) -> float:
        """Physics step."""
        return float(self.model.opt.timestep)

    def reset(self, arm_positions: Sequence[float] | None = None,
              object_xy_yaw: tuple[float, float, float] | None = None,
              gripper_width_m: float | None = None) -> None:
        """Reset physics and time to zero with the arm at `arm_positions` (default: home)."""
        mujoco.mj_resetData(self.model, self.data)
        q = np.asarray(self.robot.home_rad if arm_positions is None else arm_positions,
                       dtype=np.float64)
        if not self.robot.within_limits(q):
            raise ValueError(f'reset positions {list(q)} are outside the limits of '
                             f'{self.robot.name}')
        width = self.robot.gripper.max_width_m if gripper_width_m is None else gripper_width_m
        self.data.qpos[self._arm_qpos] = q
        self.data.qpos[self._finger_qpos] = width / 2
        if object_xy_yaw is not None:
            self.set_object_pose(*object_xy_yaw)
        self.controller.reset(q, 0.0, width)
        self._apply_controls()
        mujoco.mj_forward(self.model, self.data)

    def set_object_pose(self, x: float, y: float, yaw_rad: float) -> None:
        """Put the object flat on the table at (x, y) with a yaw, at rest."""
        half = self.config.task.object_size_m / 2
        quat = quat_from_matrix(rot_z(yaw_rad))
        self.data.qpos[self._object_qpos:self._object_qpos + 7] = [x, y, half + 1e-4, *quat]
        self.data.qvel[self._object_dof:self._object_dof + 6] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def step(self, duration_s: float) -> None:
        """Advance simulated time by `duration_s`, rounded to whole physics steps.

        A duration under half a step does nothing: pass multiples of `timestep_s`
        (Stepper does).
        """
        steps = max(int(round(duration_s / self.timestep_s)), 0)
        for _ in range(steps):
            self._apply_controls()
            mujoco.mj_step(self.model, self.data)

    def _apply_controls(self) -> None:
        now = self.time_s
        commanded = self.controller.sample(now)
        # Position servo with velocity feed-forward: kp (q_d - q) + kv (v_d - v).
        self.data.ctrl[self._arm_actuators] = (commanded.positions
                                               + self._velocity_feedforward
                                               * commanded.velocities)
        self.data.ctrl[self._gripper_actuator] = self.controller.gripper_width(now) / 2

    def joint_state(self) -> JointStateSample:
        """Measured arm and finger joints (finger position = half the opening)."""
        qpos = np.concatenate([self.data.qpos[self._arm_qpos],
                               self.data.qpos[self._finger_qpos]])
        qvel = np.concatenate([self.data.qvel[self._arm_dof], self.data.qvel[self._finger_dof]])
        effort = np.concatenate([self.data.actuator_force[self._arm_actuators],
                                 np.full(2, self.data.actuator_force[self._gripper_actuator])])
        return JointStateSample(self.time_s,
                                self.robot.joint_names + self.robot.gripper.joint_names,
                                qpos.copy(), qvel.copy(), effort.copy())

    def arm_positions(self) -> npt.NDArray[np.float64]:
        """Measured arm joint positions."""
        return np.array(self.data.qpos[self._arm_qpos])

    def gripper_width_m(self) -> float:
        """Measured opening between the fingers."""
        return float(np.sum(self.data.qpos[self._finger_qpos]))

    def tcp_pose_world(self) -> Matrix:
        """Measured TCP pose in the world, from MuJoCo (4x4)."""
        return _pose(self.data.site_xpos[self._tcp_site], self.data.site_xmat[self._tcp_site])

    def tcp_pose_fk(self, arm_positions: npt.ArrayLike | None = None) -> Matrix:
        """TCP pose in the world from the pure FK (what the real stack computes)."""
        q = self.arm_positions() if arm_positions is None else arm_positions
        return np.asarray(self.base_pose @ tcp_pose(self.robot, q))

    def object_pose(self) -> Matrix:
        """Object pose in the world (4x4)."""
        q = self.data.qpos[self._object_qpos:self._object_qpos + 7]
        return _pose(q[:3], matrix_from_quat(q[3:]))

    def body_pose(self, name: str) -> Matrix:
        """World pose of any body of the model."""
        body = self.data.body(name)
        return _pose(body.xpos, body.xmat)

    # -- cameras -------------------------------------------------------------------------

    @property
    def camera_names(self) -> tuple[str, ...]:
        """Cameras in configuration order."""
        return tuple(c.name for c in self.config.cameras)

    def camera_intrinsics(self, name: str) -> CameraIntrinsics:
        """Intrinsics of a camera (what its camera_info says; exact for the render)."""
        return self.config.camera(name).intrinsics()

    def camera_pose_world(self, name: str) -> Matrix:
        """Actual optical-frame pose of a camera in the world, perturbations included."""
        i = self._camera_ids[name]
        return np.asarray(_pose(self.data.cam_xpos[i], self.data.cam_xmat[i])
                          @ OPTICAL_TO_MUJOCO)

    def camera_pose_nominal(self, name: str) -> Matrix:
        """Optical-frame pose in its mount frame as configured (what calibration recorded)."""
        return self.config.camera(name).optical_pose()

    def perturb_camera(self, name: str, shift_m: Sequence[float] = (0.0, 0.0, 0.0),
                       rotate_deg: Sequence[float] = (0.0, 0.0, 0.0)) -> None:
        """Move a camera away from its configured pose, in its own optical frame.

        Args:
            name: camera.
            shift_m: translation along the optical x (right), y (down), z (forward) axes.
            rotate_deg: rotation vector in degrees about the optical axes (e.g. (0, 0.5, 0)
                pans by 0.5 deg). Replaces any earlier perturbation of this camera.
        """
        nominal = self.camera_pose_nominal(name)
        rotation = np.eye(4)
        rotation[:3, :3] = rotation_from_vector([math.radians(a) for a in rotate_deg])
        actual = nominal @ translation(*shift_m) @ rotation @ OPTICAL_TO_MUJOCO
        i = self._camera_ids[name]
        self.model.cam_pos[i] = actual[:3, 3]
        self.model.cam_quat[i] = quat_from_matrix(actual)
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)

    def clear_perturbations(self) -> None:
        """Put every camera back at its configured pose."""
        for name, (position, quat) in self._nominal_cameras.items():
            i = self._camera_ids[name]
            self.model.cam_pos[i] = position
            self.model.cam_quat[i] = quat
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)

    def render(self, names: Iterable[str] | None = None) -> dict[str, Image]:
        """RGB images (H, W, 3) of the given cameras (default: all), at the current state."""
        images: dict[str, Image] = {}
        for name in self.camera_names if names is None else names:
            camera = self.config.camera(name)
            key = (camera.width, camera.height)
            renderer = self._renderers.get(key)
            if renderer is None:
                renderer = mujoco.Renderer(self.model, camera.height, camera.width)
                self._renderers[key] = renderer
            renderer.update_scene(self.data, camera=name, scene_option=self._scene_option)
            images[name] = renderer.render()
        return images

    def close(self) -> None:
        """Release the GL contexts."""
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    def __enter__(self) -> Twin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def world_to_base(self, pose_world: Matrix) -> Matrix:
        """A world pose expressed in the robot base frame."""
        return np.asarray(invert(self.base_pose) @ pose_world)
