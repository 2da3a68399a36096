"""sensor_msgs/CameraInfo <-> CameraIntrinsics."""

from __future__ import annotations

import pytest
from sensor_msgs.msg import CameraInfo

from visuomotor.cameras.intrinsics import CameraIntrinsics
from visuomotor.errors import CameraInfoError
from visuomotor.ros.image_conversion import camera_info_to_intrinsics, intrinsics_to_camera_info
from visuomotor.ros.stamps import ns_to_stamp

SCENE = CameraIntrinsics.from_pinhole(1280, 720, 910.0, 909.5, 640.2, 361.1,
                                      distortion_model='rational_polynomial',
                                      d=(0.1, -0.05, 0.001, 0.0, 0.01, 0.2, -0.1, 0.02))


def test_round_trip_with_stamp_and_frame() -> None:
    msg = intrinsics_to_camera_info(SCENE, stamp=ns_to_stamp(42), frame_id='scene_optical')
    assert msg.header.frame_id == 'scene_optical' and msg.header.stamp.nanosec == 42
    assert list(msg.k) == list(SCENE.k) and len(msg.d) == 8
    assert camera_info_to_intrinsics(msg) == SCENE


def test_uncalibrated_camera_info_is_refused_with_the_fix() -> None:
    with pytest.raises(CameraInfoError, match='uncalibrated') as error:
        camera_info_to_intrinsics(CameraInfo(width=640, height=480))
    assert error.value.field == 'k'


def test_binning_and_roi_are_refused() -> None:
    msg = intrinsics_to_camera_info(SCENE)
    msg.binning_x = 2
    with pytest.raises(CameraInfoError) as error:
        camera_info_to_intrinsics(msg)
    assert error.value.field == 'binning_x'
    msg = intrinsics_to_camera_info(SCENE)
    msg.roi.width = 100
    with pytest.raises(CameraInfoError) as error:
        camera_info_to_intrinsics(msg)
    assert error.value.field == 'roi'


def test_a_driver_that_fills_only_k_gets_identity_r_and_p_from_k() -> None:
    msg = CameraInfo(width=640, height=480, distortion_model='plumb_bob')
    msg.k = [600.0, 0.0, 320.0, 0.0, 601.0, 240.0, 0.0, 0.0, 1.0]
    intrinsics = camera_info_to_intrinsics(msg)
    assert intrinsics.r == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    assert intrinsics.p == (600.0, 0.0, 320.0, 0.0, 0.0, 601.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert intrinsics.d == ()
