"""The flat parameter namespace over all stage configs."""

from dataclasses import fields

import pytest

from raydiff_ros.pipeline.config import ParameterError, PipelineConfig, parameter_names
from raydiff_ros.pipeline.keyframes import KeyframeError


def test_parameter_names_are_unique_and_cover_every_stage():
    names = parameter_names()
    config = PipelineConfig()
    stage_fields = sum(len(fields(getattr(config, stage.name))) for stage in fields(config))
    assert len(set(names)) == len(names) == stage_fields
    for expected in ('sync_slop_s', 'keyframe_min_interval_s', 'max_views', 'scale_source',
                     'pose_graph_key_mode', 'blur_min_laplacian_variance'):
        assert expected in names


def test_defaults_round_trip_through_flat_parameters():
    defaults = PipelineConfig()
    assert PipelineConfig.from_parameters(defaults.to_parameters()) == defaults


def test_flat_values_reach_their_stage_and_ints_are_accepted_for_floats():
    config = PipelineConfig.from_parameters(
        {'sync_slop_s': 0.05, 'max_views': 4, 'keyframe_min_interval_s': 2,
         'scale_source': 'known_baseline', 'baseline_m': 0.12}
    )
    assert config.view_sets.sync_slop_s == 0.05 and config.view_sets.max_views == 4
    assert config.keyframes.keyframe_min_interval_s == 2.0
    assert isinstance(config.keyframes.keyframe_min_interval_s, float)
    assert config.scale.baseline_m == 0.12
    assert config.uncertainty == PipelineConfig().uncertainty


def test_unknown_names_wrong_types_and_bad_values_are_refused():
    with pytest.raises(ParameterError, match='sync_slop'):
        PipelineConfig.from_parameters({'sync_slop': 0.1})
    with pytest.raises(ParameterError, match='max_views must be an integer'):
        PipelineConfig.from_parameters({'max_views': 4.0})
    with pytest.raises(ParameterError, match='must be a string'):
        PipelineConfig.from_parameters({'scale_source': 1})
    with pytest.raises(KeyframeError, match='max_keyframes_per_camera'):
        PipelineConfig.from_parameters({'max_keyframes_per_camera': 0})
