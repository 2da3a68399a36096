"""A working MUJOCO_GL default for the twin's offscreen rendering, set before mujoco loads.

MuJoCo picks its OpenGL platform from MUJOCO_GL when `mujoco` is first imported; unset, it
uses GLFW, which needs a display, and the first render then fails with "an OpenGL platform
library has not been loaded into this process". scripts/env.sh exports MUJOCO_GL=egl, but
`source .venv/bin/activate`, `ros2 run` and an IDE do not, so the modules that import mujoco
import this one first (`from visuomotor.sim import mujoco_gl` before `import mujoco`).

A value the user set is always kept. Otherwise: egl (GPU or Mesa's EGL, no display needed)
when libEGL is installed, else osmesa (CPU) when libOSMesa is, else GLFW where a display is
set; with none of them, egl stays chosen and its error names what to install.
"""

from __future__ import annotations

import ctypes.util
import os
from collections.abc import Callable, Mapping


def default_platform(environ: Mapping[str, str],
                     find_library: Callable[[str], str | None] = ctypes.util.find_library,
                     ) -> str | None:
    """The MUJOCO_GL value to use when the user set none (None: leave it unset, GLFW)."""
    pyopengl = environ.get('PYOPENGL_PLATFORM', '').lower()
    if pyopengl in ('egl', 'osmesa'):
        return pyopengl  # mujoco refuses a MUJOCO_GL that differs from PyOpenGL's platform
    if pyopengl:
        return None
    if find_library('EGL'):
        return 'egl'
    if find_library('OSMesa'):
        return 'osmesa'
    if environ.get('DISPLAY') or environ.get('WAYLAND_DISPLAY'):
        return None
    return 'egl'


def set_default() -> str | None:
    """Set MUJOCO_GL unless the user did; the value in effect (None: GLFW)."""
    if 'MUJOCO_GL' not in os.environ:
        chosen = default_platform(os.environ)
        if chosen is not None:
            os.environ['MUJOCO_GL'] = chosen
    return os.environ.get('MUJOCO_GL')


MUJOCO_GL = set_default()
