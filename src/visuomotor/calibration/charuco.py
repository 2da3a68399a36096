"""ChArUco board views: corner detection with OpenCV's aruco module (core cv2), pure.

A view is the chessboard corners OpenCV found in one image, by id, with their board-frame
positions. The board is described by `BoardConfig` (squares, square and marker sizes, the
aruco dictionary), the same description the twin renders.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from visuomotor.errors import VisuomotorError
from visuomotor.sim.board import board_corners, charuco_board
from visuomotor.sim.config import BoardConfig


class CalibrationError(VisuomotorError):
    """A calibration input or result is unusable; the message names it and the fix."""


@dataclass(frozen=True)
class BoardView:
    """The board corners found in one image.

    Attributes:
        ids: chessboard corner ids (OpenCV's order), ascending.
        pixels: (N, 2) sub-pixel corner positions.
        object_points: (N, 3) the same corners in the board frame (metres, z = 0).
        image_size: (width, height) of the image they were found in.
    """

    ids: npt.NDArray[np.int64]
    pixels: npt.NDArray[np.float64]
    object_points: npt.NDArray[np.float64]
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.ids)


def detect_board(image: npt.NDArray[np.uint8], board: BoardConfig, *, encoding: str = 'rgb8',
                 min_corners: int = 6, source: str = 'image') -> BoardView | None:
    """The ChArUco corners in `image`, or None when fewer than `min_corners` are found.

    Corners that lie on one line carry no pose information, so such a view is None too.

    Raises:
        CalibrationError: the image is not an 8-bit mono or 3-channel image.
    """
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or \
            (array.ndim == 3 and array.shape[2] not in (1, 3)):
        raise CalibrationError(f'{source}: expected an 8-bit mono or {encoding} image (H, W) or '
                               f'(H, W, 3), got {array.dtype} {array.shape}; convert it first')
    if array.ndim == 3 and array.shape[2] == 3:
        code = cv2.COLOR_BGR2GRAY if encoding.startswith('bgr') else cv2.COLOR_RGB2GRAY
        gray = cv2.cvtColor(array, code)
    else:
        gray = array.reshape(array.shape[0], array.shape[1])
    charuco = charuco_board(board)
    corners, ids, _, _ = cv2.aruco.CharucoDetector(charuco).detectBoard(gray)
    if ids is None or len(ids) < min_corners:
        return None
    if charuco.checkCharucoCornersCollinear(ids):
        return None
    order = np.argsort(ids.ravel())
    found = ids.ravel()[order].astype(np.int64)
    return BoardView(found, corners.reshape(-1, 2)[order].astype(np.float64),
                     board_corners(board)[found], (int(gray.shape[1]), int(gray.shape[0])))
