"""The policies the policy benchmarks time (shared by bench/policy.py and bench/policy_gpu.py).

A ResNet-18 (GroupNorm, spatial softmax with 32 keypoints) encoder per camera, 2 cameras, one
observation step, the robot's 7 joints as proprio, and an MLP head predicting a chunk of 16
actions (7 joints + gripper). Weights are random: only latency means anything.
"""

from __future__ import annotations

from typing import Any

CAMERAS = ('scene_camera', 'wrist_camera')
HISTORY = 1
CHUNK = 16
JOINTS = 7
ACTION_DIM = JOINTS + 1


def architecture_kwargs(size: int) -> dict[str, Any]:
    """Keyword arguments of the registered `chunk_mlp` architecture at `size` x `size`."""
    return {'cameras': [{'name': c, 'channels': 3, 'height': size, 'width': size}
                        for c in CAMERAS],
            'history': HISTORY, 'proprio_dim': JOINTS, 'action_dim': ACTION_DIM,
            'chunk_length': CHUNK, 'encoder': 'resnet18_gn',
            'encoder_kwargs': {'num_keypoints': 32}, 'hidden': [512, 512]}


def input_shapes(size: int) -> dict[str, tuple[int, ...]]:
    """Network input name -> shape (batch of one), in argument order."""
    shapes: dict[str, tuple[int, ...]] = {f'image.{c}': (1, HISTORY, 3, size, size)
                                          for c in CAMERAS}
    shapes['proprio'] = (1, HISTORY, JOINTS)
    return shapes
