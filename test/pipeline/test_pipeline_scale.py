"""Scale fixing: unit baseline (no metric scale) and a known baseline between two cameras."""

import numpy as np
import pytest

from raydiff_ros.geometry.transforms import make_transforms, rotation_exp
from raydiff_ros.pipeline.scale import (
    ScaleConfig,
    ScaleError,
    ScaleSource,
    fix_scale,
    unit_baseline_factors,
)
from raydiff_ros.pipeline.view_sets import ViewSetMode


def _poses(centers_per_sample, rng=None):
    """(S, N, 4, 4) poses at the given centres with arbitrary (seeded) rotations."""
    rng = rng or np.random.default_rng(0)
    centers = np.asarray(centers_per_sample, dtype=np.float64)
    rotations = rotation_exp(rng.normal(scale=0.5, size=centers.shape))
    rotations[:, 0] = np.eye(3)  # the reference camera
    return make_transforms(rotations, centers)


def test_none_normalises_the_distance_between_views_0_and_1_per_sample():
    poses = _poses([[[0, 0, 0], [2, 0, 0], [0, 4, 0]], [[0, 0, 0], [0, 0, 4], [1, 1, 1]]])
    scaled = fix_scale(poses, (0, 1, 2), ViewSetMode.RIG)
    assert scaled.source is ScaleSource.NONE and not scaled.metric
    np.testing.assert_allclose(scaled.scale_factors, [0.5, 0.25])
    np.testing.assert_allclose(scaled.reference_T_cameras[0, 1, :3, 3], [1, 0, 0])
    np.testing.assert_allclose(scaled.reference_T_cameras[0, 2, :3, 3], [0, 2, 0])
    np.testing.assert_allclose(scaled.reference_T_cameras[1, 2, :3, 3], [0.25, 0.25, 0.25])
    np.testing.assert_array_equal(scaled.reference_T_cameras[..., :3, :3], poses[..., :3, :3])


def test_none_falls_back_when_views_0_and_1_coincide():
    # A rotation-only pair (view 1 at the reference centre): the largest distance becomes 1.
    factors = unit_baseline_factors(_poses([[[0, 0, 0], [0, 0, 0], [0, 3, 0]]]))
    np.testing.assert_allclose(factors, [1 / 3])
    # Every centre at the reference: nothing to normalise.
    np.testing.assert_allclose(unit_baseline_factors(_poses([[[0, 0, 0], [0, 0, 0]]])), [1.0])


def test_known_baseline_between_two_named_cameras():
    config = ScaleConfig(scale_source='known_baseline', baseline_camera_a=2, baseline_camera_b=5,
                         baseline_m=0.12)
    # Views of cameras 0, 2, 5: cameras 2 and 5 are 3 units apart in sample 0, 6 in sample 1.
    poses = _poses([[[0, 0, 0], [1, 0, 0], [1, 3, 0]], [[0, 0, 0], [0, 2, 0], [0, 2, 6]]])
    scaled = fix_scale(poses, (0, 2, 5), ViewSetMode.RIG, config)
    assert scaled.source is ScaleSource.KNOWN_BASELINE and scaled.metric
    np.testing.assert_allclose(scaled.scale_factors, [0.04, 0.02])
    for sample in scaled.reference_T_cameras:
        assert np.linalg.norm(sample[1, :3, 3] - sample[2, :3, 3]) == pytest.approx(0.12)


def test_known_baseline_falls_back_to_none_where_it_cannot_apply():
    config = ScaleConfig(scale_source='known_baseline', baseline_m=0.2)
    poses = _poses([[[0, 0, 0], [2, 0, 0], [0, 4, 0]]])
    # A temporal set of camera 0 and 1 images need not be simultaneous: no known baseline.
    temporal = fix_scale(poses, (0, 1, 1), ViewSetMode.TEMPORAL, config)
    assert temporal.source is ScaleSource.NONE
    np.testing.assert_allclose(temporal.scale_factors, [0.5])
    # A rig set without camera 1.
    assert fix_scale(poses, (0, 2, 3), ViewSetMode.RIG, config).source is ScaleSource.NONE


def test_known_baseline_with_coincident_cameras_is_refused():
    config = ScaleConfig(scale_source='known_baseline', baseline_m=0.2)
    poses = _poses([[[0, 0, 0], [0, 0, 0], [0, 4, 0]]])
    with pytest.raises(ScaleError, match='coincide'):
        fix_scale(poses, (0, 1, 2), ViewSetMode.RIG, config)


def test_bad_inputs_are_refused():
    with pytest.raises(ScaleError, match='scale_source'):
        ScaleConfig(scale_source='odometry')
    with pytest.raises(ScaleError, match='baseline_m'):
        ScaleConfig(scale_source='known_baseline')
    with pytest.raises(ScaleError, match='differ'):
        ScaleConfig(scale_source='known_baseline', baseline_m=1.0, baseline_camera_b=0)
    poses = _poses([[[0, 0, 0], [1, 0, 0]]])
    with pytest.raises(ScaleError, match='camera indices'):
        fix_scale(poses, (0,), ViewSetMode.RIG)
    with pytest.raises(ScaleError, match='shape'):
        fix_scale(poses[0], (0, 1), ViewSetMode.RIG)
