"""Demo stage 2: the MuJoCo twin behind its ROS interfaces, driven by the scripted expert.

For each (scene, seed), a sim node runs in this process on simulated time (as fast as the
host allows); a client node receives /joint_states and both cameras' image_raw over DDS and
sends the expert's JointTrajectory and gripper commands on the controllers' topics, exactly
as a policy or a recorder would. Frames received over DDS make the contact sheet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from visuomotor.ros.image_conversion import image_to_numpy
from visuomotor.ros.sim_node import SimNode
from visuomotor.ros.stamps import stamp_to_ns
from visuomotor.ros.trajectory_conversion import trajectory_to_msg
from visuomotor.sim.episode import make_expert, observe


@dataclass(frozen=True)
class EpisodeFigures:
    """One demo episode."""

    scene: str
    seed: int
    success: bool
    sim_s: float
    wall_s: float
    frames: int


def _episode(context: Context, scene: str, seed: int, frames_every_s: float,
             ) -> tuple[EpisodeFigures, list[npt.NDArray[np.uint8]]]:
    node = SimNode(context=context, parameter_overrides=[
        Parameter('scene', value=scene), Parameter('seed', value=seed),
        Parameter('real_time_factor', value=0.0)])
    client = Node('demo_client', context=context)
    cameras = list(node.image_pubs)
    latest: dict[str, Image] = {}
    received = [0]

    def on_image(msg: Image, name: str) -> None:
        latest[name] = msg
        received[0] += 1

    for name in cameras:
        client.create_subscription(Image, f'/{name}/image_raw',
                                   lambda m, n=name: on_image(m, n), 10)
    controllers = node.twin.robot.controllers
    trajectory_pub = client.create_publisher(JointTrajectory,
                                             f'/{controllers.trajectory}/joint_trajectory', 10)
    gripper_pub = client.create_publisher(Float64MultiArray,
                                          f'/{controllers.gripper}/commands', 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(client)
    twin = node.twin
    expert = make_expert(twin, rate_hz=10.0)
    sheet: list[npt.NDArray[np.uint8]] = []
    next_action, next_frame = 0.0, 0.0
    wall = time.perf_counter()
    try:
        while not expert.done and twin.time_s < 25.0:
            if twin.time_s + 1e-9 >= next_action:
                action = expert.act(observe(twin, node.task))
                trajectory_pub.publish(trajectory_to_msg(action.trajectory))
                gripper_pub.publish(Float64MultiArray(data=[action.gripper_width_m]))
                deadline = time.monotonic() + 2.0
                while twin.controller.mode != 'trajectory' and time.monotonic() < deadline:
                    executor.spin_once(timeout_sec=0.005)
                for _ in range(3):
                    executor.spin_once(timeout_sec=0.002)
                next_action += 0.1
            node.tick()
            executor.spin_once(timeout_sec=0.0)
            if len(latest) == len(cameras) and twin.time_s >= next_frame:
                row = [image_to_numpy(latest[n], 'rgb8') for n in cameras]
                stamp_s = stamp_to_ns(latest[cameras[0]].header.stamp) * 1e-9
                sheet.append(_label(np.hstack(row), f'{scene} seed {seed}  t={stamp_s:.1f}s  '
                                    f'{expert.phase}'))
                next_frame += frames_every_s
        twin.step(0.3)
        figures = EpisodeFigures(scene, seed, node.task.success(twin), twin.time_s,
                                 time.perf_counter() - wall, received[0])
    finally:
        executor.shutdown()
        client.destroy_node()
        node.destroy_node()
    return figures, sheet


def _label(image: npt.NDArray[np.uint8], text: str) -> npt.NDArray[np.uint8]:
    big = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    bgr: npt.NDArray[np.uint8] = np.ascontiguousarray(big[..., ::-1], dtype=np.uint8)
    cv2.putText(bgr, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                cv2.LINE_AA)
    return bgr


def run_twin_stage(out_dir: Path, episodes: list[tuple[str, int]],
                   frames_every_s: float = 1.0) -> tuple[list[EpisodeFigures], list[Path]]:
    """Run the episodes, write a contact sheet per episode, return the figures and files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    context = Context()
    rclpy.init(context=context)
    results: list[EpisodeFigures] = []
    files: list[Path] = []
    try:
        for scene, seed in episodes:
            figures, sheet = _episode(context, scene, seed, frames_every_s)
            results.append(figures)
            columns = 4
            rows = [np.hstack(sheet[i:i + columns] + [np.zeros_like(sheet[0])] *
                              (columns - len(sheet[i:i + columns])))
                    for i in range(0, len(sheet), columns)]
            path = out_dir / f'twin_{scene}_seed{seed}.png'
            cv2.imwrite(str(path), np.vstack(rows))
            files.append(path)
    finally:
        rclpy.try_shutdown(context=context)
    return results, files
