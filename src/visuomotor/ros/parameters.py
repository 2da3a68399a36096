"""Declaring a node's parameters from its pure schema (visuomotor.params).

The values given to a node (a `--params-file`, `-p name:=value`, or `parameter_overrides` of
an in-process node) are checked against the schema BEFORE rclpy sees them, so that a bad
value is refused with the project's message (the parameter, what is allowed, how to set it)
instead of an rclpy traceback, an integer is accepted where a float is declared
(`-p real_time_factor:=1`), and a misspelled name is refused, listing the node's parameters,
instead of being ignored silently (rclpy ignores overrides that nothing declares).

Where the values come from: rclpy gathers every override that applies to this node (the
`/**` and `/<node name>` sections of params files, `-p` rules, `parameter_overrides`) into
`Node._parameter_overrides` when the node is built; no public call returns them. Reading that
mapping needs no change to the nodes' constructors (`allow_undeclared_parameters` or
`automatically_declare_parameters_from_overrides` would: and the latter declares every
override with its own type, so `-p real_time_factor:=1` would become an integer parameter).
Should a later rclpy drop the attribute, the parameters are declared the ordinary way, with
rclpy's type and range errors turned into the same ParameterError; only the check for
unknown names is lost (test/ros/test_bad_node_params.py would show it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node

from visuomotor.params import Param, ParameterError, ParamValue, resolve


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


def given_values(node: Node) -> Mapping[str, object] | None:
    """The parameter values given to `node`, or None where rclpy does not expose them.

    They come from params files, `-p` and parameter_overrides. Parameters rclpy declares
    itself (use_sim_time, ...) and QoS overrides are left out.
    """
    overrides = getattr(node, '_parameter_overrides', None)
    if not isinstance(overrides, Mapping):
        return None
    return {name: getattr(parameter, 'value', parameter)
            for name, parameter in overrides.items()
            if not node.has_parameter(name) and not name.startswith('qos_overrides.')}


def declare_parameters(node: Node, schema: Sequence[Param]) -> dict[str, ParamValue]:
    """Declare every parameter of `schema` on `node` and return the checked values.

    Raises:
        ParameterError: a name that is not in the schema, or a value (from a params file or
            `-p`) outside it.
    """
    given = given_values(node)
    if given is not None:
        try:
            values = resolve(schema, given, node=f'node {node.get_name()!r}')
        except ParameterError:
            # The node is refused half-built: destroy it with rclpy's own destroy_node (a
            # node's override expects a complete node), so that shutting the context down
            # does not call into it.
            Node.destroy_node(node)
            raise
        for param in schema:
            node.declare_parameter(param.name, values[param.name], _descriptor(param),
                                   ignore_override=True)
        return values
    declared = {}
    for param in schema:
        try:
            node.declare_parameter(param.name, param.default, _descriptor(param))
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            Node.destroy_node(node)
            raise ParameterError(param.name, f'must be {param.expected()} ({exc}); '
                                 f'{param.example()}') from None
        declared[param.name] = node.get_parameter(param.name).value
    return resolve(schema, declared, node=f'node {node.get_name()!r}')
