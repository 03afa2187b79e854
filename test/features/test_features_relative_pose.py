"""Two-view geometry against known cameras: noisy inliers with outliers give the true relative
pose; too few or inconsistent matches are not verified."""

import numpy as np
import pytest

from raydiff_ros.features.relative_pose import (
    TwoViewConfig,
    fit_relative_pose,
    relative_pose,
)
from raydiff_ros.geometry.transforms import axis_angle_rotations, rotation_angle_deg

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
SIZE = (640, 480)


def project(points, R, t):
    camera = points @ R.T + t
    pixels = camera @ K.T
    return pixels[:, :2] / pixels[:, 2:]


def scene(num_points=300, outlier_share=0.25, noise_px=0.3, seed=0):
    rng = np.random.default_rng(seed)
    points = rng.uniform([-2, -1.5, 4], [2, 1.5, 8], size=(num_points, 3))
    R = axis_angle_rotations(np.array([0.2, 1.0, 0.1]), np.radians(25.0))
    centre = np.array([1.5, 0.1, 0.4])
    t = -R @ centre
    first = project(points, np.eye(3), np.zeros(3)) + rng.normal(0, noise_px, (num_points, 2))
    second = project(points, R, t) + rng.normal(0, noise_px, (num_points, 2))
    outliers = rng.random(num_points) < outlier_share
    second[outliers] = rng.uniform([0, 0], SIZE, size=(outliers.sum(), 2))
    return first, second, R, t / np.linalg.norm(t), outliers


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
