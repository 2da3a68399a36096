"""Helpers shared by the test tiers (importable as `support`: test/ is on pytest's path)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

REPO = Path(__file__).resolve().parents[1]


class _Spinner(Protocol):
    def spin_once(self, timeout_sec: float | None = None) -> None: ...


def spin_until(executor: _Spinner, condition: Callable[[], bool],
               timeout_s: float = 10.0) -> bool:
    """Spin `executor` until `condition()` holds or `timeout_s` passes; return condition()."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
    return condition()


def make_test_bundle(directory: Path, *, robot: str = 'fr3', size: int = 32,
                     cameras: tuple[str, ...] = ('scene_camera', 'wrist_camera'),
                     history: int = 2, chunk_length: int = 8, rate_hz: float = 10.0,
                     gripper: bool = True, family: str = 'single_pass') -> Path:
    """A small untrained policy bundle (Levine encoder, random weights) for tests."""
    from visuomotor.policy.spec import (
        ActionSpec,
        Architecture,
        CameraInput,
        DenoisingScheduler,
        Normalisation,
        PolicySpec,
        ProprioSpec,
    )
    from visuomotor.preprocessing import PreprocessSpec
    from visuomotor.robots.description import load_robot
    from visuomotor.training.export import export_bundle
    from visuomotor.training.nets import build_architecture

    description = load_robot(robot)
    joints = tuple(description.joint_names)
    pre = PreprocessSpec(input_encoding='rgb8', input_height=size, input_width=size)
    dim = len(joints) + int(gripper)
    name = 'chunk_mlp' if family == 'single_pass' else 'denoising_mlp'
    kwargs = {'cameras': [{'name': c, 'channels': 3, 'height': size, 'width': size}
                          for c in cameras],
              'history': history, 'proprio_dim': len(joints), 'action_dim': dim,
              'chunk_length': chunk_length, 'encoder': 'levine', 'hidden': [32]}
    scheduler = (DenoisingScheduler(50, 5, 'squaredcos_cap_v2', 1e-4, 2e-2, 'epsilon', 1.0)
                 if family == 'denoising' else None)
    # Actions centred on the robot's home pose with a small spread: an untrained network's
    # outputs (around 0 normalised) then stay near home.
    home = tuple(description.home_rad)
    mean = home + ((0.04,) if gripper else ())
    spec = PolicySpec(
        name='test-policy', cameras=tuple(CameraInput(c, pre) for c in cameras),
        observation_history=history,
        proprio=ProprioSpec(joints, Normalisation(home, (1.0,) * len(joints))),
        action=ActionSpec('joint_position', joints, gripper,
                          Normalisation(mean, (0.01,) * dim)),
        chunk_length=chunk_length, control_rate_hz=rate_hz, family=family,
        scheduler=scheduler, architecture=Architecture(name, kwargs),
        provenance={'purpose': 'tests: random weights'})
    import torch
    torch.manual_seed(0)
    export_bundle(build_architecture(name, kwargs), spec, directory)
    return directory
