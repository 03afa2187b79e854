"""Two-view geometry against known cameras: noisy inliers with outliers give the true relative
pose; too few or inconsistent matches are not verified."""

import numpy as np
import pytest
from two_view_scene import SIZE, K, scene

from raydiff_ros.estimation.contract import EstimatorError
from raydiff_ros.features.relative_pose import (
    TwoViewConfig,
    fit_relative_pose,
    relative_pose,
)
from raydiff_ros.geometry.transforms import rotation_angle_deg


def test_the_true_relative_pose_is_recovered_through_outliers():
    first, second, R, t, outliers = scene()
    pose = relative_pose(0, 1, first, second, K, K, SIZE, SIZE)
    assert pose is not None
    assert rotation_angle_deg(pose.R, R) < 0.3
    assert np.degrees(np.arccos(np.clip(pose.t @ t, -1, 1))) < 2.0
    assert abs(pose.num_inliers - (~outliers).sum()) < 0.05 * len(first)
    assert pose.points_i.shape == (pose.num_inliers, 2)
    assert 0.5 < pose.confidence(TwoViewConfig()) < 1.0


def test_random_matches_are_not_verified_but_their_fit_is_kept():
    first, second, *_ = scene(outlier_share=1.0)
    assert relative_pose(0, 1, first, second, K, K, SIZE, SIZE) is None
    near_miss = fit_relative_pose(0, 1, first, second, K, K, SIZE, SIZE)
    assert near_miss is not None and not near_miss.accepted(TwoViewConfig())


def test_too_few_matches_and_mismatched_arrays():
    first, second, *_ = scene(num_points=30, outlier_share=0.0)
    assert relative_pose(0, 1, first, second, K, K, SIZE, SIZE) is None  # fewer than 40
    assert relative_pose(0, 1, first, second, K, K, SIZE, SIZE,
                         TwoViewConfig(min_inliers=20)) is not None
    assert fit_relative_pose(0, 1, first[:4], second[:4], K, K, SIZE, SIZE) is None
    with pytest.raises(ValueError, match='points'):
        fit_relative_pose(0, 1, first, second[:10], K, K, SIZE, SIZE)


def test_ransac_stops_by_what_an_accepted_pair_needs():
    # ceil(log(1 - 0.999) / log(1 - 0.3 ** 5)) = ceil(2839.2): the default acceptance share.
    assert TwoViewConfig().iterations() == 2840
    assert TwoViewConfig(min_inlier_ratio=0.0).iterations() == TwoViewConfig().max_iterations
    assert TwoViewConfig(max_iterations=500).iterations() == 500
    assert TwoViewConfig(min_inlier_ratio=0.5, success_probability=0.99).iterations() == 146
    with pytest.raises(EstimatorError, match='success_probability'):
        TwoViewConfig(success_probability=1.0)


def test_a_pair_at_the_smallest_accepted_inlier_share_is_still_found():
    """35 % inliers among 400 matches: inside the capped iteration budget."""
    for seed in range(3):
        first, second, R, _, outliers = scene(num_points=400, outlier_share=0.65, seed=seed)
        pose = relative_pose(0, 1, first, second, K, K, SIZE, SIZE)
        assert pose is not None, seed
        assert rotation_angle_deg(pose.R, R) < 1.0
        assert pose.num_inliers >= 0.9 * (~outliers).sum()
