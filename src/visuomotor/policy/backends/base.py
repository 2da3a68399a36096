"""The one small interface every inference backend implements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Arrays = Mapping[str, npt.NDArray[Any]]


class InferenceBackend(Protocol):
    """Runs the bundle's network: named float32 inputs in, the spec's output out.

    Attributes:
        name: what was chosen, e.g. `onnxruntime[CPUExecutionProvider]` (logged at start).
        precision: `float32`, or `float16` for reduced-precision engines (looser golden check).
    """

    name: str
    precision: str

    def run(self, inputs: Arrays) -> npt.NDArray[np.float32]:
        """One forward pass; returns the output named by the spec, as float32 on the host."""
        ...
