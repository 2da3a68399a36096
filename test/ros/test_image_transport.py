"""Images through real DDS: a publisher node and a subscriber node, rclpy, Fast DDS."""

from __future__ import annotations

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from support import spin_until
from visuomotor.ros.image_conversion import image_to_numpy, numpy_to_image
from visuomotor.ros.stamps import ns_to_stamp, stamp_to_ns


def test_the_middleware_is_real_dds(ros_context: Context) -> None:
    assert rclpy.get_rmw_implementation_identifier() in ('rmw_fastrtps_cpp',
                                                         'rmw_cyclonedds_cpp', 'rmw_zenoh_cpp')


def test_frames_survive_dds_bit_exact_with_stamps(ros_context: Context) -> None:
    camera = Node('test_camera', context=ros_context)
    policy = Node('test_policy', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    try:
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        publisher = camera.create_publisher(Image, 'wrist/image_raw', qos)
        received: list[Image] = []
        policy.create_subscription(Image, 'wrist/image_raw', received.append, qos)
        executor.add_node(camera)
        executor.add_node(policy)
        assert spin_until(executor, lambda: publisher.get_subscription_count() == 1)

        rng = np.random.default_rng(0)
        rgb = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
        depth = rng.integers(0, 65536, (120, 160), dtype=np.uint16)
        sent = [(rgb, 'rgb8'), (depth, 'mono16'), (rgb[:, :, ::-1], 'bgr8')]
        msg = None
        for index, (image, encoding) in enumerate(sent):
            msg = numpy_to_image(image, encoding, stamp=ns_to_stamp(10**9 + index),
                                 frame_id='wrist_optical', out=msg if encoding == 'bgr8' else None)
            publisher.publish(msg)
        # A big-endian depth image with padded rows, as some drivers send it.
        padded = np.zeros((120, 160 * 2 + 6), dtype=np.uint8)
        padded[:, :320] = depth.astype('>u2').view(np.uint8)
        odd = Image(height=120, width=160, encoding='16UC1', is_bigendian=1, step=326)
        odd.data = padded.tobytes()
        publisher.publish(odd)
        assert spin_until(executor, lambda: len(received) == 4)

        for index, (image, encoding) in enumerate(sent):
            assert received[index].encoding == encoding
            assert stamp_to_ns(received[index].header.stamp) == 10**9 + index
            assert received[index].header.frame_id == 'wrist_optical'
            np.testing.assert_array_equal(image_to_numpy(received[index]), image)
        np.testing.assert_array_equal(image_to_numpy(received[3]), depth)
        np.testing.assert_array_equal(image_to_numpy(received[0], 'bgr8'), rgb[:, :, ::-1])
    finally:
        executor.shutdown()
        camera.destroy_node()
        policy.destroy_node()
