"""Typed node-parameter schemas (pure): each node declares its parameters once, here.

A schema lists every parameter with its type (from the default), description and range. The
ROS layer (visuomotor.ros.parameters) declares them with ParameterDescriptors, so
`ros2 param describe` shows the same text, and validates values set from YAML or the command
line with messages that name the parameter and the allowed range.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
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

    def expected(self) -> str:
        """What a valid value looks like, in words (for error messages)."""
        kind = type(self.default)
        if self.choices is not None:
            return f'one of {list(self.choices)}'
        if kind is bool:
            return 'true or false'
        if kind is str:
            return 'a string'
        what = 'an integer' if kind is int else 'a number'
        if self.minimum is not None and self.maximum is not None:
            return f'{what} within [{self.minimum}, {self.maximum}]'
        if self.minimum is not None:
            return f'{what} >= {self.minimum}'
        if self.maximum is not None:
            return f'{what} <= {self.maximum}'
        return what

    def example(self) -> str:
        """How to set it, with the default as the example value."""
        if isinstance(self.default, str):
            shown = self.default if self.default else '<value>'
        else:
            shown = str(self.default).lower() if isinstance(self.default, bool) \
                else repr(self.default)
        return f'e.g. {self.name}:={shown} (default {self.default!r})'

    def check(self, value: object) -> ParamValue:
        """The value, validated (ints are accepted for float parameters).

        Raises:
            ParameterError: naming the parameter, the expected value and how to set it.
        """
        kind = type(self.default)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not kind:
            fix = self.example()
            if kind is str and isinstance(value, (bool, int, float)):
                fix = (f'quote it so that ROS reads a string: -p "{self.name}:=\'{value}\'" '
                       f"(or {self.name}: '{value}' in a params file)")
            raise ParameterError(self.name, f'must be {self.expected()}, got {_shown(value)}; '
                                 f'{fix}')
        if isinstance(value, float) and not math.isfinite(value):
            raise ParameterError(self.name, f'must be {self.expected()} (finite), got '
                                 f'{value!r}; {self.example()}')
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and (self.minimum is not None and value < self.minimum  # type: ignore[operator]
                        or self.maximum is not None and value > self.maximum):  # type: ignore[operator]
            raise ParameterError(self.name, f'must be {self.expected()}, got {value!r}; '
                                 f'{self.example()}')
        if self.choices is not None and value not in self.choices:
            raise ParameterError(self.name, f'must be one of {list(self.choices)}, got '
                                 f'{value!r}{_did_you_mean(str(value), self.choices)}')
        return value


def _shown(value: object) -> str:
    kinds = {bool: 'a boolean', int: 'an integer', float: 'a number', str: 'a string',
             list: 'a list'}
    return f'{value!r} ({kinds.get(type(value), type(value).__name__)})'


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f' (did you mean {close[0]!r}?)' if close else ''


def resolve(schema: Sequence[Param], values: Mapping[str, object], *,
            node: str = 'this node') -> dict[str, ParamValue]:
    """Defaults overridden by `values`, every value checked; unknown names are refused.

    Raises:
        ParameterError: an unknown name (listing the valid ones) or a value outside the schema.
    """
    known = [p.name for p in schema]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ParameterError(unknown[0], f'is not a parameter of {node}'
                             f'{_did_you_mean(unknown[0], known)}; its parameters are '
                             f'{", ".join(sorted(known))}. Correct the name or remove it')
    return {p.name: p.check(values.get(p.name, p.default)) for p in schema}


#: Shared by every node that runs on the twin's simulated time (visuomotor.ros.lockstep).
LOCKSTEP_PARAM = Param('lockstep', False, "report this node's progress on /sim/lockstep so the "
                       "twin's simulated time never runs ahead of it (the sim node's "
                       'lockstep_with names it); only with use_sim_time')
