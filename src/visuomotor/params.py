"""Typed node-parameter schemas (pure): each node declares its parameters once, here.

A schema lists every parameter with its type (from the default), description and range. The
ROS layer (visuomotor.ros.parameters) declares them with ParameterDescriptors, so
`ros2 param describe` shows the same text, and validates values set from YAML or the command
line with messages that name the parameter and the allowed range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from visuomotor.errors import FieldError

ParamValue = bool | int | float | str


class ParameterError(FieldError):
    """A node parameter has a value outside its schema."""


@dataclass(frozen=True)
class Param:
    """One node parameter.

    Attributes:
        name: parameter name.
        default: default value; its Python type is the parameter's type.
        description: what it does, with units.
        minimum, maximum: inclusive numeric range.
        choices: allowed string values.
    """

    name: str
    default: ParamValue
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None

    def check(self, value: object) -> ParamValue:
        """The value, validated (ints are accepted for float parameters)."""
        kind = type(self.default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not kind:
            raise ParameterError(self.name, f'must be a {kind.__name__}, got {value!r}')
        if isinstance(value, float) and not math.isfinite(value):
            raise ParameterError(self.name, f'must be finite, got {value!r}')
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and (self.minimum is not None and value < self.minimum  # type: ignore[operator]
                        or self.maximum is not None and value > self.maximum):  # type: ignore[operator]
            raise ParameterError(self.name, f'must be within [{self.minimum}, '
                                     f'{self.maximum}], got {value!r}')
        if self.choices is not None and value not in self.choices:
            raise ParameterError(self.name, f'must be one of {list(self.choices)}, '
                                 f'got {value!r}')
        return value


def resolve(schema: Sequence[Param], values: Mapping[str, object]) -> dict[str, ParamValue]:
    """Defaults overridden by `values`, every value checked; unknown names are refused."""
    known = {p.name for p in schema}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ParameterError(unknown[0], f'is not a parameter of this node; known: '
                             f'{sorted(known)}')
    return {p.name: p.check(values.get(p.name, p.default)) for p in schema}


#: Shared by every node that runs on the twin's simulated time (visuomotor.ros.lockstep).
LOCKSTEP_PARAM = Param('lockstep', False, "report this node's progress on /sim/lockstep so the "
                       "twin's simulated time never runs ahead of it (the sim node's "
                       'lockstep_with names it); only with use_sim_time')
