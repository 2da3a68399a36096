"""The workspace box the TCP must stay in (pure). There is no default: a cell is measured.

A box is given in the robot's base frame (the frame forward kinematics uses) in a YAML file
under config/workspaces/ or anywhere else; the bridge refuses to arm without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from visuomotor.config_fields import FieldReader, config_path, read_yaml
from visuomotor.errors import FieldError
from visuomotor.paths import share_dir

Vector = npt.NDArray[np.float64]


class WorkspaceError(FieldError):
    """A workspace box file is missing or invalid."""


#: No arm this stack drives reaches further than this from its base (m): a coordinate beyond
#: it is a unit mistake (millimetres), not a cell.
PLAUSIBLE_REACH_M = 3.0
#: A slowdown zone wider than this (m) is a unit mistake too.
PLAUSIBLE_ZONE_M = 1.0


@dataclass(frozen=True)
class WorkspaceBox:
    """An axis-aligned box in the robot base frame.

    Attributes:
        robot: the robot name the box was measured for.
        frame: the robot base frame's name (documentation; FK's base frame).
        min_xyz_m, max_xyz_m: corners, metres.
        slowdown_zone_m: inside this distance from a wall, TCP speed toward it is capped at
            v_cap * sqrt(distance / zone).
        source: where the box comes from (file path).
    """

    robot: str
    frame: str
    min_xyz_m: Vector
    max_xyz_m: Vector
    slowdown_zone_m: float
    source: str

    def contains(self, point: Vector, tolerance_m: float = 0.0) -> bool:
        """Whether `point` (base frame) is inside the box."""
        return bool(np.all(point >= self.min_xyz_m - tolerance_m)
                    and np.all(point <= self.max_xyz_m + tolerance_m))

    def describe(self) -> str:
        """The box as text for log lines."""
        lo, hi = self.min_xyz_m, self.max_xyz_m
        return (f'x [{lo[0]:.3f}, {hi[0]:.3f}] y [{lo[1]:.3f}, {hi[1]:.3f}] '
                f'z [{lo[2]:.3f}, {hi[2]:.3f}] m in {self.frame}')


def workspace_from_dict(data: object, source: str = 'workspace') -> WorkspaceBox:
    """Build and validate a box from parsed YAML."""
    reader = FieldReader(data, '', WorkspaceError)
    reader.unknown({'robot', 'frame', 'min_xyz_m', 'max_xyz_m', 'slowdown_zone_m'})
    lo = np.array(reader.numbers('min_xyz_m', 3))
    hi = np.array(reader.numbers('max_xyz_m', 3))
    zone = reader.number('slowdown_zone_m', positive=True)
    for key, values in (('min_xyz_m', lo), ('max_xyz_m', hi), ('slowdown_zone_m', [zone])):
        limit = PLAUSIBLE_ZONE_M if key == 'slowdown_zone_m' else PLAUSIBLE_REACH_M
        if any(abs(v) > limit for v in values):
            shown = [float(v) for v in values] if len(values) > 1 else float(values[0])
            raise WorkspaceError(key, f'{shown} looks like millimetres: values are metres in '
                                 f'the robot base frame (no arm reaches beyond {limit:g} m); '
                                 'divide by 1000, e.g. 150 mm -> 0.15')
    for axis, name in enumerate('xyz'):
        if hi[axis] - lo[axis] <= 2.0 * zone:
            raise WorkspaceError('max_xyz_m', f'{name} range [{lo[axis]}, {hi[axis]}] m must be '
                                 f'wider than two slowdown zones ({2 * zone} m)')
    return WorkspaceBox(robot=reader.text('robot'), frame=reader.text('frame'), min_xyz_m=lo,
                        max_xyz_m=hi, slowdown_zone_m=zone, source=source)


def load_workspace(name_or_path: str | Path, robot: str | None = None) -> WorkspaceBox:
    """A box by name (a file in config/workspaces) or path.

    Args:
        name_or_path: the box's name or file.
        robot: the robot that will be held in it; a box measured for another robot (its
            `robot:` field) is refused. None: not checked.

    Raises:
        WorkspaceError: empty name (no default box), unknown name, an invalid file, or a box
            for another robot.
    """
    text = str(name_or_path)
    if not text:
        raise WorkspaceError('workspace', 'no workspace box is configured, and there is no '
                             'default: measure the cell and give a file with min_xyz_m / '
                             'max_xyz_m in the robot base frame (see config/workspaces/)')
    path = config_path(text, share_dir() / 'config' / 'workspaces', 'workspace',
                       WorkspaceError)
    data = read_yaml(path, WorkspaceError, 'workspace')
    try:
        box = workspace_from_dict(data, str(path))
    except WorkspaceError as error:
        raise WorkspaceError(f'{path}: {error.field}', str(error).split(': ', 1)[1]) from None
    if robot is not None and box.robot != robot:
        raise WorkspaceError(f'{path}: robot', f'the box was measured for {box.robot!r}, but '
                             f'this is {robot!r}: give the workspace of the {robot} cell '
                             f'(e.g. twin_{robot} on the twin), or measure one')
    return box
