"""One episode being recorded: frames encoded as they come, rows kept until the episode ends.

Everything lives in the episode's staging directory (`<dataset>/.staging/`, which LeRobot never
reads) until the writer commits it; a crash leaves the dataset as it was, and the staging
directory is removed when the dataset is next opened (the in-progress episode is cleanly
absent).

Every row carries quality flags (the `quality.flags` column; 0: a usable row). A row is flagged
when the safety bridge was not armed at its time (`NOT_ARMED`: disarmed, stopping or fault;
`holding` counts as armed: the bridge is armed and sends the hold setpoint), when it has no
valid action (`NO_ACTION`: no finite command from the bridge at its time), or, where the
recorder follows the bridge's state, when no state had arrived yet (`NO_BRIDGE_STATE`). The
episode's marks count the rows per reason. An episode without one usable row is refused at
commit (`refusal`): it holds no demonstration, and LeRobot would train on its NaN actions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from visuomotor.recording.video import VideoEncoder, VideoSettings

Vector = npt.NDArray[np.float64]

#: `quality.flags` bits (0: a usable row).
NOT_ARMED = 1
NO_ACTION = 2
NO_BRIDGE_STATE = 4
FLAG_REASONS = {
    NOT_ARMED: 'the safety bridge was not armed',
    NO_ACTION: 'no valid action (no finite command from the safety bridge)',
    NO_BRIDGE_STATE: 'no state from the safety bridge yet',
}
#: Bridge states in which the command it sends is a demonstration (see the module docstring).
ARMED_STATES = frozenset({'armed', 'holding'})


def flag_counts(flags: npt.NDArray[np.int64] | npt.NDArray[np.float64]) -> dict[str, int]:
    """Rows per reason (FLAG_REASONS text -> count) of a flags column."""
    values = np.asarray(flags).astype(np.int64)
    counts = {text: int(np.count_nonzero(values & bit)) for bit, text in FLAG_REASONS.items()}
    return {text: n for text, n in counts.items() if n}


def refusal(index: int, flags: npt.NDArray[np.int64] | npt.NDArray[np.float64]) -> str | None:
    """Why an episode must not be committed (None: it has usable rows)."""
    values = np.asarray(flags).astype(np.int64)
    if len(values) == 0 or np.any(values == 0):
        return None
    reasons = '; '.join(f'{n} rows: {text}' for text, n in flag_counts(values).items())
    return (f'episode {index}: none of its {len(values)} rows has a valid action ({reasons}); '
            'not committed. Arm the safety bridge (and acknowledge any fault) before '
            'recording')


@dataclass(frozen=True)
class CameraFormat:
    """What a recorded camera delivers (checked on every frame)."""

    name: str
    width: int
    height: int
    encoding: str = 'rgb8'


@dataclass(frozen=True)
class FrameRow:
    """Everything recorded at one tick.

    Attributes:
        tick_s: the recorder tick (ROS clock).
        reference_s: the time the streams were aligned to (newest common camera time).
        images: camera -> rgb8 frame.
        capture_s: camera -> the frame's capture stamp.
        seq: camera -> the frame's sequence number (-1 if the source has none).
        state: measured joint positions at reference_s (+ gripper width if recorded).
        action: the command the safety bridge sent, at reference_s (+ the gripper width in
            force: the last one commanded, or the measured one before any; recorder.py).
        action_raw: the policy/teleop target before the bridge (NaN where none was active).
        flags: quality flags (0: usable; see the module docstring).
    """

    tick_s: float
    reference_s: float
    images: Mapping[str, npt.NDArray[np.uint8]]
    capture_s: Mapping[str, float]
    seq: Mapping[str, int]
    state: Vector
    action: Vector
    action_raw: Vector
    flags: int = 0


@dataclass
class EpisodeData:
    """A finished episode: its columns, its videos and what was noticed while recording."""

    index: int
    task: str
    fps: float
    columns: dict[str, npt.NDArray[np.float64]]
    videos: dict[str, Path]
    length: int
    marks: list[str] = field(default_factory=list)
    provenance: dict[str, object] = field(default_factory=dict)


class EpisodeRecording:
    """Encoders per camera and the row columns of one episode."""

    def __init__(self, index: int, task: str, staging: Path,
                 cameras: Sequence[CameraFormat], fps: float, video: VideoSettings,
                 provenance: Mapping[str, object]) -> None:
        self.index, self.task, self.fps = index, task, fps
        self.staging = staging
        self.cameras = {c.name: c for c in cameras}
        self.encoders = {c.name: VideoEncoder(staging / f'{c.name}.mp4', c.width, c.height, fps,
                                              video) for c in cameras}
        self.rows: list[FrameRow] = []
        self.marks: list[str] = []
        self.provenance = dict(provenance)
        self._mark_counts: dict[str, int] = {}

    def mark(self, reason: str) -> None:
        """Note something wrong with this episode (kept in its metadata; counted)."""
        count = self._mark_counts.get(reason, 0)
        self._mark_counts[reason] = count + 1
        if count == 0:
            self.marks.append(reason)

    def add(self, row: FrameRow) -> bool:
        """Append one synchronised row; False (and a mark) if a frame could not be queued."""
        behind = [name for name, encoder in self.encoders.items() if not encoder.has_room()]
        if behind:
            # Queueing on some cameras only would desynchronise them from the table: the whole
            # row is skipped instead, and the episode says so.
            self.mark(f'{behind[0]}: the video encoder fell behind; rows skipped')
            return False
        for name, encoder in self.encoders.items():
            if not encoder.add(np.ascontiguousarray(row.images[name])):
                raise RuntimeError(f'{name}: the video encoder failed: {encoder.error}')
        # The frames now belong to the encoders: keep the row without them (a 5-minute episode
        # of two 640x480 cameras would otherwise hold 17 GB of frames).
        self.rows.append(dataclasses.replace(row, images={}))
        return True

    def finish(self) -> EpisodeData:
        """Close the encoders and build the columns."""
        frames = {name: encoder.close() for name, encoder in self.encoders.items()}
        rows = self.rows
        for name, count in frames.items():
            if count != len(rows):
                raise RuntimeError(f'episode {self.index}: {name} encoded {count} frames for '
                                   f'{len(rows)} rows')
        columns: dict[str, npt.NDArray[np.float64]] = {}
        if rows:
            columns['state'] = np.array([r.state for r in rows])
            columns['action'] = np.array([r.action for r in rows])
            columns['action_raw'] = np.array([r.action_raw for r in rows])
            columns['tick_s'] = np.array([r.tick_s for r in rows])
            columns['reference_s'] = np.array([r.reference_s for r in rows])
            columns['flags'] = np.array([r.flags for r in rows], dtype=np.float64)
            for name in self.cameras:
                columns[f'capture_s.{name}'] = np.array([r.capture_s[name] for r in rows])
                columns[f'seq.{name}'] = np.array([r.seq[name] for r in rows], dtype=np.float64)
        for reason, count in self._mark_counts.items():
            if count > 1:
                self.marks[self.marks.index(reason)] = f'{reason} (x{count})'
        self.provenance['measured'] = measured_rates(columns, list(self.cameras))
        return EpisodeData(self.index, self.task, self.fps, columns,
                           {n: e.path for n, e in self.encoders.items()}, len(rows),
                           list(self.marks), self.provenance)

    def refusal(self) -> str | None:
        """Why this episode would be refused at commit (None: it has a usable row)."""
        return refusal(self.index, np.array([r.flags for r in self.rows], dtype=np.int64))

    def abort(self) -> None:
        """Stop the encoders without keeping anything (discard)."""
        for encoder in self.encoders.values():
            with contextlib.suppress(RuntimeError, TimeoutError):
                encoder.close(timeout_s=10.0)


def measured_rates(columns: Mapping[str, npt.NDArray[np.float64]],
                   cameras: Sequence[str]) -> dict[str, float]:
    """The rates the episode actually ran at (ticks and cameras), from its own stamps."""
    out: dict[str, float] = {}
    ticks = columns.get('tick_s')
    if ticks is not None and len(ticks) > 1:
        out['tick_hz'] = float((len(ticks) - 1) / (ticks[-1] - ticks[0]))
    for name in cameras:
        stamps = columns.get(f'capture_s.{name}')
        if stamps is None or len(stamps) < 2:
            continue
        unique = np.unique(stamps)
        span = float(unique[-1] - unique[0])
        out[f'{name}_distinct_frames_hz'] = (len(unique) - 1) / span if span > 0 else math.nan
    return out
