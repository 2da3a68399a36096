"""The policy runtime: raw observation in, a time-stamped chunk of joint targets out (pure).

observation (raw frames per camera, joint positions, capture time)
-> the bundle's preprocessing per camera (the shared library) and proprio normalisation
-> the backend (one pass, or the DDIM loop around the network)
-> de-normalisation, then joint targets: absolute positions as they are, deltas added to
the observed positions, EE poses through damped-least-squares IK
-> ActionChunk: action i applies at `observation time + i * control period` (the
training data pairs action t with observation t); the chunk scheduler drops the ones
already in the past (latency compensation).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.policy.backends.base import ExtraOutputs, InferenceBackend
from visuomotor.policy.bundle import PolicyBundle
from visuomotor.policy.denoising import ddim_sample
from visuomotor.policy.errors import BundleMismatchError
from visuomotor.policy.spec import (
    NOISY_ACTION_INPUT,
    PROPRIO_INPUT,
    TIMESTEP_INPUT,
    feature_points_output,
    image_input,
)
from visuomotor.preprocessing import Preprocessor
from visuomotor.robots.description import RobotDescription

Vector = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Observation:
    """What the policy sees at one tick.

    Attributes:
        frames: camera name -> `observation_history` raw frames, oldest first.
        joint_positions: (history, proprio dim) positions in the spec's proprio joint order,
            then the gripper width if the spec reads it.
        stamp_s: capture time of the newest observation (ROS clock).
        encodings: camera name -> the frames' encoding, checked against the spec if given.
    """

    frames: Mapping[str, Sequence[npt.NDArray[Any]]]
    joint_positions: npt.NDArray[np.float64]
    stamp_s: float
    encodings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionChunk:
    """Joint targets on a time grid: row i applies at `start_s + i * period_s`."""

    start_s: float
    period_s: float
    positions: npt.NDArray[np.float64]
    gripper: npt.NDArray[np.float64] | None = None

    def times(self) -> Vector:
        """The time of every row."""
        return np.asarray(self.start_s + self.period_s * np.arange(len(self.positions)),
                          dtype=np.float64)


@dataclass(frozen=True)
class StageTimes:
    """Wall-clock milliseconds per stage of one inference."""

    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float


class PolicyRuntime:
    """A loaded bundle on a chosen backend."""

    def __init__(self, bundle: PolicyBundle, backend: InferenceBackend, *,
                 robot: RobotDescription | None = None, seed: int = 0) -> None:
        self.bundle = bundle
        self.spec = bundle.spec
        self.backend = backend
        self.robot = robot
        if self.spec.action.kind == 'ee_pose' and robot is None:
            raise BundleMismatchError('action.kind', 'the model outputs end-effector poses, '
                                      'which need the robot description for IK')
        self.preprocessors = {c.name: Preprocessor(c.preprocess) for c in self.spec.cameras}
        self._rng = np.random.default_rng(seed)
        p, a = self.spec.proprio.stats, self.spec.action.stats
        self._p_mean, self._p_std = np.array(p.mean), np.array(p.std)
        self._a_mean, self._a_std = np.array(a.mean), np.array(a.std)
        self.last_times = StageTimes(0.0, 0.0, 0.0)
        #: Network outputs named `feature_points.<camera>` the backend can return (visuomotor
        #: explain); asked for only when `__call__(..., extras=True)`.
        wanted = {feature_points_output(c.name) for c in self.spec.cameras}
        offered = backend.extra_outputs if isinstance(backend, ExtraOutputs) else ()
        self.feature_point_outputs = tuple(n for n in offered if n in wanted)
        #: After a call with extras=True: the network inputs and the extra outputs.
        self.last_inputs: dict[str, npt.NDArray[np.float32]] = {}
        self.last_extras: dict[str, npt.NDArray[np.float32]] = {}

    def network_inputs(self, obs: Observation) -> dict[str, npt.NDArray[np.float32]]:
        """Preprocessed, normalised network inputs for a batch of one."""
        spec = self.spec
        history = spec.observation_history
        inputs: dict[str, npt.NDArray[np.float32]] = {}
        for camera in spec.cameras:
            frames = obs.frames.get(camera.name)
            if frames is None or len(frames) != history:
                got = 'no frames' if frames is None else f'{len(frames)} frame(s)'
                raise BundleMismatchError(f'observation.{camera.name}', f'has {got}; the '
                                          f'model needs {history} (observation_history)')
            pre = self.preprocessors[camera.name]
            encoding = obs.encodings.get(camera.name)
            stack = np.stack([pre(f, encoding=encoding, camera=camera.name) for f in frames])
            inputs[image_input(camera.name)] = stack[None].astype(np.float32, copy=False)
        q = np.asarray(obs.joint_positions, dtype=np.float64)
        if q.shape != (history, spec.proprio.dim):
            raise BundleMismatchError('observation.joint_positions', f'has shape '
                                      f'{list(q.shape)}, expected [{history}, '
                                      f'{spec.proprio.dim}] (proprio joints'
                                      + (' + gripper width)' if spec.proprio.gripper_joints
                                         else ')'))
        inputs[PROPRIO_INPUT] = ((q - self._p_mean) / self._p_std)[None].astype(np.float32)
        return inputs

    def _run(self, feeds: Mapping[str, npt.NDArray[np.float32]], extras: bool
             ) -> npt.NDArray[np.float32]:
        if extras and self.feature_point_outputs and isinstance(self.backend, ExtraOutputs):
            out, self.last_extras = self.backend.run_with(feeds, self.feature_point_outputs)
            return out
        return self.backend.run(feeds)

    def predict(self, inputs: Mapping[str, npt.NDArray[np.float32]], *,
                extras: bool = False) -> npt.NDArray[np.float32]:
        """The network's normalised chunk (H, A): one pass, or the DDIM loop.

        With `extras`, the feature points the backend offers are kept in `last_extras` (from
        the first pass of a DDIM loop: the images are the same in every pass).
        """
        spec = self.spec
        self.last_extras = {}
        if spec.scheduler is None:
            return np.asarray(self._run(inputs, extras)[0], dtype=np.float32)
        feeds = dict(inputs)
        first = [extras]

        def network(x: npt.NDArray[np.float32], t: float) -> npt.NDArray[np.float32]:
            feeds[NOISY_ACTION_INPUT] = x
            feeds[TIMESTEP_INPUT] = np.array([t], dtype=np.float32)
            out = self._run(feeds, first[0])
            first[0] = False
            return out

        noise = self._rng.standard_normal((1, spec.chunk_length, spec.action.dim))
        sample = ddim_sample(network, spec.scheduler, noise.astype(np.float32))
        return np.asarray(sample[0], dtype=np.float32)

    def decode(self, normalised: npt.NDArray[np.float32], obs: Observation) -> ActionChunk:
        """Joint targets on the time grid from a normalised chunk."""
        spec = self.spec
        actions = normalised.astype(np.float64) * self._a_std + self._a_mean
        arm = actions[:, :spec.action.arm_dim]
        gripper = actions[:, spec.action.arm_dim] if spec.action.gripper else None
        arm_joints = len(spec.proprio.joint_names)
        q_now = np.asarray(obs.joint_positions, dtype=np.float64)[-1, :arm_joints]
        if spec.action.kind == 'joint_delta':
            arm = q_now + arm
        elif spec.action.kind == 'ee_pose':
            arm = self._ik(arm, q_now)
        return ActionChunk(obs.stamp_s, spec.control_period_s, arm, gripper)

    def _ik(self, poses: npt.NDArray[np.float64], q_seed: Vector) -> npt.NDArray[np.float64]:
        from visuomotor.robots.ik import solve_ik
        from visuomotor.robots.transforms import rotation_from_vector

        robot = self.robot
        if robot is None:  # refused in __init__; kept for the type checker
            raise BundleMismatchError('action.kind', 'ee_pose actions need the robot')
        out = np.empty((len(poses), robot.dof))
        q = q_seed
        for i, row in enumerate(poses):
            target = np.eye(4)
            target[:3, :3] = rotation_from_vector(row[3:6].tolist())
            target[:3, 3] = row[:3]
            result = solve_ik(robot, target, q)
            if not result.converged:
                raise BundleMismatchError(
                    f'action[{i}]', f'end-effector pose {np.round(row, 4).tolist()} is not '
                    f'reachable (IK stopped {result.position_error_m * 1e3:.1f} mm / '
                    f'{np.degrees(result.rotation_error_rad):.1f} deg away); this chunk is '
                    'dropped')
            q = result.q
            out[i] = q
        return out

    def __call__(self, obs: Observation, *, extras: bool = False) -> ActionChunk:
        """Preprocess, infer and decode one observation (stage times in `last_times`).

        With `extras`, the network inputs are kept in `last_inputs` and the feature points the
        backend offers in `last_extras` (for the live overlays; no copies are made).
        """
        t0 = time.perf_counter()
        inputs = self.network_inputs(obs)
        self.last_inputs = inputs if extras else {}
        t1 = time.perf_counter()
        normalised = self.predict(inputs, extras=extras)
        t2 = time.perf_counter()
        if not np.isfinite(normalised).all():
            raise FloatingPointError(f'{self.backend.name} produced non-finite actions; this '
                                     'chunk is dropped (the current plan runs out, then the '
                                     'bridge stops the arm)')
        chunk = self.decode(normalised, obs)
        t3 = time.perf_counter()
        self.last_times = StageTimes((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3)
        return chunk
