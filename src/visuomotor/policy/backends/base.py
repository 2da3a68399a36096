"""The one small interface every inference backend implements."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

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


@runtime_checkable
class ExtraOutputs(Protocol):
    """A backend that can also return the network's other named outputs (e.g. feature points).

    Attributes:
        extra_outputs: the names it can return besides the spec's output.
    """

    extra_outputs: tuple[str, ...]

    def run_with(self, inputs: Arrays, extras: tuple[str, ...]
                 ) -> tuple[npt.NDArray[np.float32], dict[str, npt.NDArray[np.float32]]]:
        """One forward pass returning the spec's output and the named extras (host float32)."""
        ...
