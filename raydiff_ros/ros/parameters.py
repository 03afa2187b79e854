"""Declare ROS 2 parameters from a table of specifications, with descriptors and validation.

Each :class:`ParameterSpec` becomes a parameter declared with a ``ParameterDescriptor``
(description, type, numeric range, read-only flag). Numeric ranges are enforced by rclpy itself;
choices and list constraints are enforced by :func:`validate_parameter`, which a node installs
as its set-parameters callback, so a bad value is refused with a message naming the parameter.
"""

from dataclasses import dataclass
import math
from typing import Any, Iterable, Optional, Sequence

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

INT64_MIN, INT64_MAX = -2**63, 2**63 - 1

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}
_LIST_TYPES = {
    str: ParameterType.PARAMETER_STRING_ARRAY,
    float: ParameterType.PARAMETER_DOUBLE_ARRAY,
    int: ParameterType.PARAMETER_INTEGER_ARRAY,
}


@dataclass(frozen=True)
class ParameterSpec:
    """One node parameter.

    name: parameter name (dots allowed for groups). default: its default value; its Python type
    fixes the parameter type (for lists give ``item_type``). minimum / maximum: inclusive range
    for numbers (for lists of numbers: of every item). choices: allowed values of a string.
    read_only: may only be set at start-up (parameters file or launch). unit: shown in the
    description.
    """

    name: str
    default: Any
    description: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    choices: Optional[Sequence[str]] = None
    read_only: bool = False
    item_type: Optional[type] = None
    unit: str = ''

    def __post_init__(self) -> None:
        if self.item_type is not None and not self.default:
            # rclpy cannot infer the type of an empty list default (it becomes a byte array).
            raise ValueError(f'{self.name}: list parameters need a non-empty default')

    def descriptor(self) -> ParameterDescriptor:
        if self.item_type is not None:
            parameter_type = _LIST_TYPES[self.item_type]
        else:
            parameter_type = _TYPES[type(self.default)]
        text = self.description + (f' [{self.unit}]' if self.unit else '')
        constraints = []
        if self.choices:
            constraints.append('one of: ' + ', '.join(self.choices))
        if self.item_type is not None and (self.minimum is not None or self.maximum is not None):
            constraints.append(f'every item in [{self.minimum}, {self.maximum}]')
        descriptor = ParameterDescriptor(
            name=self.name, type=parameter_type, description=text, read_only=self.read_only,
            additional_constraints='; '.join(constraints))
        if self.item_type is None and (self.minimum is not None or self.maximum is not None):
            if isinstance(self.default, bool):
                raise TypeError(f'{self.name}: a bool parameter cannot have a range')
            if isinstance(self.default, int):
                low = INT64_MIN if self.minimum is None else int(self.minimum)
                high = INT64_MAX if self.maximum is None else int(self.maximum)
                descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=0)]
            else:
                low = -math.inf if self.minimum is None else float(self.minimum)
                high = math.inf if self.maximum is None else float(self.maximum)
                descriptor.floating_point_range = [FloatingPointRange(
                    from_value=low, to_value=high, step=0.0)]
        return descriptor


def validate_parameter(spec: ParameterSpec, value: Any) -> Optional[str]:
    """Return why ``value`` is not acceptable for ``spec`` (None when it is)."""
    if spec.choices is not None and value not in spec.choices:
        return f'{spec.name} must be one of {list(spec.choices)}, got {value!r}'
    if spec.item_type is not None:
        for item in value:
            if spec.minimum is not None and item < spec.minimum:
                return f'{spec.name}: item {item!r} is below {spec.minimum}'
            if spec.maximum is not None and item > spec.maximum:
                return f'{spec.name}: item {item!r} is above {spec.maximum}'
    if isinstance(value, float) and value != value:
        return f'{spec.name} must not be NaN'
    return None


def declare_parameters(node: Node, specs: Iterable[ParameterSpec]) -> dict[str, Any]:
    """Declare every spec on ``node``, refuse invalid values now and later; return the values.

    Raises ValueError naming the parameter when a value given at start-up is invalid.
    """
    by_name = {spec.name: spec for spec in specs}
    for spec in by_name.values():
        default = list(spec.default) if spec.item_type is not None else spec.default
        node.declare_parameter(spec.name, default, spec.descriptor())
    values = {name: node.get_parameter(name).value for name in by_name}
    for name, value in values.items():
        reason = validate_parameter(by_name[name], value)
        if reason is not None:
            raise ValueError(reason)

    def on_set(parameters: list[Parameter]) -> SetParametersResult:
        for parameter in parameters:
            spec = by_name.get(parameter.name)
            if spec is None:
                continue
            reason = validate_parameter(spec, parameter.value)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
    return values

