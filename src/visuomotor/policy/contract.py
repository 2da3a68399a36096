"""The bundle's spec against the live rig: refuse a mismatch, naming both values.

Checked before any inference: the cameras the model reads exist on the rig (by name), the
frames they send have the size and encoding the preprocessing expects (checked again on every
frame by the preprocessor), the proprio and action joints are the robot's, and the control
rate is the one the model was trained at.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from visuomotor.policy.errors import BundleMismatchError
from visuomotor.policy.spec import PolicySpec


@dataclass(frozen=True)
class CameraStream:
    """A camera of the live rig: where its frames come from and, if known, their format."""

    topic: str
    width: int | None = None
    height: int | None = None
    encoding: str | None = None


@dataclass(frozen=True)
class LiveRig:
    """What the deployment is configured with."""

    cameras: Mapping[str, CameraStream]
    joint_names: Sequence[str]
    control_rate_hz: float
    robot: str = 'robot'
    gripper_joints: Sequence[str] = ()


def check_rig(spec: PolicySpec, rig: LiveRig) -> None:
    """Raise on the first mismatch between the model's contract and the rig.

    Raises:
        BundleMismatchError: naming the model's value, the rig's value and the fix.
    """
    for camera in spec.cameras:
        stream = rig.cameras.get(camera.name)
        if stream is None:
            raise BundleMismatchError(
                f'cameras.{camera.name}', f'the model reads camera {camera.name!r} (cameras in '
                f'input order: {list(spec.camera_names)}), but the rig has '
                f'{sorted(rig.cameras)}; map each model camera to a topic (camera_topics '
                'parameter) or use a model trained on these cameras')
        pre = camera.preprocess
        if stream.width is not None and stream.height is not None and (
                stream.width, stream.height) != (pre.input_width, pre.input_height):
            raise BundleMismatchError(
                f'cameras.{camera.name}', f'the model expects {pre.input_width}x'
                f'{pre.input_height} frames, but {stream.topic} sends {stream.width}x'
                f'{stream.height}; set the camera to the training resolution')
        if stream.encoding is not None and stream.encoding != pre.input_encoding:
            raise BundleMismatchError(
                f'cameras.{camera.name}', f'the model expects {pre.input_encoding} frames, but '
                f'{stream.topic} sends {stream.encoding}; set the driver to '
                f'{pre.input_encoding} (a colour-order mismatch silently ruins a policy)')
    robot_joints = list(rig.joint_names)
    for what, joints in (('proprio.joint_names', spec.proprio.joint_names),
                         ('action.joint_names', spec.action.joint_names)):
        if list(joints) != robot_joints:
            missing = [j for j in joints if j not in robot_joints]
            detail = (f'{missing} are not joints of {rig.robot}' if missing
                      else 'the order differs')
            raise BundleMismatchError(
                what, f'the model uses {list(joints)}, but {rig.robot} has {robot_joints} '
                f'({detail}); use a model trained on this robot')
    fingers = list(spec.proprio.gripper_joints)
    if fingers and fingers != list(rig.gripper_joints):
        raise BundleMismatchError(
            'proprio.gripper_joints', f'the model reads the gripper width from {fingers}, but '
            f'{rig.robot} has gripper joints {list(rig.gripper_joints)}; use a model trained '
            'on this robot and gripper')
    if not math.isclose(spec.control_rate_hz, rig.control_rate_hz, rel_tol=1e-6):
        raise BundleMismatchError(
            'control_rate_hz', f'the model was trained at {spec.control_rate_hz:g} Hz, but the '
            f'node runs at {rig.control_rate_hz:g} Hz; set control_rate_hz to '
            f"{spec.control_rate_hz:g} (or leave it unset to take the model's rate)")
