"""The dataset check: stamps, rates, dropped frames, skew, and a look at the episodes.

Are the stamps monotonic, the rates what the dataset claims, how many frames were dropped,
how far apart were the cameras, and what do the episodes look like?

Everything is measured from the capture times and sequence numbers stored with every row,
never from the nominal rate. Failures (the check exits non-zero): an action or a measured
state that is not finite (named by episode, row range and joint: LeRobot would train on it,
with a NaN loss), stamps that go backwards, a row rate more than `rate_tolerance` off the
claimed fps, a video whose frame count differs from its rows. A file that cannot be read (a
truncated parquet or mp4, a missing file) is named with the fix; the other episodes are still
checked. Warnings: rows flagged while recording (`quality.flags`: the safety bridge not armed,
no valid action), dropped frames, skew above the limit, marked episodes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from visuomotor.recording.episode import FLAG_REASONS
from visuomotor.recording.errors import DatasetError
from visuomotor.recording.reader import DatasetReader, Episode

#: At most this many row ranges are listed per episode and problem.
MAX_RANGES = 5


@dataclass
class EpisodeCheck:
    """What the check found in one episode."""

    index: int
    length: int
    task: str
    row_rate_hz: float
    camera_rate_hz: dict[str, float]
    dropped: dict[str, int]
    repeated: dict[str, int]
    skew_ms: dict[str, tuple[float, float, float]]  # median, p99, max |capture - reference|
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class DatasetCheck:
    """The whole report."""

    path: Path
    fps: float
    episodes: list[EpisodeCheck]
    failures: list[str]
    contact_sheet: Path | None = None
    unreadable: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No failure anywhere."""
        return not self.failures and not self.unreadable and \
            not any(e.failures for e in self.episodes)

    def lines(self) -> list[str]:
        """A human-readable report."""
        out = [f'{self.path}: {len(self.episodes)} episodes at {self.fps:g} fps claimed, '
               f'{sum(e.length for e in self.episodes)} rows']
        out += [f'  FAIL {f}' for f in self.failures]
        out += [f'  FAIL unreadable: {u}' for u in self.unreadable]
        for e in self.episodes:
            cams = ', '.join(
                f'{c} {e.camera_rate_hz[c]:.1f} Hz, {e.dropped[c]} dropped, '
                f'{e.repeated[c]} repeated, skew median/p99/max '
                f'{e.skew_ms[c][0]:.1f}/{e.skew_ms[c][1]:.1f}/{e.skew_ms[c][2]:.1f} ms'
                for c in e.camera_rate_hz)
            out.append(f'  episode {e.index} ({e.task!r}, {e.length} rows): rows at '
                       f'{e.row_rate_hz:.2f} Hz; {cams}')
            out += [f'    FAIL {f}' for f in e.failures]
            out += [f'    warn {w}' for w in e.warnings]
        if self.contact_sheet is not None:
            out.append(f'  contact sheet: {self.contact_sheet}')
        out.append('  OK' if self.ok else '  FAILED')
        return out


def _rate(stamps_ns: npt.NDArray[np.int64]) -> float:
    unique = np.unique(stamps_ns)
    if len(unique) < 2:
        return float('nan')
    return float((len(unique) - 1) / ((unique[-1] - unique[0]) * 1e-9))


def compact_names(names: list[str]) -> str:
    """Joint names with runs of numbered ones shortened: fr3_joint1..7."""
    parts, i = [], 0
    numbered = [re.fullmatch(r'(.*?)(\d+)', n) for n in names]
    while i < len(names):
        j = i
        first = numbered[i]
        while first is not None and j + 1 < len(names):
            following = numbered[j + 1]
            if following is None or following[1] != first[1] or \
                    int(following[2]) != int(first[2]) + j + 1 - i:
                break
            j += 1
        if first is not None and j - i >= 2:
            parts.append(f'{names[i]}..{int(first[2]) + j - i}')
        else:
            parts.extend(names[i:j + 1])
        i = j + 1
    return ', '.join(parts)


def row_runs(keys: list[Any]) -> list[tuple[int, int, Any]]:
    """Runs of equal, non-empty keys: (first row, last row, key)."""
    runs: list[tuple[int, int, Any]] = []
    for row, key in enumerate(keys):
        if not key:
            continue
        if runs and runs[-1][1] == row - 1 and runs[-1][2] == key:
            runs[-1] = (runs[-1][0], row, key)
        else:
            runs.append((row, row, key))
    return runs


def _rows(first: int, last: int) -> str:
    return f'row {first}' if first == last else f'rows {first}-{last}'


def non_finite(episode: Episode, column: str, names: list[str]) -> list[str]:
    """Where a vector column is not finite: 'episode 2 rows 0-134: action has NaN in ...'."""
    values = np.asarray(episode.columns.get(column, np.zeros((0, 0))), dtype=np.float64)
    if values.size == 0 or np.isfinite(values).all():
        return []
    bad = ~np.isfinite(values)
    keys = [tuple(np.flatnonzero(r)) for r in bad]
    runs = row_runs(keys)
    out = []
    for first, last, dims in runs[:MAX_RANGES]:
        block = values[first:last + 1][:, list(dims)]
        what = 'NaN' if np.isnan(block).all() else 'non-finite values'
        joints = compact_names([names[d] if d < len(names) else str(d) for d in dims])
        out.append(f'episode {episode.index} {_rows(first, last)}: {column} has {what} in '
                   f'{joints}')
    if len(runs) > MAX_RANGES:
        out.append(f'episode {episode.index}: {column} is not finite in '
                   f'{len(runs) - MAX_RANGES} more row ranges')
    return out


def flagged(episode: Episode) -> list[str]:
    """Row ranges flagged while recording, with the reasons."""
    flags = episode.flags
    keys = [tuple(text for bit, text in FLAG_REASONS.items() if f & bit) for f in flags]
    runs = row_runs(keys)
    out = [f'{_rows(first, last)} flagged ({"; ".join(reasons)}): visuomotor train skips them'
           for first, last, reasons in runs[:MAX_RANGES]]
    if len(runs) > MAX_RANGES:
        out.append(f'{len(runs) - MAX_RANGES} more flagged row ranges '
                   f'({int(np.count_nonzero(flags))} flagged rows in all)')
    return out


def check_episode(episode: Episode, fps: float, *, rate_tolerance: float = 0.05,
                  max_skew_ms: float = 25.0, decode: bool = True,
                  names: list[str] | None = None) -> EpisodeCheck:
    """Check one episode (see the module docstring); `names`: the state/action entries."""
    cols = episode.columns
    tick = cols['timing.tick_ns'].astype(np.int64)
    reference = cols['timing.reference_ns'].astype(np.int64)
    report = EpisodeCheck(episode.index, episode.length, episode.task, _rate(reference), {}, {},
                          {}, {})
    width = np.asarray(cols['action']).reshape(episode.length, -1).shape[1] \
        if 'action' in cols and episode.length else 0
    names = names or [str(d) for d in range(width)]
    missing = non_finite(episode, 'action', names) + \
        non_finite(episode, 'observation.state', names)
    if missing:
        report.failures += missing
        report.failures.append(f'episode {episode.index}: visuomotor train skips rows that are '
                               'not finite, LeRobot trains on them (loss nan): leave the '
                               'episode out of LeRobot training, or re-record it')
    report.warnings += flagged(episode)
    for name, stamps in (('tick', tick), ('reference', reference)):
        if np.any(np.diff(stamps) <= 0):
            bad = int(np.argmax(np.diff(stamps) <= 0))
            report.failures.append(f'{name} stamps do not increase at row {bad + 1}')
    if episode.length > 2 and abs(report.row_rate_hz - fps) > rate_tolerance * fps:
        report.failures.append(f'rows came at {report.row_rate_hz:.2f} Hz, the dataset claims '
                               f'{fps:g} Hz (a loop slower than its nominal rate)')
    for camera, path in episode.videos.items():
        capture = cols[f'timing.capture_ns.{camera}'].astype(np.int64)
        seq = cols[f'timing.seq.{camera}'].astype(np.int64)
        if np.any(np.diff(capture) < 0):
            report.failures.append(f'{camera}: capture stamps go backwards')
        report.camera_rate_hz[camera] = _rate(capture)
        if np.all(seq >= 0):  # the source numbers its frames: gaps are drops
            steps = np.diff(seq)
            moving = steps[steps > 0]
            usual = int(np.median(moving)) if len(moving) else 1
            report.dropped[camera] = int(np.sum(np.maximum(moving - usual, 0)))
        else:  # frames from a topic carry no number: gaps in the capture times instead
            steps = np.diff(capture)
            moving = steps[steps > 0]
            period = float(np.median(moving)) if len(moving) else 1.0
            report.dropped[camera] = int(np.sum(np.maximum(np.round(moving / period) - 1, 0)))
        report.repeated[camera] = int(np.sum(steps == 0))
        skew = np.abs(capture - reference) * 1e-6
        report.skew_ms[camera] = (float(np.median(skew)), float(np.percentile(skew, 99)),
                                  float(skew.max())) if len(skew) else (0.0, 0.0, 0.0)
        if report.dropped[camera]:
            report.warnings.append(f'{camera}: {report.dropped[camera]} frames dropped '
                                   '(sequence gaps)')
        if report.repeated[camera]:
            report.warnings.append(f'{camera}: {report.repeated[camera]} rows reuse the '
                                   "previous row's frame (camera slower than the row rate)")
        if report.skew_ms[camera][2] > max_skew_ms:
            report.warnings.append(f'{camera}: frames up to {report.skew_ms[camera][2]:.1f} '
                                   f'ms from their row time (limit {max_skew_ms:g} ms)')
        if decode:
            frames = _count_frames(path, episode.index, camera)
            if frames != episode.length:
                report.failures.append(f'{camera}: the video has {frames} frames for '
                                       f'{episode.length} rows')
    report.warnings += [f'marked while recording: {m}' for m in episode.marks]
    return report


def _count_frames(path: Path, episode: int, camera: str) -> int:
    import av

    if not path.is_file():
        raise DatasetError(f'{path}: missing (episode {episode} camera {camera}); restore it '
                           'from a copy of the dataset')
    try:
        with av.open(str(path)) as container:
            return sum(1 for _ in container.decode(video=0))
    except (av.FFmpegError, OSError) as exc:
        raise DatasetError(f'{path}: episode {episode} camera {camera}: the video cannot be '
                           f'decoded ({exc}); restore it from a copy of the dataset') from None


def contact_sheet(reader: DatasetReader, out: Path, max_episodes: int = 8,
                  thumb: int = 160) -> Path:
    """A PNG: per episode (rows) the first, middle and last frame of every camera."""
    rows = []
    for index in range(min(len(reader), max_episodes)):
        episode = reader.episode(index)
        tiles = []
        picks = (0, episode.length // 2, episode.length - 1)
        for camera in reader.cameras:
            shown = {k: f for k, f in enumerate(episode.iter_frames(camera)) if k in picks}
            for k, frame in sorted(shown.items()):
                h = int(round(frame.shape[0] * thumb / frame.shape[1]))
                tile = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), (thumb, h),
                                  interpolation=cv2.INTER_AREA)
                cv2.putText(tile, f'ep{index} {camera[:10]} #{k}', (3, 12),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
                tiles.append(tile)
        height = max(t.shape[0] for t in tiles)
        tiles = [cv2.copyMakeBorder(t, 0, height - t.shape[0], 0, 2, cv2.BORDER_CONSTANT)
                 for t in tiles]
        rows.append(np.hstack(tiles))
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([cv2.copyMakeBorder(r, 0, 2, 0, width - r.shape[1],
                                          cv2.BORDER_CONSTANT) for r in rows])
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), sheet)
    return out


def check_dataset(path: str | Path, *, sheet: Path | None = None,
                  **options: Any) -> DatasetCheck:
    """Check every episode (and the totals); optionally write a contact sheet."""
    reader = DatasetReader(path)
    names = list(reader.features.get('action', {}).get('names') or [])
    failures: list[str] = []
    unreadable: list[str] = []
    episodes = []
    for i in range(len(reader)):
        try:
            episodes.append(check_episode(reader.episode(i), reader.fps, names=names,
                                          **options))
        except DatasetError as exc:  # named, and the other episodes still checked
            unreadable.append(str(exc))
    rows = sum(int(r['length']) for r in reader.episode_rows)
    if rows != reader.info['total_frames']:
        failures.append(f'info.json says {reader.info["total_frames"]} frames, the episodes '
                        f'hold {rows}')
    report = DatasetCheck(Path(path), reader.fps, episodes, failures, unreadable=unreadable)
    if sheet is not None and len(reader) and not unreadable:
        report.contact_sheet = contact_sheet(reader, sheet)
    return report
