"""Field-by-field comparison of ROS 2 messages (used by the middleware tests)."""

import array
import math

import numpy as np


def message_differences(expected, actual, path: str = 'msg') -> list[str]:
    """Return a list of human-readable differences between two messages (empty when equal).

    Walks every field given by ``get_fields_and_field_types()``, recursing into nested
    messages and sequences; floats compare exactly (a DDS round trip must not change them).
    """
    if hasattr(expected, 'get_fields_and_field_types'):
        if type(expected) is not type(actual):
            return [f'{path}: type {type(actual).__name__} != {type(expected).__name__}']
        differences = []
        for field in expected.get_fields_and_field_types():
            differences += message_differences(
                getattr(expected, field), getattr(actual, field), f'{path}.{field}')
        return differences
    if isinstance(expected, (list, tuple, array.array, np.ndarray)):
        expected_items, actual_items = list(expected), list(actual)
        if len(expected_items) != len(actual_items):
            return [f'{path}: length {len(actual_items)} != {len(expected_items)}']
        differences = []
        for index, (e, a) in enumerate(zip(expected_items, actual_items, strict=True)):
            differences += message_differences(e, a, f'{path}[{index}]')
        return differences
    if isinstance(expected, float) and math.isnan(expected):
        return [] if math.isnan(actual) else [f'{path}: {actual!r} != nan']
    return [] if expected == actual else [f'{path}: {actual!r} != {expected!r}']
