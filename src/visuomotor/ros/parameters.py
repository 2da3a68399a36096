"""Declaring a node's parameters from its pure schema (visuomotor.params)."""

from __future__ import annotations

from collections.abc import Sequence

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from visuomotor.params import Param, ParamValue, resolve


def _descriptor(param: Param) -> ParameterDescriptor:
    descriptor = ParameterDescriptor(name=param.name, description=param.description)
    if param.choices:
        descriptor.additional_constraints = f'one of {list(param.choices)}'
    # Ranges are checked by `resolve` with a clearer message; the descriptor advertises them.
    if isinstance(param.default, float) and param.minimum is not None \
            and param.maximum is not None:
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(param.minimum), to_value=float(param.maximum))]
    elif isinstance(param.default, int) and not isinstance(param.default, bool) \
            and param.minimum is not None and param.maximum is not None:
        descriptor.integer_range = [IntegerRange(
            from_value=int(param.minimum), to_value=int(param.maximum), step=1)]
    return descriptor


def declare_parameters(node: Node, schema: Sequence[Param]) -> dict[str, ParamValue]:
    """Declare every parameter of `schema` on `node` and return the checked values.

    Raises:
        ParameterError: a value (from a params file or `-p`) is outside the schema.
    """
    values = {}
    for param in schema:
        node.declare_parameter(param.name, param.default, _descriptor(param))
        values[param.name] = node.get_parameter(param.name).value
    return resolve(schema, values)
