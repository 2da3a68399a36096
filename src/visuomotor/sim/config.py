"""The twin's scene description: robot, mounting, table, object, target, cameras, board.

Defaults live here; the rig files under config/sim/ (`fr3.yaml`, `ur5e.yaml`) choose the
robot and place its cameras. World frame: x forward from the robot, z up, origin on the
table top below the robot base.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from visuomotor.cameras.intrinsics import CameraIntrinsics
from visuomotor.config_fields import FieldReader, config_path, read_yaml
from visuomotor.errors import FieldError
from visuomotor.paths import share_dir
from visuomotor.robots.description import RobotDescription, load_robot
from visuomotor.robots.transforms import Matrix, from_xyz_rpy


class SceneConfigError(FieldError):
    """A twin scene file has a missing or impossible value."""


@dataclass(frozen=True)
class CameraConfig:
    """One simulated camera with OpenCV-convention intrinsics (pixel centres at integers).

    Attributes:
        name: camera name; topics are `<name>/image_raw` and `<name>/camera_info`.
        mount: `world` (fixed scene camera) or `hand` (eye-in-hand, moves with the flange).
        width, height: image size in pixels.
        fx_px, fy_px, cx_px, cy_px: pinhole intrinsics (no distortion: the render has none).
        xyz_m: optical-frame origin in the mount frame (world, or the robot flange).
        look_at_m: a point the optical axis passes through (mount frame); or use rpy_deg.
        rpy_deg: optical-frame orientation (z forward, x right, y down) in the mount frame.
        up: with look_at_m, the mount-frame direction that appears upwards in the image.
        fps: frame rate the sim publishes at.
    """

    name: str
    mount: str
    width: int
    height: int
    fx_px: float
    fy_px: float
    cx_px: float
    cy_px: float
    xyz_m: tuple[float, float, float]
    look_at_m: tuple[float, float, float] | None = None
    rpy_deg: tuple[float, float, float] | None = None
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fps: float = 20.0

    def intrinsics(self) -> CameraIntrinsics:
        """The CameraInfo-equivalent of this camera."""
        return CameraIntrinsics.from_pinhole(self.width, self.height, self.fx_px, self.fy_px,
                                             self.cx_px, self.cy_px, camera_name=self.name)

    def optical_pose(self) -> Matrix:
        """Pose of the optical frame in the mount frame (4x4)."""
        if self.rpy_deg is not None:
            return from_xyz_rpy(self.xyz_m, [math.radians(a) for a in self.rpy_deg])
        assert self.look_at_m is not None  # guaranteed by the loader
        return look_at(self.xyz_m, self.look_at_m, self.up)

    def resized(self, width: int, height: int) -> CameraConfig:
        """The same camera at another resolution (intrinsics scaled, same field of view)."""
        sx, sy = width / self.width, height / self.height
        return replace(self, width=width, height=height, fx_px=self.fx_px * sx,
                       fy_px=self.fy_px * sy, cx_px=(self.cx_px + 0.5) * sx - 0.5,
                       cy_px=(self.cy_px + 0.5) * sy - 0.5)


def look_at(eye: tuple[float, float, float], target: tuple[float, float, float],
            up: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> Matrix:
    """Optical frame (z towards `target`, y down, x right) at `eye`, as a 4x4 pose."""
    z = np.subtract(target, eye).astype(np.float64)
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        x = np.cross(z, (1.0, 0.0, 0.0))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, :3] = np.column_stack([x, y, z])
    pose[:3, 3] = eye
    return pose


@dataclass(frozen=True)
class BoardConfig:
    """A ChArUco calibration board placed in the scene or held by the gripper.

    The board frame is OpenCV's: origin at the board's first chessboard corner area
    origin, x along the squares, y along the columns, z into the board (the printed face
    looks towards -z).

    Attributes:
        mount: `world` or `hand`.
        xyz_m, rpy_deg: board frame in the mount frame.
        squares: squares along x and y.
        square_m, marker_m: square and marker side lengths.
        dictionary: an OpenCV aruco predefined dictionary name.
    """

    mount: str = 'world'
    xyz_m: tuple[float, float, float] = (0.35, 0.1, 0.002)
    rpy_deg: tuple[float, float, float] = (180.0, 0.0, 0.0)
    squares: tuple[int, int] = (5, 7)
    square_m: float = 0.03
    marker_m: float = 0.022
    dictionary: str = 'DICT_4X4_50'

    def pose(self) -> Matrix:
        """Board frame in the mount frame (4x4)."""
        return from_xyz_rpy(self.xyz_m, [math.radians(a) for a in self.rpy_deg])


@dataclass(frozen=True)
class TaskConfig:
    """Pick the cube and place it on the target square.

    Attributes:
        object_size_m: cube edge.
        object_mass_kg: cube mass.
        object_rgba: cube colour (randomised around it when `randomize_appearance`).
        object_region_m: (x_min, x_max, y_min, y_max) of the cube's spawn area.
        target_half_m: half the side of the target square.
        target_region_m: spawn area of the target centre.
        min_separation_m: least distance between the cube and target centres at reset.
        randomize_appearance: vary colours and lighting per seed (visual diversity).
    """

    object_size_m: float = 0.045
    object_mass_kg: float = 0.08
    object_rgba: tuple[float, float, float, float] = (0.85, 0.15, 0.12, 1.0)
    object_region_m: tuple[float, float, float, float] = (0.42, 0.58, -0.18, 0.0)
    target_half_m: float = 0.05
    target_rgba: tuple[float, float, float, float] = (0.2, 0.65, 0.3, 1.0)
    target_region_m: tuple[float, float, float, float] = (0.42, 0.58, 0.1, 0.22)
    min_separation_m: float = 0.15
    randomize_appearance: bool = True


@dataclass(frozen=True)
class SceneConfig:
    """Everything the twin is built from.

    Attributes:
        robot: the arm (its DH parameters, limits and gripper).
        base_xyz_m, base_rpy_deg: robot base frame in the world.
        cameras: simulated cameras.
        task: the manipulation task.
        board: optional calibration board.
        timestep_s: physics step.
        shadows: render shadows (costs ~6 ms per frame in software GL at 1024 px maps).
        table_size_m: table top (x, y) size; its centre is at table_center_xy_m.
        source: file it came from (for error messages).
    """

    robot: RobotDescription
    base_xyz_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    base_rpy_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    cameras: tuple[CameraConfig, ...] = ()
    task: TaskConfig = field(default_factory=TaskConfig)
    board: BoardConfig | None = None
    timestep_s: float = 0.002
    shadows: bool = False
    table_size_m: tuple[float, float] = (1.0, 1.2)
    table_center_xy_m: tuple[float, float] = (0.35, 0.0)
    source: str = 'code'

    def base_pose(self) -> Matrix:
        """Robot base in the world (4x4)."""
        return from_xyz_rpy(self.base_xyz_m, [math.radians(a) for a in self.base_rpy_deg])

    def camera(self, name: str) -> CameraConfig:
        """The camera called `name`."""
        for camera in self.cameras:
            if camera.name == name:
                return camera
        raise SceneConfigError('cameras', f'no camera {name!r} in {self.source}; cameras: '
                               f'{[c.name for c in self.cameras]}')

    def with_resolution(self, width: int, height: int) -> SceneConfig:
        """All cameras at another resolution (intrinsics scaled)."""
        return replace(self, cameras=tuple(c.resized(width, height) for c in self.cameras))


def _camera(reader: FieldReader) -> CameraConfig:
    reader.unknown({'name', 'mount', 'width', 'height', 'fx_px', 'fy_px', 'cx_px', 'cy_px',
                    'xyz_m', 'look_at_m', 'rpy_deg', 'up', 'fps'})
    width, height = reader.integer('width'), reader.integer('height')
    if reader.has('look_at_m') == reader.has('rpy_deg'):
        raise reader.fail('look_at_m', 'give exactly one of look_at_m and rpy_deg')
    return CameraConfig(
        name=reader.text('name'), mount=reader.text('mount', choices=('world', 'hand')),
        width=width, height=height, fx_px=reader.number('fx_px', positive=True),
        fy_px=reader.number('fy_px', positive=True),
        cx_px=reader.number('cx_px', minimum=0, maximum=width - 1),
        cy_px=reader.number('cy_px', minimum=0, maximum=height - 1),
        xyz_m=reader.numbers('xyz_m', 3),  # type: ignore[arg-type]
        look_at_m=reader.numbers('look_at_m', 3) if reader.has('look_at_m')  # type: ignore[arg-type]
        else None,
        rpy_deg=reader.numbers('rpy_deg', 3) if reader.has('rpy_deg')  # type: ignore[arg-type]
        else None,
        up=reader.numbers('up', 3, (0.0, 0.0, 1.0)),  # type: ignore[arg-type]
        fps=reader.number('fps', 20.0, positive=True, maximum=1000.0))


def _board(reader: FieldReader) -> BoardConfig:
    reader.unknown({'mount', 'xyz_m', 'rpy_deg', 'squares', 'square_m', 'marker_m',
                    'dictionary'})
    default = BoardConfig()
    squares = reader.numbers('squares', 2, tuple(float(s) for s in default.squares))
    if any(s != int(s) or s < 3 for s in squares):
        raise reader.fail('squares', f'must be two integers >= 3, got {list(squares)}')
    square = reader.number('square_m', default.square_m, positive=True)
    marker = reader.number('marker_m', default.marker_m, positive=True)
    if marker >= square:
        raise reader.fail('marker_m', f'must be smaller than square_m ({marker} >= {square})')
    return BoardConfig(
        mount=reader.text('mount', default.mount, choices=('world', 'hand')),
        xyz_m=reader.numbers('xyz_m', 3, default.xyz_m),  # type: ignore[arg-type]
        rpy_deg=reader.numbers('rpy_deg', 3, default.rpy_deg),  # type: ignore[arg-type]
        squares=(int(squares[0]), int(squares[1])), square_m=square, marker_m=marker,
        dictionary=reader.text('dictionary', default.dictionary))


def _region(reader: FieldReader, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
    region = reader.numbers(key, 4, default)
    if region[0] > region[1] or region[2] > region[3]:
        raise reader.fail(key, f'must be [x_min, x_max, y_min, y_max], got {list(region)}')
    return region


def _task(reader: FieldReader) -> TaskConfig:
    reader.unknown({'object_size_m', 'object_mass_kg', 'object_region_m', 'target_half_m',
                    'target_region_m', 'min_separation_m', 'randomize_appearance'})
    d = TaskConfig()
    return TaskConfig(
        object_size_m=reader.number('object_size_m', d.object_size_m, positive=True),
        object_mass_kg=reader.number('object_mass_kg', d.object_mass_kg, positive=True),
        object_region_m=_region(reader, 'object_region_m',  # type: ignore[arg-type]
                                d.object_region_m),
        target_half_m=reader.number('target_half_m', d.target_half_m, positive=True),
        target_region_m=_region(reader, 'target_region_m',  # type: ignore[arg-type]
                                d.target_region_m),
        min_separation_m=reader.number('min_separation_m', d.min_separation_m, minimum=0.0),
        randomize_appearance=reader.boolean('randomize_appearance', d.randomize_appearance))


def scene_from_dict(data: object, source: str = 'scene') -> SceneConfig:
    """Build a scene from parsed YAML.

    Raises:
        SceneConfigError: naming the field, e.g. `cameras[0].fx_px`.
    """
    reader = FieldReader(data, '', SceneConfigError)
    reader.unknown({'robot', 'base_xyz_m', 'base_rpy_deg', 'cameras', 'task', 'board',
                    'timestep_s', 'shadows'})
    try:
        robot = load_robot(reader.text('robot'))
    except FieldError as error:
        raise SceneConfigError('robot', str(error)) from None
    cameras = tuple(_camera(c) for c in reader.children('cameras'))
    names = [camera.name for camera in cameras]
    if len(set(names)) != len(names):
        raise SceneConfigError('cameras', f'camera names must be unique, got {names}')
    return SceneConfig(
        robot=robot, base_xyz_m=reader.numbers('base_xyz_m', 3, (0.0, 0.0, 0.0)),  # type: ignore[arg-type]
        base_rpy_deg=reader.numbers('base_rpy_deg', 3, (0.0, 0.0, 0.0)),  # type: ignore[arg-type]
        cameras=cameras,
        task=_task(reader.child('task')) if reader.has('task') else TaskConfig(),
        board=_board(reader.child('board')) if reader.has('board') else None,
        timestep_s=reader.number('timestep_s', 0.002, positive=True, maximum=0.01),
        shadows=reader.boolean('shadows', False), source=source)


def load_scene(name_or_path: str | Path) -> SceneConfig:
    """Load a scene by name (`fr3`, `ur5e`: config/sim/<name>.yaml) or from a YAML path."""
    path = config_path(name_or_path, share_dir() / 'config' / 'sim', 'scene',
                       SceneConfigError)
    try:
        return scene_from_dict(read_yaml(path, SceneConfigError, 'scene'), str(path))
    except SceneConfigError as error:
        if error.field.startswith(str(path)):
            raise
        raise SceneConfigError(f'{path}: {error.field}', str(error).split(': ', 1)[1]
                               ) from None
