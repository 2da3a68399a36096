"""A scripted Quest controller (pure): hand motion and button presses on a timeline.

The twin's stand-in for an operator (visuomotor.ros.sim_quest_node publishes it as
PoseStamped + Joy), and the reference the tests compare the arm's path with. Poses are in
the simulated headset frame `quest_world`, which follows OpenXR's convention (x right, y up,
z towards the operator), so the twin's teleop config has to carry a real headset-to-base
rotation, as a real set-up does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from visuomotor.robots.transforms import Matrix, rotation_from_vector
from visuomotor.teleop.inputs import ControllerInputs

HEADSET_FRAME = 'quest_world'
HAND_START_M = (0.25, 1.1, -0.35)  # right hand in front of the operator, 1.1 m up


@dataclass(frozen=True)
class Segment:
    """One stretch of the script.

    Attributes:
        duration_s: its length.
        move_m: controller displacement over the segment (headset frame), min-jerk profile.
        turn_rad: controller rotation over the segment (rotation vector, headset frame).
        grip, trigger, lower, upper: inputs held during the segment.
        tracked: False: the controller is lost (nothing is published).
        label: what it does (logs).
    """

    duration_s: float
    move_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    turn_rad: tuple[float, float, float] = (0.0, 0.0, 0.0)
    grip: bool = False
    trigger: bool = False
    lower: bool = False
    upper: bool = False
    tracked: bool = True
    label: str = ''


def min_jerk(fraction: float) -> float:
    """The minimum-jerk profile 10 t^3 - 15 t^4 + 6 t^5 on [0, 1]."""
    t = min(max(fraction, 0.0), 1.0)
    return t ** 3 * (10.0 - 15.0 * t + 6.0 * t * t)


@dataclass(frozen=True)
class ScriptSample:
    """The scripted controller at one time (`tracked` False: publish nothing)."""

    position: Matrix
    rotation: Matrix
    inputs: ControllerInputs
    tracked: bool
    segment: int


class ScriptedQuest:
    """Plays segments back; `sample(t)` for t in [0, duration_s]."""

    def __init__(self, segments: Sequence[Segment], jitter_m: float = 0.0, seed: int = 0,
                 start_m: Sequence[float] = HAND_START_M) -> None:
        self.segments = tuple(segments)
        self.jitter_m = jitter_m
        self._rng = np.random.default_rng(seed)
        self.starts = np.concatenate([[0.0], np.cumsum([s.duration_s for s in segments])])
        positions, rotations = [np.array(start_m, dtype=np.float64)], [np.eye(3)]
        for segment in self.segments:
            positions.append(positions[-1] + np.array(segment.move_m))
            rotations.append(rotation_from_vector(segment.turn_rad) @ rotations[-1])
        self._positions, self._rotations = positions, rotations

    @property
    def duration_s(self) -> float:
        """The script's length."""
        return float(self.starts[-1])

    def index_at(self, t: float) -> int:
        """The segment playing at `t` (the last one after the end)."""
        return min(int(np.searchsorted(self.starts, t, side='right')) - 1,
                   len(self.segments) - 1)

    def exact(self, t: float) -> tuple[Matrix, Matrix]:
        """The noise-free controller pose at `t`."""
        index = self.index_at(t)
        segment = self.segments[index]
        s = min_jerk((t - self.starts[index]) / segment.duration_s)
        position = self._positions[index] + s * np.array(segment.move_m)
        rotation = rotation_from_vector(s * np.array(segment.turn_rad)) @ self._rotations[index]
        return position, rotation

    def sample(self, t: float) -> ScriptSample:
        """The controller at `t`, with tracking jitter (Gaussian, `jitter_m` per axis)."""
        index = self.index_at(t)
        segment = self.segments[index]
        position, rotation = self.exact(t)
        if self.jitter_m > 0.0:
            position = position + self._rng.normal(0.0, self.jitter_m, 3)
        inputs = ControllerInputs(1.0 if segment.grip else 0.0,
                                  1.0 if segment.trigger else 0.0, segment.lower, segment.upper)
        return ScriptSample(position, rotation, inputs, segment.tracked, index)


def press(button: str, label: str, hold_s: float = 0.2, after_s: float = 0.4
          ) -> list[Segment]:
    """Press and release `lower` or `upper` (nothing else held)."""
    return [Segment(hold_s, **{button: True}, label=label),  # type: ignore[arg-type]
            Segment(after_s, label=f'{label} released')]


def teleop_session(episodes: int = 3, discard: bool = True) -> list[Segment]:
    """A recording session of `episodes` kept episodes, plus one discarded.

    Each kept episode: start, clutch, reach down, close the gripper, lift, re-clutch, move
    aside, open, stop, hold B to go home. With `discard`, one more is started and discarded
    with B. Hand speeds stay under the commissioning tier's 0.1 m/s.

    Motions are in the headset frame: forward is -z, up is +y, right is +x.
    """
    segments: list[Segment] = [Segment(1.0, label='idle')]
    for k in range(episodes):
        side = 0.04 if k % 2 == 0 else -0.04
        segments += press('lower', f'start episode {k}')
        segments += [
            Segment(0.5, grip=True, label='clutch'),
            Segment(2.0, move_m=(side, 0.0, -0.05), grip=True, label='reach'),
            Segment(2.0, move_m=(0.0, -0.06, 0.0), turn_rad=(0.0, 0.15, 0.0), grip=True,
                    label='down'),
            Segment(0.8, grip=True, trigger=True, label='close'),
            Segment(2.0, move_m=(0.0, 0.06, 0.0), grip=True, trigger=True, label='lift'),
            Segment(0.4, trigger=True, label='unclutch'),
            Segment(1.6, move_m=(0.0, 0.0, 0.08), trigger=True, label='hand back, unclutched'),
            Segment(0.4, grip=True, trigger=True, label='re-clutch'),
            Segment(2.0, move_m=(-side, 0.0, 0.0), turn_rad=(0.0, -0.15, 0.0), grip=True,
                    trigger=True, label='aside'),
            Segment(0.8, grip=True, label='open'),
            Segment(0.4, label='unclutch'),
        ]
        segments += press('lower', f'stop episode {k}')
        segments += [Segment(3.0, upper=True, label='home (held)'),
                     Segment(0.5, label='home released')]
    if discard:
        segments += press('lower', 'start the discarded episode')
        segments += [Segment(0.5, grip=True, label='clutch'),
                     Segment(2.0, move_m=(0.0, 0.0, -0.05), grip=True, label='reach'),
                     Segment(0.4, label='unclutch')]
        segments += press('upper', 'discard')
        segments += [Segment(3.0, upper=True, label='home (held)'),
                     Segment(0.5, label='home released')]
    return segments
