"""The MuJoCo twin: camera geometry against CameraInfo, perturbations, control and time.

Rendering uses MuJoCo's offscreen GL (MUJOCO_GL=egl, set by scripts/env.sh). The camera
checks are what a user calibrating against the twin does: render a ChArUco board, detect its
corners with OpenCV and compare them with the ground-truth corners projected through the
published intrinsics (camera_info) and the camera pose.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator

import cv2
import numpy as np
import pytest

from visuomotor.robots.kinematics import flange_pose
from visuomotor.robots.transforms import invert, rotation_from_vector, translation
from visuomotor.sim.board import board_size_m, charuco_board, corners_in_world
from visuomotor.sim.config import BoardConfig, SceneConfig, load_scene
from visuomotor.sim.joint_trajectory import CommandError
from visuomotor.sim.twin import Twin
from visuomotor.trajectory import JointTrajectoryCommand

RIGS = ['fr3', 'ur5e']
# Large squares so that the scene camera, ~1.1 m away, sees ~20 px per square at 640x480.
SCENE_BOARD = BoardConfig(xyz_m=(0.45, 0.1, 0.002), squares=(5, 7), square_m=0.06,
                          marker_m=0.045)
MakeTwin = Callable[[SceneConfig], Twin]


@pytest.fixture
def make_twin() -> Iterator[MakeTwin]:
    twins: list[Twin] = []

    def make(config: SceneConfig) -> Twin:
        twin = Twin(config)
        twins.append(twin)
        return twin

    yield make
    for twin in twins:
        twin.close()


def detect(image: np.ndarray, board: BoardConfig) -> tuple[np.ndarray, np.ndarray]:
    """(ids, pixel corners (N, 2)) of the ChArUco corners OpenCV finds, sorted by id."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    corners, ids, _, _ = cv2.aruco.CharucoDetector(charuco_board(board)).detectBoard(gray)
    if ids is None:
        return np.zeros(0, dtype=int), np.zeros((0, 2))
    order = np.argsort(ids.ravel())
    return ids.ravel()[order], corners.reshape(-1, 2)[order]


def project(points_world: np.ndarray, camera_matrix: np.ndarray,
            camera_pose_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (N, 2), depths (N,)) of world points seen by a pinhole camera (OpenCV)."""
    world_to_camera = invert(camera_pose_world)
    rvec, _ = cv2.Rodrigues(world_to_camera[:3, :3])
    pixels, _ = cv2.projectPoints(points_world, rvec, world_to_camera[:3, 3], camera_matrix,
                                  np.zeros(5))
    depths = (points_world @ world_to_camera[:3, :3].T + world_to_camera[:3, 3])[:, 2]
    return pixels.reshape(-1, 2), depths


def reprojection_errors(twin: Twin, camera: str, board: BoardConfig,
                        image: np.ndarray) -> np.ndarray:
    ids, detected = detect(image, board)
    total = len(charuco_board(board).getChessboardCorners())
    assert len(ids) >= max(6, total // 2), f'{camera}: only {len(ids)}/{total} corners found'
    truth = corners_in_world(board, twin.body_pose('board'))[ids]
    expected, depths = project(truth, twin.camera_intrinsics(camera).camera_matrix(),
                               twin.camera_pose_world(camera))
    assert np.all(depths > 0)
    return np.asarray(np.linalg.norm(detected - expected, axis=1))


def scene_with_board(rig: str) -> SceneConfig:
    return dataclasses.replace(load_scene(rig).with_resolution(640, 480), board=SCENE_BOARD)


def clear_the_board(twin: Twin) -> None:
    """Put the cube where it hides nothing."""
    twin.set_object_pose(0.05, 0.5, 0.0)


# -- (a) projection through camera_info and the camera pose ----------------------------------


@pytest.mark.parametrize('rig', RIGS)
def test_scene_camera_sees_the_board_where_camera_info_says(rig: str,
                                                            make_twin: MakeTwin) -> None:
    twin = make_twin(scene_with_board(rig))
    clear_the_board(twin)
    info = twin.camera_intrinsics('scene_camera')
    assert (info.width, info.height) == (640, 480)
    assert info.fx != info.fy  # the anisotropic scaling of the 96x96 camera
    image = twin.render(['scene_camera'])['scene_camera']
    assert image.shape == (480, 640, 3)
    errors = reprojection_errors(twin, 'scene_camera', SCENE_BOARD, image)
    assert errors.mean() < 0.3 and errors.max() < 1.0, errors


# Offsets from home: the base joint turned, so the wrist camera looks somewhere new.
WRIST_POSES = {'fr3': (0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
               'ur5e': (-0.3, 0.0, 0.0, 0.0, 0.0, 0.4)}


def wrist_scene(rig: str, make_twin: MakeTwin) -> tuple[SceneConfig, BoardConfig, np.ndarray]:
    """The rig at 640x640 with a board on the table where the wrist camera looks."""
    base = load_scene(rig).with_resolution(640, 640)
    q = np.array(base.robot.home_rad) + WRIST_POSES[rig]
    probe = make_twin(base)
    probe.reset(arm_positions=q)
    camera = probe.camera_pose_world('wrist_camera')
    # Where the optical axis meets the table top (z = 0).
    hit = camera[:3, 3] - camera[2, 3] / camera[2, 2] * camera[:3, 2]
    board = BoardConfig(square_m=0.04, marker_m=0.03)
    width, height = board_size_m(board)
    # Printed face up (board z down): board x along world x, board y along world -y.
    board = dataclasses.replace(board, xyz_m=(hit[0] - width / 2, hit[1] + height / 2, 0.002))
    return dataclasses.replace(base, board=board), board, q


@pytest.mark.parametrize('rig', RIGS)
def test_wrist_camera_sees_the_board_where_camera_info_says(rig: str,
                                                            make_twin: MakeTwin) -> None:
    config, board, q = wrist_scene(rig, make_twin)
    twin = make_twin(config)
    twin.reset(arm_positions=q)
    clear_the_board(twin)
    # The wrist camera rides on the flange: its pose is FK(q) times its configured mount pose.
    expected = twin.base_pose @ flange_pose(twin.robot, q) @ twin.camera_pose_nominal(
        'wrist_camera')
    np.testing.assert_allclose(twin.camera_pose_world('wrist_camera'), expected, atol=1e-9)
    image = twin.render(['wrist_camera'])['wrist_camera']
    errors = reprojection_errors(twin, 'wrist_camera', board, image)
    assert errors.mean() < 0.3 and errors.max() < 1.0, errors


# -- (b) perturbations -------------------------------------------------------------------------


def perturbation(shift: tuple[float, float, float],
                 rotate_deg: tuple[float, float, float]) -> np.ndarray:
    rotation = np.eye(4)
    rotation[:3, :3] = rotation_from_vector([math.radians(a) for a in rotate_deg])
    return np.asarray(translation(*shift) @ rotation)


@pytest.mark.parametrize('rig', RIGS)
def test_perturbed_scene_camera_moves_the_image_as_expected(rig: str,
                                                            make_twin: MakeTwin) -> None:
    twin = make_twin(scene_with_board(rig))
    clear_the_board(twin)
    name = 'scene_camera'
    fx = twin.camera_intrinsics(name).fx
    nominal_pose = twin.camera_pose_world(name)
    np.testing.assert_allclose(nominal_pose, twin.camera_pose_nominal(name), atol=1e-12)
    nominal_image = twin.render([name])[name]
    ids0, pixels0 = detect(nominal_image, SCENE_BOARD)
    truth = corners_in_world(SCENE_BOARD, twin.body_pose('board'))[ids0]
    _, depths = project(truth, twin.camera_intrinsics(name).camera_matrix(), nominal_pose)

    # 3 mm to the right: the board moves left by fx * 0.003 / depth.
    twin.perturb_camera(name, shift_m=(0.003, 0.0, 0.0))
    np.testing.assert_allclose(twin.camera_pose_world(name),
                               nominal_pose @ perturbation((0.003, 0, 0), (0, 0, 0)),
                               atol=1e-9)
    image = twin.render([name])[name]
    ids1, pixels1 = detect(image, SCENE_BOARD)
    np.testing.assert_array_equal(ids1, ids0)
    shift = pixels1 - pixels0
    expected_u = -fx * 0.003 / depths
    assert np.abs(shift[:, 0] - expected_u).mean() < 0.1, (shift[:, 0], expected_u)
    assert np.abs(shift[:, 1]).mean() < 0.1
    assert reprojection_errors(twin, name, SCENE_BOARD, image).mean() < 0.3

    # Panned 0.5 deg about the optical y axis (replaces the shift): ~fx tan(0.5 deg) left.
    twin.perturb_camera(name, rotate_deg=(0.0, 0.5, 0.0))
    np.testing.assert_allclose(twin.camera_pose_world(name),
                               nominal_pose @ perturbation((0, 0, 0), (0, 0.5, 0)), atol=1e-9)
    image = twin.render([name])[name]
    ids2, pixels2 = detect(image, SCENE_BOARD)
    np.testing.assert_array_equal(ids2, ids0)
    pan = (pixels2 - pixels0)[:, 0].mean()
    assert pan == pytest.approx(-fx * math.tan(math.radians(0.5)), rel=0.1)
    assert reprojection_errors(twin, name, SCENE_BOARD, image).mean() < 0.3

    # Both at once compose as nominal @ T(shift) @ R(rotation).
    twin.perturb_camera(name, shift_m=(0.01, -0.02, 0.005), rotate_deg=(1.0, -2.0, 3.0))
    np.testing.assert_allclose(
        twin.camera_pose_world(name),
        nominal_pose @ perturbation((0.01, -0.02, 0.005), (1.0, -2.0, 3.0)), atol=1e-9)

    twin.clear_perturbations()
    np.testing.assert_allclose(twin.camera_pose_world(name), nominal_pose, atol=1e-12)
    np.testing.assert_array_equal(twin.render([name])[name], nominal_image)


@pytest.mark.parametrize('rig', RIGS)
def test_perturbed_wrist_camera_pose_is_the_nominal_one_times_the_delta(
        rig: str, make_twin: MakeTwin) -> None:
    twin = make_twin(load_scene(rig))
    q = np.array(twin.robot.home_rad) + 0.1
    twin.reset(arm_positions=q)
    mount = twin.base_pose @ flange_pose(twin.robot, q)
    nominal = mount @ twin.camera_pose_nominal('wrist_camera')
    np.testing.assert_allclose(twin.camera_pose_world('wrist_camera'), nominal, atol=1e-9)
    scene_before = twin.camera_pose_world('scene_camera')
    twin.perturb_camera('wrist_camera', shift_m=(0.0, 0.002, -0.001), rotate_deg=(0.3, 0, -1))
    delta = perturbation((0.0, 0.002, -0.001), (0.3, 0.0, -1.0))
    np.testing.assert_allclose(twin.camera_pose_world('wrist_camera'), nominal @ delta,
                               atol=1e-9)
    np.testing.assert_array_equal(twin.camera_pose_world('scene_camera'), scene_before)
    # The perturbation stays with the camera when the arm moves.
    twin.step(0.2)
    mount = twin.base_pose @ flange_pose(twin.robot, twin.arm_positions())
    np.testing.assert_allclose(
        twin.camera_pose_world('wrist_camera'),
        mount @ twin.camera_pose_nominal('wrist_camera') @ delta, atol=1e-6)
    twin.clear_perturbations()
    np.testing.assert_allclose(twin.camera_pose_world('wrist_camera'),
                               mount @ twin.camera_pose_nominal('wrist_camera'), atol=1e-6)


# -- (c) trajectory following -------------------------------------------------------------------


def alternating(dof: int) -> np.ndarray:
    return np.where(np.arange(dof) % 2 == 0, 1.0, -1.0)


def trajectory(twin: Twin, points: list[tuple[float, np.ndarray, np.ndarray | None]],
               ) -> JointTrajectoryCommand:
    return JointTrajectoryCommand(twin.robot.joint_names, tuple(
        (t, tuple(p), () if v is None else tuple(v), ()) for t, p, v in points))


@pytest.mark.parametrize('rig', RIGS)
def test_the_arm_follows_a_trajectory(rig: str, make_twin: MakeTwin) -> None:
    twin = make_twin(load_scene(rig))
    arm = twin.robot
    sign = alternating(arm.dof)
    home = np.array(arm.home_rad)
    final = home - 0.2 * sign
    twin.step(0.3)  # some time passes first: the trajectory is stamped 0 (start now)
    start = twin.time_s
    twin.controller.command_trajectory(trajectory(twin, [
        (0.8, home + 0.3 * sign, 0.2 * sign), (1.6, final, np.zeros(arm.dof))]), start)
    worst = 0.0
    while twin.time_s < start + 1.6 - 1e-9:
        twin.step(0.01)
        commanded = twin.controller.sample(twin.time_s).positions
        worst = max(worst, float(np.abs(twin.arm_positions() - commanded).max()))
    assert worst < 0.02
    assert np.abs(twin.arm_positions() - final).max() < 2e-3
    twin.step(0.5)
    assert np.abs(twin.arm_positions() - final).max() < 2e-3
    # The measured TCP is where the pure FK of the measured joints puts it.
    np.testing.assert_allclose(twin.tcp_pose_world(), twin.tcp_pose_fk(), atol=1e-6)


@pytest.mark.parametrize('rig', RIGS)
def test_replacing_a_trajectory_mid_motion_moves_the_arm_smoothly(rig: str,
                                                                  make_twin: MakeTwin) -> None:
    twin = make_twin(load_scene(rig))
    arm = twin.robot
    sign = alternating(arm.dof)
    home = np.array(arm.home_rad)
    twin.controller.command_trajectory(trajectory(twin, [
        (0.8, home + 0.3 * sign, 0.2 * sign), (1.6, home - 0.2 * sign, np.zeros(arm.dof))]),
        twin.time_s)
    twin.step(0.5)
    dt = twin.timestep_s
    commanded_before = twin.controller.sample(twin.time_s).positions
    target = home + 0.25
    twin.controller.command_trajectory(trajectory(twin, [(0.6, target, None)]), twin.time_s)
    np.testing.assert_allclose(twin.controller.sample(twin.time_s).positions,
                               commanded_before, atol=1e-12)
    previous = twin.arm_positions()
    end = twin.time_s + 1.2
    while twin.time_s < end:
        twin.step(dt)
        current = twin.arm_positions()
        assert np.all(np.abs(current - previous) <= arm.max_velocity_rad_s * dt), (
            f'a joint moved {np.abs(current - previous).max()} rad in one {dt} s step')
        previous = current
    assert np.abs(twin.arm_positions() - target).max() < 2e-3


# -- (d) a bad command changes nothing ---------------------------------------------------------


@pytest.mark.parametrize('rig', RIGS)
def test_a_nan_command_is_rejected_and_the_arm_holds_still(rig: str,
                                                            make_twin: MakeTwin) -> None:
    twin = make_twin(load_scene(rig))
    arm = twin.robot
    twin.step(0.2)
    held = twin.arm_positions()
    positions = list(arm.home_rad)
    positions[1] = math.nan
    with pytest.raises(CommandError) as error:
        twin.controller.command_trajectory(
            JointTrajectoryCommand(arm.joint_names, ((1.0, tuple(positions), (), ()),)),
            twin.time_s)
    assert error.value.field == 'points[0].positions'
    with pytest.raises(CommandError):
        twin.controller.command_positions(positions, twin.time_s)
    with pytest.raises(CommandError):
        twin.controller.command_gripper(math.nan, twin.time_s)
    width = twin.gripper_width_m()
    twin.step(0.5)
    assert np.abs(twin.arm_positions() - held).max() < 1e-3
    assert np.all(np.isfinite(twin.joint_state().positions))
    assert twin.gripper_width_m() == pytest.approx(width, abs=1e-3)


@pytest.mark.parametrize('rig', RIGS)
def test_a_nan_command_mid_motion_leaves_the_trajectory_running(rig: str,
                                                                make_twin: MakeTwin) -> None:
    reference, twin = make_twin(load_scene(rig)), make_twin(load_scene(rig))
    arm = twin.robot
    home = np.array(arm.home_rad)
    command = trajectory(twin, [(1.0, home + 0.2 * alternating(arm.dof), None)])
    for each in (reference, twin):
        each.controller.command_trajectory(command, each.time_s)
        each.step(0.4)
    bad = list(home)
    bad[0] = math.inf
    with pytest.raises(CommandError):
        twin.controller.command_positions(bad, twin.time_s)
    for each in (reference, twin):
        each.step(1.0)
    np.testing.assert_array_equal(twin.arm_positions(), reference.arm_positions())


# -- (e) simulated time and determinism ------------------------------------------------------


@pytest.mark.parametrize('rig', RIGS)
def test_step_advances_simulated_time_exactly(rig: str, make_twin: MakeTwin) -> None:
    twin = make_twin(load_scene(rig))
    assert twin.time_s == 0.0
    for i in range(1, 11):
        if i % 2:
            twin.render()
        twin.step(0.1)
        assert twin.time_s == pytest.approx(0.1 * i, abs=1e-9)
        assert twin.joint_state().stamp_s == twin.time_s
    before = twin.time_s
    twin.step(0.0049)  # rounded to whole physics steps (2 ms)
    assert twin.time_s - before == pytest.approx(0.004, abs=1e-9)
    twin.reset()
    assert twin.time_s == 0.0


def drive(twin: Twin, render: bool) -> None:
    """The same commands at the same simulated times, with or without rendering."""
    arm = twin.robot
    home = np.array(arm.home_rad)
    twin.reset(object_xy_yaw=(0.5, -0.05, 0.3))
    twin.controller.command_trajectory(trajectory(twin, [
        (0.6, home + 0.2 * alternating(arm.dof), None), (1.0, home, None)]), twin.time_s)
    twin.controller.command_gripper(0.02, twin.time_s)
    for _ in range(12):
        if render:
            twin.render()
        twin.step(0.1)


@pytest.mark.parametrize('rig', RIGS)
def test_two_twins_given_the_same_commands_end_in_the_same_state(rig: str,
                                                                 make_twin: MakeTwin) -> None:
    first, second = make_twin(load_scene(rig)), make_twin(load_scene(rig))
    drive(first, render=True)
    drive(second, render=False)
    assert first.time_s == second.time_s
    np.testing.assert_array_equal(first.data.qpos, second.data.qpos)
    np.testing.assert_array_equal(first.data.qvel, second.data.qvel)
    np.testing.assert_array_equal(first.object_pose(), second.object_pose())
    # A reset and a replay reproduce it again.
    final = first.data.qpos.copy()
    drive(first, render=False)
    np.testing.assert_array_equal(first.data.qpos, final)


# -- (f) joint state ---------------------------------------------------------------------------


@pytest.mark.parametrize('rig', RIGS)
def test_joint_state_lists_the_arm_then_the_fingers(rig: str, make_twin: MakeTwin) -> None:
    twin = make_twin(load_scene(rig))
    arm = twin.robot
    twin.controller.command_gripper(0.03, twin.time_s)
    twin.step(1.0)
    state = twin.joint_state()
    assert state.names == arm.joint_names + arm.gripper.joint_names
    assert len(state.positions) == len(state.velocities) == len(state.efforts) == arm.dof + 2
    np.testing.assert_array_equal(state.positions[:arm.dof], twin.arm_positions())
    # Each finger is at half the opening.
    np.testing.assert_allclose(state.positions[arm.dof:], twin.gripper_width_m() / 2,
                               atol=1e-6)
    assert twin.gripper_width_m() == pytest.approx(0.03, abs=1e-3)
    assert np.all(np.isfinite(state.efforts))


@pytest.mark.parametrize('rig', RIGS)
def test_reset_puts_the_arm_where_asked_and_refuses_positions_outside_the_limits(
        rig: str, make_twin: MakeTwin) -> None:
    twin = make_twin(load_scene(rig))
    arm = twin.robot
    q = np.array(arm.home_rad) + 0.1
    twin.step(0.3)
    twin.reset(arm_positions=q, gripper_width_m=0.02)
    assert twin.time_s == 0.0
    np.testing.assert_array_equal(twin.arm_positions(), q)
    assert twin.gripper_width_m() == pytest.approx(0.02)
    np.testing.assert_array_equal(twin.controller.sample(0.0).positions, q)
    with pytest.raises(ValueError, match='outside the limits'):
        twin.reset(arm_positions=arm.upper_rad + 0.1)


@pytest.mark.parametrize('rig', RIGS)
def test_board_held_by_the_gripper_is_where_forward_kinematics_says(rig: str,
                                                                    make_twin: MakeTwin) -> None:
    """Eye-to-hand ground truth: a board on the hand, seen by the scene camera, sits at
    base @ FK(q) @ mount pose, and its corners project where camera_info says."""
    from visuomotor.robots.transforms import rpy_from_matrix
    from visuomotor.sim.config import look_at

    base = load_scene(rig).with_resolution(640, 480)
    probe = make_twin(base)
    camera = probe.camera_pose_world('scene_camera')[:3, 3]
    tcp = probe.tcp_pose_fk()[:3, 3]
    # Board frame: z away from the camera (the printed face looks at it), centred ahead of
    # the fingertips.
    size = board_size_m(SCENE_BOARD)
    centre = tcp + (camera - tcp) / np.linalg.norm(camera - tcp) * 0.08
    facing = look_at(tuple(camera), tuple(centre))  # a frame at the camera, z towards centre
    board_world = facing @ translation(-size[0] / 2, -size[1] / 2, 0.0)
    board_world[:3, 3] += centre - camera  # moved from the camera to the board centre
    flange_world = probe.base_pose @ flange_pose(probe.robot, probe.arm_positions())
    in_flange = invert(flange_world) @ board_world
    board = dataclasses.replace(
        SCENE_BOARD, mount='hand', xyz_m=tuple(in_flange[:3, 3]),
        rpy_deg=tuple(math.degrees(a) for a in rpy_from_matrix(in_flange)))
    twin = make_twin(dataclasses.replace(base, board=board))
    clear_the_board(twin)
    twin.step(0.2)
    expected = twin.base_pose @ flange_pose(twin.robot, twin.arm_positions()) @ board.pose()
    np.testing.assert_allclose(twin.body_pose('board'), expected, atol=1e-6)
    image = twin.render(['scene_camera'])['scene_camera']
    errors = reprojection_errors(twin, 'scene_camera', board, image)
    assert errors.mean() < 0.3 and errors.max() < 1.0, errors
