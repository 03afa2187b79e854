"""Every parameter is declared with a descriptor, listed in config/estimate.yaml, and validated."""

from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')

from rclpy.parameter import Parameter  # noqa: E402

from raydiff_ros.estimation import REFINEMENTS  # noqa: E402
from raydiff_ros.pipeline.config import PipelineConfig  # noqa: E402
from raydiff_ros.ros.estimator_node import EstimatorNode  # noqa: E402
from raydiff_ros.ros.node_config import NodeConfig  # noqa: E402
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


def test_the_declared_defaults_are_the_dataclass_defaults():
    rclpy.init()
    try:
        node = EstimatorNode()  # nothing overridden; the model is only loaded on configure
        declared = {name: node.get_parameter(name).value for name in node._parameters
                    if name not in ROS_BUILTIN}
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    defaults = {**asdict(NodeConfig()), **PipelineConfig().to_parameters()}
    assert declared == defaults
    assert all(type(declared[name]) is type(value) for name, value in defaults.items())


def test_the_descriptors_carry_the_field_metadata(node):
    for spec in ALL_PARAMETERS:
        descriptor = node.describe_parameter(spec.name)
        assert descriptor.description == spec.info.text(), spec.name
        assert descriptor.read_only == spec.info.read_only, spec.name
        ranges = list(descriptor.integer_range) + list(descriptor.floating_point_range)
        assert bool(ranges) == spec.info.has_range, spec.name
        if spec.info.minimum is not None:
            assert ranges[0].from_value == spec.info.minimum, spec.name
        if spec.info.maximum is not None:
            assert ranges[0].to_value == spec.info.maximum, spec.name
    assert 'greater than 0.0' in node.describe_parameter('stop_timeout_s').additional_constraints


@pytest.mark.parametrize('name, excluded, inside', [
    ('clock_jump_reset_s', 0.0, 0.5),
    ('stop_timeout_s', 0.0, 0.5),                     # SchedulerConfig: not a ValueError
    ('aspect_ratio_tolerance', 1.0, 0.5),
    ('min_baseline_fraction', 0.0, 0.5),
    ('relocalization_max_appearance_distance', 0.0, 0.5),
])
def test_excluded_bounds_are_refused_by_the_callback(node, name, excluded, inside):
    result = node.set_parameters([Parameter(name, value=excluded)])[0]
    assert not result.successful and name in result.reason
    assert node.set_parameters([Parameter(name, value=inside)])[0].successful
    assert node.get_parameter(name).value == inside


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
    assert set(spec.info.choices) == set(REFINEMENTS) and 'guided' in spec.info.choices


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
