"""The policy loop (pure; time is an argument): frames and joint states in, plans out.

The one deploy loop of the policy side, driven the same way by the policy node (inference
on a worker thread) and by the in-process rollout on the twin (inference inline, simulated
time standing still), so both measure the same execution. Every control tick:

1. `command(now)`: the plan to send now (from the chunks so far) as the trajectory and
   gripper width the safety bridge gets, or None;
2. `next_observation(now)`: an aligned observation if an inference is due and none is
   running, else None (with the reason in `last_refusal` when streams are bad);
3. after the inference: `on_chunk(chunk, now, times)`, then `command(now)` again: the new
   chunk is sent as soon as it exists, not one period later.

Stale, frozen, missing or skewed cameras refuse the observation; no new chunk then arrives,
the plan ages out after `max_age_s` and nothing more is sent, so the safety bridge's watchdog
stops the arm.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.cameras.sync import Aligned, Refusal, Sample, SyncConfig, Synchronizer
from visuomotor.policy.chunking import ChunkScheduler, Plan, SchedulerConfig
from visuomotor.policy.runtime import ActionChunk, Observation, StageTimes
from visuomotor.policy.spec import PolicySpec
from visuomotor.trajectory import JointTrajectoryCommand

#: Latency samples kept per stage for the medians and p99 on /diagnostics.
WINDOW = 200


@dataclass
class LatencyStats:
    """Rolling per-stage latencies, milliseconds."""

    stages: dict[str, deque[float]] = field(default_factory=dict)

    def add(self, stage: str, value_ms: float) -> None:
        """Record one sample."""
        self.stages.setdefault(stage, deque(maxlen=WINDOW)).append(value_ms)

    def summary(self) -> dict[str, tuple[float, float]]:
        """Stage -> (median, p99) in ms."""
        return {k: (float(np.median(v)), float(np.percentile(v, 99)))
                for k, v in self.stages.items() if v}


@dataclass(frozen=True)
class PolicyCommand:
    """What the policy sends the safety bridge at one instant.

    Attributes:
        trajectory: the plan's rows, stamped `now`, each at its own time from now.
        gripper_m: the gripper opening width at the plan's first row (None: no gripper).
        plan: the plan it was made from.
    """

    trajectory: JointTrajectoryCommand
    gripper_m: float | None
    plan: Plan


def plan_command(plan: Plan, joint_names: Sequence[str], now_s: float
                 ) -> JointTrajectoryCommand:
    """A plan as the trajectory the bridge gets: header.stamp `now_s`, rows at their times.

    The plan's rows start at `now_s` + the execution latency (never earlier) and strictly
    increase, so the times from start are >= 0 and increasing, as a joint trajectory
    controller requires too.
    """
    points = tuple((max(0.0, float(t) - now_s), tuple(float(v) for v in row), (), ())
                   for t, row in zip(plan.times, plan.positions, strict=True))
    return JointTrajectoryCommand(tuple(joint_names), points, now_s)


class PolicyLoop:
    """Synchroniser + scheduler + counters for one policy on one robot."""

    def __init__(self, spec: PolicySpec, sync: SyncConfig, scheduler: SchedulerConfig) -> None:
        self.spec = spec
        self.period_s = spec.control_period_s
        self.sync_config = sync
        # Joint states for the whole history at up to 1 kHz, plus a second of margin.
        self._joint_window_s = spec.observation_history * self.period_s + 1.0
        self.sync = self._synchronizer()
        self.scheduler = ChunkScheduler(scheduler, self.period_s, spec.chunk_length)
        self._expected = {c.name: (c.preprocess.input_shape, c.preprocess.input_encoding)
                          for c in spec.cameras}
        self.in_flight = False
        self.last_refusal: Refusal | None = None
        self.inference_error = ''
        self.frame_errors: dict[str, str] = {}
        self.counters: Counter[str] = Counter()
        self.latency = LatencyStats()
        self._recent_ms: deque[float] = deque(maxlen=20)
        self._last_now: float | None = None
        self._gripper_width: float | None = None

    def _synchronizer(self) -> Synchronizer:
        return Synchronizer(self.spec.camera_names, self.sync_config,
                            joint_buffer_size=int(1000 * self._joint_window_s))

    # -- inputs ------------------------------------------------------------------------------

    def on_frame(self, camera: str, stamp_s: float, image: npt.NDArray[Any],
                 seq: int | None = None, encoding: str | None = None) -> str | None:
        """A camera frame (raw, as received); returns why it was refused, if it was.

        Frames whose size or encoding differ from the model's preprocessing spec are refused
        here, naming both values, so they never reach inference.
        """
        buffer = self.sync.cameras.get(camera)
        if buffer is None:
            return f'camera {camera!r} is not read by the model'
        shape, wanted = self._expected[camera]
        if tuple(image.shape) != tuple(shape) or (encoding is not None and encoding != wanted):
            got = f'{encoding or "?"} {"x".join(map(str, image.shape))}'
            error = (f'camera {camera}: frames are {got}, the model expects {wanted} '
                     f'{"x".join(map(str, shape))} (H x W x C); fix the driver settings or use '
                     'a model trained on this camera')
            self.frame_errors[camera] = error
            self.counters[f'{camera}_frames_refused'] += 1
            return error
        self.frame_errors.pop(camera, None)
        return buffer.push(Sample(stamp_s, image, seq))

    def on_joint_state(self, stamp_s: float, names: Sequence[str],
                       positions: Sequence[float]) -> str | None:
        """Measured joint positions (any order; the robot's joints must all be there)."""
        index = {n: i for i, n in enumerate(names)}
        proprio = self.spec.proprio
        fingers = proprio.gripper_joints
        if fingers and all(j in index for j in fingers):
            # Drivers may publish the gripper on its own: keep its latest width for the arm's.
            self._gripper_width = float(sum(positions[index[j]] for j in fingers))
            if not all(j in index for j in proprio.joint_names):
                return None
        try:
            values = [positions[index[j]] for j in proprio.joint_names]
        except (KeyError, IndexError):
            self.counters['joint_states_refused'] += 1
            return (f'joint state lacks some of {list(proprio.joint_names)} '
                    f'(has {list(names)})')
        if fingers:
            if self._gripper_width is None:
                self.counters['joint_states_refused'] += 1
                return (f'no gripper width yet: the model reads {list(fingers)}, which no '
                        'joint state has carried so far')
            values.append(self._gripper_width)
        q = np.array(values, dtype=np.float64)
        if not np.isfinite(q).all():
            self.counters['joint_states_refused'] += 1
            return 'joint state has non-finite positions'
        return self.sync.joints.push(Sample(stamp_s, q))

    # -- the tick ----------------------------------------------------------------------------

    def check_clock(self, now_s: float) -> bool:
        """Detect the clock going backwards (a sim reset, a bag restarted); then start over.

        Returns True if everything was reset: buffers and chunks from the old timeline would
        otherwise refuse every new sample as out of order and keep sending the old plan.
        """
        jumped = self._last_now is not None and now_s < self._last_now - 1e-3
        self._last_now = now_s
        if jumped:
            self.sync = self._synchronizer()
            self.scheduler.reset()
            self.counters['clock_jumps_back'] += 1
        return jumped

    def next_observation(self, now_s: float) -> Observation | None:
        """An observation to infer on now, or None (not due, busy, or refused)."""
        # Plan with the slowest recent inference and one tick of quantisation.
        lead = (max(self._recent_ms) * 1e-3 if self._recent_ms else 0.0) + self.period_s
        if self.in_flight or not self.scheduler.inference_due(now_s, lead):
            return None
        aligned = self.sync.assemble(now_s, self.spec.observation_history, self.period_s)
        if isinstance(aligned, Refusal):
            last = self.last_refusal
            if last is None or (last.stream, last.reason) != (aligned.stream, aligned.reason):
                self.counters[f'refused_{aligned.reason}'] += 1  # events, not ticks
            self.last_refusal = aligned
            return None
        self.last_refusal = None
        self.in_flight = True
        self.latency.add('observation_age', aligned.age_s * 1e3)
        self.latency.add('skew', aligned.skew_s * 1e3)
        return self._observation(aligned)

    def _observation(self, aligned: Aligned) -> Observation:
        frames = {name: [s.value for s in samples] for name, samples in aligned.frames.items()}
        return Observation(frames, aligned.joint_positions, aligned.stamp_s)

    def on_chunk(self, chunk: ActionChunk | None, now_s: float, times: StageTimes | None,
                 error: str = '') -> None:
        """The inference finished (chunk None: it failed with `error`)."""
        self.in_flight = False
        if chunk is None:
            self.counters['inference_failed'] += 1
            self.inference_error = error  # kept until an inference succeeds
            return
        self.inference_error = ''
        if times is not None:
            total = times.preprocess_ms + times.inference_ms + times.postprocess_ms
            self._recent_ms.append(total)
            self.latency.add('preprocess', times.preprocess_ms)
            self.latency.add('inference', times.inference_ms)
            self.latency.add('postprocess', times.postprocess_ms)
        self.latency.add('observation_to_chunk', (now_s - chunk.start_s) * 1e3)
        earliest = now_s + self.scheduler.config.exec_latency_s
        late = int(np.count_nonzero(chunk.times() < earliest))
        if self.scheduler.add(chunk, now_s):
            self.counters['chunks'] += 1
            self.counters['late_rows_dropped'] += late  # latency compensation at work
        else:
            self.counters['chunks_discarded'] += 1  # older than the newest, or from the future

    def command(self, now_s: float) -> PolicyCommand | None:
        """The plan to send at `now_s` as the bridge gets it (None: nothing fresh to send)."""
        plan = self.plan(now_s)
        if plan is None:
            return None
        gripper = float(plan.gripper[0]) \
            if plan.gripper is not None and self.spec.action.gripper else None
        return PolicyCommand(plan_command(plan, self.spec.action.joint_names, now_s), gripper,
                             plan)

    def plan(self, now_s: float) -> Plan | None:
        """The rows to send at this tick (None: nothing fresh to send)."""
        plan = self.scheduler.plan(now_s)
        if plan is None:
            return None
        if plan.over_budget:
            self.counters['over_budget'] += 1
        return plan

    def problem(self) -> str:
        """What currently keeps the policy from acting ('' if nothing)."""
        if self.frame_errors:
            return next(iter(self.frame_errors.values()))
        if self.inference_error:
            return f'inference failed: {self.inference_error}'
        if self.last_refusal is not None:
            return f'no observation: {self.last_refusal}'
        return ''
