"""Every parameter is declared with a descriptor, listed in config/estimate.yaml, and validated."""

from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')

from rclpy.parameter import Parameter  # noqa: E402

from raydiff_ros.refinement.selection import REFINEMENTS  # noqa: E402
from raydiff_ros.ros.estimator_node import EstimatorNode  # noqa: E402
from raydiff_ros.ros.node_parameters import ALL_PARAMETERS  # noqa: E402

CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'estimate.yaml'
ROS_BUILTIN = {'use_sim_time', 'start_type_description_service'}


@pytest.fixture
def node():
    rclpy.init()
    node = EstimatorNode(parameter_overrides=[
        Parameter('estimator', value='python:node_scenarios:make_oracle')])
    yield node
    node.destroy_node()
    rclpy.try_shutdown()


def test_config_file_lists_exactly_the_declared_parameters(node):
    listed = set(yaml.safe_load(CONFIG.read_text())['/**']['ros__parameters'])
    declared = {name for name in node._parameters if name not in ROS_BUILTIN}
    assert listed == declared


def test_config_file_defaults_equal_the_declared_defaults():
    listed = yaml.safe_load(CONFIG.read_text())['/**']['ros__parameters']
    for spec in ALL_PARAMETERS:
        assert listed[spec.name] == spec.default, spec.name


def test_every_parameter_has_a_description(node):
    for name in node._parameters:
        if name in ROS_BUILTIN | {'autostart'}:
            continue
        assert node.describe_parameter(name).description, name


@pytest.mark.parametrize('name, value, reason', [
    ('mode', 'sideways', 'must be one of'),
    ('keyframe_min_change', 2.0, ''),                 # descriptor range
    ('sync_slop_s', -0.1, ''),
    ('pose_graph_key_mode', 'hash', 'must be one of'),
    ('scale_source', 'known_baseline', 'baseline_m > 0'),  # inconsistent with baseline_m = 0
    ('num_cameras', 4, ''),                            # read-only after start-up
])
def test_bad_values_are_refused_with_a_reason(node, name, value, reason):
    before = node.get_parameter(name).value
    result = node.set_parameters([Parameter(name, value=value)])[0]
    assert not result.successful
    assert reason in result.reason and result.reason
    assert node.get_parameter(name).value == before


def test_good_values_are_accepted(node):
    result = node.set_parameters([Parameter('mode', value='temporal'),
                                  Parameter('keyframe_min_change', value=0.2)])
    assert all(r.successful for r in result)


def test_a_bad_start_up_value_is_refused_naming_the_parameter():
    rclpy.init()
    try:
        with pytest.raises(Exception, match='image_transport'):
            EstimatorNode(parameter_overrides=[Parameter('image_transport', value='jpeg')])
    finally:
        rclpy.try_shutdown()


def test_refinement_choices_are_the_refinements():
    spec = next(s for s in ALL_PARAMETERS if s.name == 'refinement')
    assert set(spec.choices) == set(REFINEMENTS) and 'guided' in spec.choices


@pytest.mark.parametrize('value', ['guided', 'bundle'])
def test_refinement_is_start_up_only(node, value):
    result = node.set_parameters([Parameter('refinement', value=value)])[0]
    assert not result.successful and node.get_parameter('refinement').value == 'none'


def test_a_bad_refinement_is_refused_naming_it():
    rclpy.init()
    try:
        with pytest.raises(Exception, match='refinement'):
            EstimatorNode(parameter_overrides=[Parameter('refinement', value='magic')])
    finally:
        rclpy.try_shutdown()
