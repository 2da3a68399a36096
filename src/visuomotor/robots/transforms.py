"""Homogeneous transforms and rotation conversions (4x4 float64 arrays, metres, radians).

Quaternions are (w, x, y, z), as MuJoCo stores them; roll-pitch-yaw is the URDF convention
(R = Rz(yaw) Ry(pitch) Rx(roll)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float64]


def rot_x(angle_rad: float) -> Matrix:
    """4x4 rotation about x."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[1, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1]], dtype=np.float64)


def rot_y(angle_rad: float) -> Matrix:
    """4x4 rotation about y."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, 0, s, 0], [0, 1, 0, 0], [-s, 0, c, 0], [0, 0, 0, 1]], dtype=np.float64)


def rot_z(angle_rad: float) -> Matrix:
    """4x4 rotation about z."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64)


def translation(x: float, y: float, z: float) -> Matrix:
    """4x4 pure translation."""
    matrix = np.eye(4)
    matrix[:3, 3] = (x, y, z)
    return matrix


def from_xyz_rpy(xyz: Sequence[float], rpy: Sequence[float]) -> Matrix:
    """4x4 pose from a translation and URDF roll-pitch-yaw."""
    pose = rot_z(rpy[2]) @ rot_y(rpy[1]) @ rot_x(rpy[0])
    pose[:3, 3] = xyz
    return pose


def rpy_from_matrix(rotation: npt.ArrayLike) -> tuple[float, float, float]:
    """URDF roll-pitch-yaw of a rotation (3x3 or the upper-left of a 4x4)."""
    r = np.asarray(rotation, dtype=np.float64)[:3, :3]
    pitch = math.atan2(-r[2, 0], math.hypot(r[0, 0], r[1, 0]))
    roll = math.atan2(r[2, 1], r[2, 2])
    yaw = math.atan2(r[1, 0], r[0, 0])
    return roll, pitch, yaw


def quat_from_matrix(rotation: npt.ArrayLike) -> Matrix:
    """Unit quaternion (w, x, y, z) with w >= 0 of a rotation matrix."""
    r = np.asarray(rotation, dtype=np.float64)[:3, :3]
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s]
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = 2.0 * math.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        q = [(r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s]
    elif r[1, 1] > r[2, 2]:
        s = 2.0 * math.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
        q = [(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
        q = [(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s]
    quat = np.asarray(q, dtype=np.float64)
    quat /= np.linalg.norm(quat)
    return -quat if quat[0] < 0 else quat


def matrix_from_quat(quat: Sequence[float]) -> Matrix:
    """3x3 rotation of a quaternion (w, x, y, z); it is normalised first."""
    w, x, y, z = np.asarray(quat, dtype=np.float64) / np.linalg.norm(quat)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def rotation_vector(rotation: npt.ArrayLike) -> Matrix:
    """Axis times angle (radians, in [0, pi]) of a 3x3 rotation."""
    r = np.asarray(rotation, dtype=np.float64)[:3, :3]
    cos_angle = float(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))
    angle = math.acos(cos_angle)
    if angle < 1e-9:
        return np.zeros(3)
    if math.pi - angle < 1e-6:
        # Near pi the antisymmetric part vanishes: take the axis from the symmetric part.
        axis_outer = (r + np.eye(3)) / 2.0
        axis = axis_outer[int(np.argmax(np.diag(axis_outer)))]
        return np.asarray(axis / np.linalg.norm(axis) * angle, dtype=np.float64)
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    return np.asarray(axis / (2.0 * math.sin(angle)) * angle, dtype=np.float64)


def rotation_from_vector(vector: npt.ArrayLike) -> Matrix:
    """3x3 rotation of an axis-angle vector (Rodrigues)."""
    v = np.asarray(vector, dtype=np.float64)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    k = v / angle
    skew = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.asarray(np.eye(3) + math.sin(angle) * skew
                      + (1 - math.cos(angle)) * skew @ skew, dtype=np.float64)


def invert(pose: Matrix) -> Matrix:
    """Inverse of a rigid 4x4 transform."""
    inverse = np.eye(4)
    inverse[:3, :3] = pose[:3, :3].T
    inverse[:3, 3] = -pose[:3, :3].T @ pose[:3, 3]
    return inverse
