"""Declare ROS 2 parameters from config dataclass fields, with descriptors and validation.

Each :class:`~raydiff_ros.parameter_fields.ParameterField` (name, default, info) becomes a
parameter declared with a ``ParameterDescriptor``: description with its unit, type (that of the
default), inclusive numeric range, read-only flag, and choices and excluded bounds as additional
constraints. rclpy enforces the type, the inclusive range and the read-only flag itself; the
set-parameters callback that :func:`declare_parameters` installs refuses the rest (choices,
excluded bounds, NaN) and, optionally, values that are inconsistent together, with a message
naming the parameter.
"""

import math
from typing import Any, Callable, Iterable, Mapping, Optional

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from raydiff_ros.parameter_fields import ParameterField, check_value

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}

#: Raises ValueError when the values (of every declared name) are inconsistent together;
#: what it returns is ignored.
CheckTogether = Callable[[Mapping[str, Any]], object]


def parameter_descriptor(spec: ParameterField) -> ParameterDescriptor:
    """The descriptor of one parameter (ranges inclusive; excluded bounds as constraints)."""
    info = spec.info
    constraints = []
    if info.choices:
        constraints.append('one of: ' + ', '.join(info.choices))
    if info.exclusive_minimum:
        constraints.append(f'greater than {info.minimum}')
    if info.exclusive_maximum:
        constraints.append(f'less than {info.maximum}')
    descriptor = ParameterDescriptor(
        name=spec.name,
        type=_TYPES[type(spec.default)],
        description=info.text(),
        read_only=info.read_only,
        additional_constraints='; '.join(constraints),
    )
    if info.has_range and isinstance(spec.default, int):
        low = INT64_MIN if info.minimum is None else int(info.minimum)
        high = INT64_MAX if info.maximum is None else int(info.maximum)
        descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=0)]
    elif info.has_range:
        low = -math.inf if info.minimum is None else float(info.minimum)
        high = math.inf if info.maximum is None else float(info.maximum)
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=low, to_value=high, step=0.0)
        ]
    return descriptor


def declare_parameters(
    node: Node, specs: Iterable[ParameterField], check_together: Optional[CheckTogether] = None
) -> dict[str, Any]:
    """Declare every spec on ``node``, refuse invalid values now and later; return the values.

    ``check_together(values)`` (optional) sees every declared value, changes included, after
    each value passed its own checks.

    Raises:
        ValueError: naming the parameter, when a value given at start-up is invalid.
    """
    by_name = {spec.name: spec for spec in specs}
    for spec in by_name.values():
        node.declare_parameter(spec.name, spec.default, parameter_descriptor(spec))
    values = {name: node.get_parameter(name).value for name in by_name}
    reason = _refusal(by_name, values, values, check_together)
    if reason is not None:
        raise ValueError(reason)

    def on_set(parameters: list[Parameter]) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters if p.name in by_name}
        current = {name: node.get_parameter(name).value for name in by_name}
        reason = _refusal(by_name, changes, {**current, **changes}, check_together)
        if reason is not None:
            return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return values


def _refusal(
    by_name: Mapping[str, ParameterField],
    changes: Mapping[str, Any],
    values: Mapping[str, Any],
    check_together: Optional[CheckTogether],
) -> Optional[str]:
    """Why ``changes`` are refused (None when they are accepted); ``values``: all, changed."""
    for name, value in changes.items():
        reason = check_value(name, value, by_name[name].default, by_name[name].info)
        if reason is not None:
            return reason
    if check_together is not None:
        try:
            check_together(values)
        except ValueError as error:
            return str(error)
    return None


def parameter_reader(node: Node) -> Callable[[str], Any]:
    """``read(name)``: the current value of ``node``'s parameter ``name``."""
    return lambda name: node.get_parameter(name).value
