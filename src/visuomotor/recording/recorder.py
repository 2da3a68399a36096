"""The recorder (pure; time is an argument): synchronised rows into episodes.

Rows come from cameras, joint states and commands, at a fixed rate.

Ticks run at twice the row rate; a row is written when the streams, aligned like the policy
aligns them (the shared synchroniser), reach a reference time at least 0.75 row periods after
the previous row's: the newest time every camera has a frame is the row's reference time, so
rows follow the frames' own capture times instead of a timer's jitter;
each camera contributes its frame nearest it (within the skew limit), the joint positions and
the command the safety bridge sent are interpolated there, and the policy/teleop target active
then is evaluated there. A tick whose streams cannot be aligned (a camera stale, frozen or too
skewed) writes no row and is counted; a frame of the wrong size or encoding is refused and
marks the episode, naming the camera and both formats. Capture times, sequence numbers and
the tick time are stored with every row, so the dataset check can measure real rates, drops
and skew instead of trusting the nominal rate.

The gripper's action is the last width commanded at or before the row (the gripper holds it);
before any width was commanded, the measured width (it holds where it is), so an arm-only
session has a finite action.

Every row also gets quality flags (episode.py): no valid action (the bridge sent no finite
command near the row's time), and, when the recorder follows the safety bridge's state
(`follow_bridge_state`, the recorder node does), the bridge not armed at the row's time or no
state received yet. The state in force at a row is the last one received at or before its
reference time.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.cameras.sync import (
    Refusal,
    Sample,
    StreamBuffer,
    SyncConfig,
    Synchronizer,
    interpolate,
)
from visuomotor.recording.episode import (
    ARMED_STATES,
    NO_ACTION,
    NO_BRIDGE_STATE,
    NOT_ARMED,
    CameraFormat,
    EpisodeData,
    EpisodeRecording,
    FrameRow,
)
from visuomotor.recording.video import VideoSettings
from visuomotor.safety.commands import JointChunk

Vector = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RecorderConfig:
    """What is recorded and how.

    Attributes:
        fps: rows per second (the dataset's rate).
        cameras: the recorded cameras and their formats.
        joint_names: the arm joints (state and action order).
        gripper_joints: joints whose positions sum to the gripper opening width (empty: no
            gripper column).
        sync: alignment limits (skew, age, frozen detection).
        video: encoder settings.
        follow_bridge_state: flag rows by the safety bridge's state (`on_bridge_state`); off,
            only a missing or non-finite action flags a row (no bridge: the in-process twin).
    """

    fps: float
    cameras: tuple[CameraFormat, ...]
    joint_names: tuple[str, ...]
    gripper_joints: tuple[str, ...] = ()
    sync: SyncConfig = field(default_factory=SyncConfig)
    video: VideoSettings = field(default_factory=VideoSettings)
    follow_bridge_state: bool = False

    @property
    def state_names(self) -> list[str]:
        """Names of the state/action vector entries."""
        return list(self.joint_names) + (['gripper_width_m'] if self.gripper_joints else [])


class Recorder:
    """Feeds, episodes and ticks (see the module docstring).

    `begin` is a callable the dataset writer provides: episode index -> staging directory.
    """

    def __init__(self, config: RecorderConfig,
                 begin: Callable[[], tuple[int, Any]]) -> None:
        self.config = config
        self._begin = begin
        self.sync = Synchronizer([c.name for c in config.cameras], config.sync,
                                 joint_buffer_size=4096)
        self.sent: StreamBuffer[Vector] = StreamBuffer('sent', SyncConfig(buffer_size=512))
        self.gripper_sent: StreamBuffer[Vector] = StreamBuffer('gripper', SyncConfig())
        self._raw: JointChunk | None = None
        self._formats = {c.name: c for c in config.cameras}
        self.episode: EpisodeRecording | None = None
        self.counters: Counter[str] = Counter()
        self.last_refusal: Refusal | None = None
        self._last_reference: float | None = None
        self._last_frame: dict[str, float] = {}
        self._skip_before = -math.inf
        self._start_s = -math.inf
        self._bridge_states: list[tuple[float, str]] = []  # (received at, state), oldest first

    # -- feeds -------------------------------------------------------------------------------

    def on_frame(self, camera: str, stamp_s: float, image: npt.NDArray[Any], encoding: str,
                 seq: int | None = None) -> str | None:
        """A camera frame; refused (and the episode marked) if its format is not the rig's."""
        fmt = self._formats.get(camera)
        if fmt is None:
            return None
        expected = (fmt.height, fmt.width, 3)
        if tuple(image.shape) != expected or encoding != fmt.encoding:
            got = f'{encoding} {image.shape[1] if image.ndim > 1 else "?"}x{image.shape[0]}'
            error = (f'camera {camera}: frame is {got}, the rig records {fmt.encoding} '
                     f'{fmt.width}x{fmt.height}; frame refused')
            self.counters[f'{camera}_malformed'] += 1
            if self.episode is not None:
                self.episode.mark(error)
            return error
        return self.sync.cameras[camera].push(Sample(stamp_s, image, seq))

    def on_joint_state(self, stamp_s: float, names: Sequence[str],
                       positions: Sequence[float]) -> str | None:
        """Measured joint positions (the arm joints, and the gripper joints if recorded)."""
        index = {n: i for i, n in enumerate(names)}
        try:
            q = [float(positions[index[j]]) for j in self.config.joint_names]
            if self.config.gripper_joints:
                q.append(sum(float(positions[index[j]]) for j in self.config.gripper_joints))
        except (KeyError, IndexError):
            self.counters['joint_states_incomplete'] += 1
            return 'joint state lacks recorded joints'
        values = np.array(q)
        if not np.isfinite(values).all():
            self.counters['joint_states_non_finite'] += 1
            return 'joint state has non-finite positions'
        return self.sync.joints.push(Sample(stamp_s, values))

    def on_command_sent(self, stamp_s: float, names: Sequence[str],
                        positions: Sequence[float]) -> None:
        """What the safety bridge sent to the controller (its ~/limited topic)."""
        index = {n: i for i, n in enumerate(names)}
        try:
            q = np.array([positions[index[j]] for j in self.config.joint_names], np.float64)
        except (KeyError, IndexError):
            self.counters['sent_incomplete'] += 1
            return
        self.sent.push(Sample(stamp_s, q))

    def on_raw_target(self, chunk: JointChunk) -> None:
        """The policy/teleop command the bridge received (validated, robot joint order)."""
        self._raw = chunk

    def on_bridge_state(self, stamp_s: float, state: str) -> None:
        """The safety bridge's state from `stamp_s` on.

        One of disarmed | holding | armed | stopping | fault (anything else is not armed).
        """
        states = self._bridge_states
        if states and stamp_s < states[-1][0]:  # a clock jump back (a reset sim): start over
            states.clear()
        states.append((stamp_s, state))
        del states[:-64]  # a state lasts many rows; older ones are never asked for

    def bridge_state_at(self, stamp_s: float) -> str | None:
        """The bridge state in force at `stamp_s` (None: none received by then)."""
        current = None
        for since, state in self._bridge_states:
            if since > stamp_s:
                break
            current = state
        return current

    def on_gripper_command(self, stamp_s: float, width_m: float) -> None:
        """The gripper opening width the bridge sent."""
        if math.isfinite(width_m):
            self.gripper_sent.push(Sample(stamp_s, np.array([width_m])))

    # -- episodes ----------------------------------------------------------------------------

    def start(self, task: str, provenance: Mapping[str, object], now_s: float) -> int:
        """Begin an episode at `now_s` (frames captured before it are not part of it)."""
        if self.episode is not None:
            raise RuntimeError(f'episode {self.episode.index} is still recording; stop or '
                               'discard it first')
        index, staging = self._begin()
        self._last_reference = None
        self._last_frame = {}
        self._skip_before = -math.inf
        self._start_s = now_s
        self.episode = EpisodeRecording(index, task, staging, self.config.cameras,
                                        self.config.fps, self.config.video, provenance)
        self.counters['episodes_started'] += 1
        return index

    def note(self, key: str, value: object) -> None:
        """Add an entry to the running episode's provenance (e.g. spans not to imitate)."""
        if self.episode is None:
            raise RuntimeError('no episode is being recorded')
        self.episode.provenance[key] = value

    def stop(self) -> EpisodeData:
        """End the episode and return its data (the writer commits it)."""
        episode = self._take()
        return episode.finish()

    def discard(self) -> int:
        """Drop the episode being recorded; returns its index."""
        episode = self._take()
        episode.abort()
        self.counters['episodes_discarded'] += 1
        return episode.index

    def detach(self) -> EpisodeRecording:
        """Hand the running episode over unfinished.

        Its encoders flush in `finish`, so a node can finish and commit it off its callback
        thread.
        """
        return self._take()

    def _take(self) -> EpisodeRecording:
        if self.episode is None:
            raise RuntimeError('no episode is being recorded')
        episode, self.episode = self.episode, None
        return episode

    # -- the tick ----------------------------------------------------------------------------

    def _newer_partner(self, camera: str, chosen: Sample[Any], reference: float) -> Sample[Any]:
        """Never reuse a partner frame while a newer one is also within the skew limit.

        A camera out of phase has two frames nearly equally close to each reference; picking
        by distance alone flips between them (a frame recorded twice, or one skipped). Taking
        the oldest frame newer than the previous row's, within the skew limit, keeps every
        frame, once.
        """
        last = self._last_frame.get(camera)
        if last is None:
            return chosen
        for sample in self.sync.cameras[camera].samples:  # oldest first
            if sample.stamp_s > last and \
                    abs(sample.stamp_s - reference) <= self.config.sync.max_skew_s:
                return sample
        return chosen

    def _partners_passed(self, reference: float) -> bool:
        """Every other camera already has frames beyond the skew limit after `reference`."""
        others = [b.newest_stamp() for b in list(self.sync.cameras.values())[1:]]
        return all(s is not None and s > reference + self.config.sync.max_skew_s
                   for s in others)

    def _next_reference(self) -> float | None:
        """The next reference time: a frame of the first camera not yet recorded.

        The oldest one at least 0.75 row periods after the last row whose partner frames
        have all arrived; None if there is none.
        """
        first, *others = self.sync.cameras.values()
        floor = self._start_s if self._last_reference is None else \
            self._last_reference + 0.75 / self.config.fps
        floor = max(floor, math.nextafter(self._skip_before, math.inf))
        newest_others = min((b.newest_stamp() or -math.inf for b in others), default=math.inf)
        for sample in first.samples:
            if sample.stamp_s >= floor:
                # Partners are final once every other camera has a frame at least this new
                # (or as new as the skew allows); otherwise wait for them.
                if newest_others >= sample.stamp_s - 1e-9 or \
                        sample.stamp_s - newest_others > self.config.sync.max_skew_s:
                    return sample.stamp_s
                return None
        return None

    def tick(self, now_s: float) -> Refusal | None:
        """Append one row to the running episode (None: written or nothing to record)."""
        episode = self.episode
        if episode is None:
            return None
        while True:
            reference = self._next_reference()
            if reference is None and (self._last_reference is not None
                                      or now_s - self._start_s < self.config.sync.max_age_s):
                return None  # no new frame to record yet (ticks run faster than the rows)
            aligned = self.sync.assemble(now_s, 1, 1.0 / self.config.fps, reference)
            if isinstance(aligned, Refusal) and reference is not None and \
                    aligned.reason == 'skew' and not self._partners_passed(reference) and \
                    now_s - reference < self.config.sync.max_age_s:
                return None  # its partners are still on their way: wait, no refusal
            if isinstance(aligned, Refusal) and reference is not None and \
                    aligned.reason == 'skew' and self._partners_passed(reference):
                # Its partners will never come: skip this frame (counted) and try the next
                # one, rather than retry it forever.
                self._skip_before = reference
                self.counters['frames_without_partner'] += 1
                episode.mark('frames of the first camera without partners within the skew '
                             'limit (skipped)')
                continue
            break
        if isinstance(aligned, Refusal):
            self.counters[f'ticks_refused_{aligned.reason}'] += 1
            episode.mark(f'ticks without a row: {aligned.stream} {aligned.reason}')
            self.last_refusal = aligned
            return aligned
        self.last_refusal = None
        t = aligned.stamp_s
        state = aligned.joint_positions[0]
        dim = len(self.config.joint_names)
        action = np.full(len(state), math.nan)
        sent = interpolate(self.sent, t, 2.0 / self.config.fps)
        if sent is not None:
            action[:dim] = sent
        raw = np.full(len(state), math.nan)
        if self._raw is not None and self._raw.times_s[0] <= t + 1.0 / self.config.fps:
            raw[:dim] = self._raw.target_at(t)
        if self.config.gripper_joints:
            command = self.gripper_sent.nearest(t)
            if command is not None and command.stamp_s <= t + 1.0 / self.config.fps:
                action[dim] = raw[dim] = float(command.value[0])
            else:  # never commanded yet: the gripper holds where it is (raw stays NaN)
                action[dim] = state[dim]
        frames = {name: self._newer_partner(name, samples[0], t)
                  for name, samples in aligned.frames.items()}
        flags, reasons = self._flags(t, action)
        row = FrameRow(now_s, t, {n: s.value for n, s in frames.items()},
                       {n: s.stamp_s for n, s in frames.items()},
                       {n: -1 if s.seq is None else s.seq for n, s in frames.items()},
                       state, action, raw, flags)
        if episode.add(row):
            self.counters['rows'] += 1
            if flags:
                self.counters['rows_flagged'] += 1
            for reason in reasons:
                episode.mark(reason)
            self._last_reference = t
            self._last_frame = {n: s.stamp_s for n, s in frames.items()}
        return None

    def _flags(self, t: float, action: Vector) -> tuple[int, list[str]]:
        """A row's quality flags at reference time `t`, and the marks they add."""
        flags, reasons = 0, []
        if not np.isfinite(action).all():
            flags |= NO_ACTION
            reasons.append('rows without a valid action (no finite command from the safety '
                           'bridge)')
        if self.config.follow_bridge_state:
            state = self.bridge_state_at(t)
            if state is None:
                flags |= NO_BRIDGE_STATE
                reasons.append('rows recorded before any state from the safety bridge')
            elif state not in ARMED_STATES:
                flags |= NOT_ARMED
                reasons.append(f'rows recorded while the safety bridge was {state!r}')
        return flags, reasons
