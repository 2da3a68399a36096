"""The MuJoCo twin as a camera: renders the twin's current state, stamped with its sim time.

The twin's own node (`sim_node`) publishes its cameras on simulated time; this backend is for
in-process use (recording benches, tests) where the caller steps the twin.
"""

from __future__ import annotations

from visuomotor.cameras.camera import CameraError, Frame
from visuomotor.sim.twin import Twin


class TwinCamera:
    """One camera of a Twin; every read renders a new frame at the twin's current time."""

    encoding = 'rgb8'

    def __init__(self, twin: Twin, name: str) -> None:
        if name not in twin.camera_names:
            raise CameraError(f'camera {name!r} is not in the twin scene (it has '
                              f'{list(twin.camera_names)})')
        self.twin, self.name = twin, name
        self._seq = -1

    def start(self) -> None:
        """Nothing to open."""

    def read(self, timeout_s: float = 1.0) -> Frame:
        """Render now (the timeout is irrelevant: rendering never waits for a device)."""
        image = self.twin.render([self.name])[self.name]
        self._seq += 1
        now = self.twin.time_s
        return Frame(image, now, self._seq, self.encoding, now)

    def stop(self) -> None:
        """Nothing to release (the twin owns the renderers)."""
