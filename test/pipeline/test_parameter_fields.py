"""Config fields that carry their parameter metadata, and the generic field checker."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from raydiff_ros.parameter_fields import (
    ParameterInfo,
    check_fields,
    check_value,
    parameter,
    parameter_fields,
    scalar_value,
)
from raydiff_ros.pipeline.config import PipelineConfig, pipeline_parameter_fields


class ExampleError(ValueError):
    pass


@dataclass(frozen=True)
class Example:
    period_s: float = parameter(0.5, 'how often', minimum=0.0, exclusive_minimum=True, unit='s')
    ratio: float = parameter(0.25, 'a fraction', minimum=0.0, maximum=1.0, exclusive_maximum=True)
    count: int = parameter(3, 'how many', minimum=1, maximum=8, read_only=True)
    mode: str = parameter('a', 'which way', choices=('a', 'b'))
    enabled: bool = parameter(False, 'on or off')

    def __post_init__(self) -> None:
        check_fields(self, ExampleError)


def test_fields_list_name_default_and_info_in_declaration_order():
    listed = parameter_fields(Example)
    assert [f.name for f in listed] == ['period_s', 'ratio', 'count', 'mode', 'enabled']
    assert [f.default for f in listed] == [0.5, 0.25, 3, 'a', False]
    period = listed[0].info
    assert period == ParameterInfo('how often', 0.0, None, True, False, None, 's', False)
    assert period.text() == 'how often [s]' and period.range_text() == '(0.0, inf]'
    assert listed[1].info.range_text() == '[0.0, 1.0)'
    assert listed[2].info.read_only and listed[3].info.choices == ('a', 'b')
    assert listed[4].info.range_text() == '' and parameter_fields(Example()) == listed


@pytest.mark.parametrize(
    'kwargs, words',
    [
        ({'period_s': 0.0}, 'period_s must be > 0.0, got 0.0'),
        ({'period_s': -1.0}, 'period_s must be > 0.0'),
        ({'period_s': float('nan')}, 'period_s must not be NaN'),
        ({'ratio': 1.0}, r'ratio must lie in \[0.0, 1.0\), got 1.0'),
        ({'count': 9}, r'count must lie in \[1, 8\], got 9'),
        ({'count': 2.0}, 'count must be an integer, got float 2.0'),
        ({'count': True}, 'count must be an integer, got bool'),
        ({'mode': 'c'}, r"mode must be one of \['a', 'b'\], got 'c'"),
        ({'enabled': 1}, 'enabled must be true or false'),
        ({'ratio': '0.5'}, 'ratio must be a number, got str'),
    ],
)
def test_bad_values_raise_the_callers_error_naming_the_field(kwargs, words):
    with pytest.raises(ExampleError, match=words):
        Example(**kwargs)


def test_bounds_that_are_not_excluded_are_accepted_and_ints_pass_for_floats():
    example = Example(period_s=1, ratio=0.0, count=8, mode='b', enabled=True)
    assert example.period_s == 1 and example.count == 8
    info = ParameterInfo('below', maximum=2.0, exclusive_maximum=True)
    assert check_value('x', 1.5, 0.0, info) is None
    assert check_value('x', 2.0, 0.0, info) == 'x must be < 2.0, got 2.0'
    assert check_value('x', 2.0, 0.0, ParameterInfo('at most', maximum=2.0)) is None


@pytest.mark.parametrize(
    'args, kwargs, error',
    [
        ((2.0, 'out of its range'), {'maximum': 1.0}, ValueError),
        ((0.0, 'on the excluded bound'), {'minimum': 0.0, 'exclusive_minimum': True}, ValueError),
        (('c', 'not a choice'), {'choices': ('a', 'b')}, ValueError),
        (('a', 'a ranged string'), {'minimum': 0}, TypeError),
        ((True, 'a ranged bool'), {'maximum': 1}, TypeError),
        ((1, 'an int with choices'), {'choices': ('1',)}, TypeError),
        (([1, 2], 'a list'), {}, TypeError),
    ],
)
def test_an_inconsistent_declaration_is_refused(args, kwargs, error):
    with pytest.raises(error):
        parameter(*args, **kwargs)


def test_a_field_without_metadata_is_refused():
    @dataclass(frozen=True)
    class Plain:
        value: int = field(default=1)

    with pytest.raises(TypeError, match='value'):
        parameter_fields(Plain)
    with pytest.raises(TypeError, match='not a dataclass'):
        parameter_fields(object)


def test_every_stage_field_is_a_described_parameter_with_the_stage_default():
    listed = pipeline_parameter_fields()
    assert {f.name: f.default for f in listed} == PipelineConfig().to_parameters()
    assert all(f.info.description for f in listed)


def test_scalar_value_converts_numbers_and_names_the_expected_kind():
    assert scalar_value(3, float, 'x') == 3.0 and type(scalar_value(3, float, 'x')) is float
    assert type(scalar_value(np.int64(4), int, 'x')) is int
    assert type(scalar_value(np.float32(0.5), float, 'x')) is float
    assert scalar_value('a', str, 'x') == 'a' and scalar_value(False, bool, 'x') is False
    for value, expected, words in ((True, int, 'x must be an integer, got bool True'),
                                   (True, float, 'x must be a number, got bool'),
                                   (2.5, int, 'x must be an integer, got float 2.5'),
                                   (1, bool, 'x must be true or false, got int 1'),
                                   (1, str, 'x must be a string, got int 1')):
        with pytest.raises(ExampleError, match=words):
            scalar_value(value, expected, 'x', ExampleError)
