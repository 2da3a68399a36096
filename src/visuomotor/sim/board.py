"""The ChArUco calibration board of the twin: its texture and its ground-truth corners."""

from __future__ import annotations

import cv2
import numpy as np

from visuomotor.robots.transforms import Matrix
from visuomotor.sim.config import BoardConfig, SceneConfigError

PIXELS_PER_SQUARE = 100


def charuco_board(config: BoardConfig) -> cv2.aruco.CharucoBoard:
    """The OpenCV board object matching the rendered board (for detection)."""
    dictionary_id = getattr(cv2.aruco, config.dictionary, None)
    if not isinstance(dictionary_id, int) or not config.dictionary.startswith('DICT_'):
        raise SceneConfigError('board.dictionary', f'{config.dictionary!r} is not an OpenCV '
                               f'aruco dictionary (e.g. DICT_4X4_50, DICT_5X5_100)')
    dictionary = cv2.aruco.getPredefinedDictionary(dictionary_id)
    return cv2.aruco.CharucoBoard(config.squares, config.square_m, config.marker_m,
                                  dictionary)


def board_size_m(config: BoardConfig) -> tuple[float, float]:
    """Width (along board x) and height (along board y) of the board."""
    return config.squares[0] * config.square_m, config.squares[1] * config.square_m


def board_texture_png(config: BoardConfig) -> bytes:
    """The board image as PNG bytes (row 0 at board y = 0, column 0 at board x = 0)."""
    board = charuco_board(config)
    size = (config.squares[0] * PIXELS_PER_SQUARE, config.squares[1] * PIXELS_PER_SQUARE)
    gray = board.generateImage(size, marginSize=0)
    ok, png = cv2.imencode('.png', cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB))
    if not ok:  # pragma: no cover - OpenCV cannot fail to encode a valid image
        raise RuntimeError('OpenCV could not encode the board texture')
    return bytes(png.tobytes())


def board_corners(config: BoardConfig) -> Matrix:
    """Chessboard corner positions in the board frame, shape (N, 3), OpenCV's id order."""
    return np.asarray(charuco_board(config).getChessboardCorners(), dtype=np.float64)


def corners_in_world(config: BoardConfig, board_pose_world: Matrix) -> Matrix:
    """Corner positions in the world for a board at `board_pose_world` (4x4)."""
    corners = board_corners(config)
    return np.asarray((board_pose_world[:3, :3] @ corners.T).T + board_pose_world[:3, 3])
