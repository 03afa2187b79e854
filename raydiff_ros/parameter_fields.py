"""Config dataclass fields that carry their parameter metadata: each default and range once.

A config class (a frozen dataclass) declares each field with :func:`parameter`, which stores
the default in the field and a :class:`ParameterInfo` (description, range, choices, unit,
read-only flag) in its metadata. From there:

* :func:`parameter_fields` lists ``(name, default, info)`` of a config class (the estimator node
  declares its ROS parameters from it; ``tools/write_estimate_config.py`` writes
  ``config/estimate.yaml`` from it);
* :func:`check_fields` validates an instance field by field (type, range, choices, NaN) and
  raises the caller's exception type naming the field; a class calls it first thing in
  ``__post_init__`` and keeps only its cross-field checks;
* :func:`check_value` is the same check for one value (the node's set-parameters callback);
* :func:`scalar_value` is its type check alone, the one every typed config of the package
  uses (YAML model and training configs, estimator options, pipeline parameters).

Ranges are inclusive unless ``exclusive_minimum`` / ``exclusive_maximum`` (ROS descriptors only
have inclusive ranges; the node refuses the excluded bound in its callback). A value's type is
that of the default; ints are accepted where the default is a float. Plain scalars only
(bool, int, float, str). Imports nothing from raydiff_ros and nothing from ROS.
"""

from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
import math
import numbers
from typing import Any, NamedTuple, Optional, Sequence

#: Key of the :class:`ParameterInfo` in a dataclass field's metadata.
METADATA_KEY = 'raydiff_ros.parameter'
SCALAR_TYPES = (bool, int, float, str)


@dataclass(frozen=True)
class ParameterInfo:
    """What a parameter means and which values it takes (everything but its default).

    description: one line for the ROS descriptor and the YAML comment. minimum / maximum:
    numeric bounds (None: unbounded), inclusive unless exclusive_minimum / exclusive_maximum.
    choices: the allowed values of a string. unit: shown after the description, e.g. ``s``.
    read_only: may only be set at start-up (parameters file or launch).
    """

    description: str
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: Optional[tuple[str, ...]] = None
    unit: str = ''
    read_only: bool = False

    @property
    def has_range(self) -> bool:
        return self.minimum is not None or self.maximum is not None

    def range_text(self) -> str:
        """The range as an interval, e.g. ``(0.0, 1.0]`` or ``[16, inf]``; '' when unbounded."""
        if not self.has_range:
            return ''
        low = '-inf' if self.minimum is None else self.minimum
        high = 'inf' if self.maximum is None else self.maximum
        return (
            ('(' if self.exclusive_minimum else '[')
            + f'{low}, {high}'
            + (')' if self.exclusive_maximum else ']')
        )

    def text(self) -> str:
        """The description with its unit, e.g. ``period of /diagnostics [s]``."""
        return self.description + (f' [{self.unit}]' if self.unit else '')


class ParameterField(NamedTuple):
    """One parameter of a config class: field name, default value and metadata."""

    name: str
    default: Any
    info: ParameterInfo


def parameter(
    default: Any,
    description: str,
    *,
    minimum: Optional[float] = None,
    maximum: Optional[float] = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    choices: Optional[Sequence[str]] = None,
    unit: str = '',
    read_only: bool = False,
) -> Any:
    """A dataclass field with ``default`` and its :class:`ParameterInfo` (see the module doc).

    Raises:
        TypeError: a default that is not a bool, int, float or str, a range on a bool or a
            str, choices on anything but a str.
        ValueError: a default outside its own range or choices.
    """
    if type(default) not in SCALAR_TYPES:
        raise TypeError(f'a parameter default must be one of {SCALAR_TYPES}, got {default!r}')
    info = ParameterInfo(
        description=description,
        minimum=minimum,
        maximum=maximum,
        exclusive_minimum=exclusive_minimum,
        exclusive_maximum=exclusive_maximum,
        choices=None if choices is None else tuple(choices),
        unit=unit,
        read_only=read_only,
    )
    if info.has_range and type(default) not in (int, float):
        raise TypeError(f'only numbers have a range, got the default {default!r}')
    if choices is not None and not isinstance(default, str):
        raise TypeError(f'only strings have choices, got the default {default!r}')
    reason = check_value('default', default, default, info)
    if reason is not None:
        raise ValueError(reason)
    return field(default=default, metadata={METADATA_KEY: info})


def parameter_fields(config: Any) -> tuple[ParameterField, ...]:
    """``(name, default, info)`` of every field of a config class (or instance), in order.

    Raises:
        TypeError: ``config`` is not a dataclass, or one of its fields was not declared with
            :func:`parameter`.
    """
    if not is_dataclass(config):
        raise TypeError(f'{config!r} is not a dataclass')
    return tuple(_parameter_field(f) for f in fields(config))


def _parameter_field(f: Field) -> ParameterField:
    info = f.metadata.get(METADATA_KEY)
    if info is None or f.default is MISSING:
        raise TypeError(f'field {f.name} was not declared with parameter()')
    return ParameterField(f.name, f.default, info)


#: How messages name the value each scalar type takes.
SCALAR_NAMES = {bool: 'true or false', int: 'an integer', float: 'a number', str: 'a string'}


def scalar_value(value: Any, expected: type, what: str,
                 error: type[Exception] = ValueError) -> Any:
    """``value`` checked to be of the scalar type ``expected`` (bool, int, float or str).

    A bool is neither an integer nor a number; an integer is a number (returned as a float);
    numpy scalars count as the Python type they stand for.

    Raises:
        error: ``'<what> must be an integer, got float 2.5'`` and the like.
    """
    if expected is float:
        fits = isinstance(value, numbers.Real) and not isinstance(value, bool)
    elif expected is int:
        fits = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    else:
        fits = isinstance(value, expected)
    if not fits:
        raise error(f'{what} must be {SCALAR_NAMES[expected]}, got {type(value).__name__} '
                    f'{value!r}')
    return expected(value) if expected in (int, float) else value


def check_value(name: str, value: Any, default: Any, info: ParameterInfo) -> Optional[str]:
    """Why ``value`` is not acceptable for the parameter ``name`` (None when it is).

    Its type must be the default's (an int is accepted for a float); a float must not be NaN;
    a number must lie in the range, a string among the choices.
    """
    try:
        scalar_value(value, type(default), name)
    except ValueError as error:
        return str(error)
    if info.choices is not None and value not in info.choices:
        return f'{name} must be one of {list(info.choices)}, got {value!r}'
    if type(default) is float and math.isnan(value):
        return f'{name} must not be NaN'
    if info.has_range and not _in_range(value, info):
        return f'{name} must {_range_rule(info)}, got {value!r}'
    return None


def _in_range(value: float, info: ParameterInfo) -> bool:
    low, high = info.minimum, info.maximum
    if low is not None and (value <= low if info.exclusive_minimum else value < low):
        return False
    return high is None or (value < high if info.exclusive_maximum else value <= high)


def _range_rule(info: ParameterInfo) -> str:
    if info.minimum is not None and info.maximum is not None:
        return f'lie in {info.range_text()}'
    if info.minimum is not None:
        return ('be > ' if info.exclusive_minimum else 'be >= ') + str(info.minimum)
    return ('be < ' if info.exclusive_maximum else 'be <= ') + str(info.maximum)


def check_fields(config: Any, error: type[Exception]) -> None:
    """Check every field of the config instance ``config`` against its parameter metadata.

    Raises:
        error: the first field that fails :func:`check_value`; the message names the field.
    """
    for name, default, info in parameter_fields(config):
        reason = check_value(name, getattr(config, name), default, info)
        if reason is not None:
            raise error(reason)
