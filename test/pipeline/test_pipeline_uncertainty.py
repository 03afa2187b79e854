"""Rigid-transform helpers, pose samples, and mean / covariance of pose samples."""

import numpy as np
import pytest

from raydiff_ros.geometry.transforms import (
    PoseError,
    check_transforms,
    chordal_mean_rotation,
    invert_transforms,
    make_transforms,
    project_to_rotation,
    relative_transforms,
    rotation_angle,
    rotation_exp,
    rotation_log,
)
from raydiff_ros.pipeline.uncertainty import (
    UncertaintyConfig,
    UncertaintyError,
    apply_variance_floors,
    camera_statistics,
    edge_statistics,
    pose_statistics,
)

ROT_Z_90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def test_rotation_log_and_exp_of_a_quarter_turn():
    np.testing.assert_allclose(rotation_log(ROT_Z_90), [0.0, 0.0, np.pi / 2], atol=1e-12)
    np.testing.assert_allclose(rotation_exp(np.array([0.0, 0.0, np.pi / 2])), ROT_Z_90,
                               atol=1e-12)
    assert rotation_angle(ROT_Z_90) == pytest.approx(np.pi / 2)


def test_inverse_and_relative_transforms(poses, rng):
    a_T_b = poses.random_pose(rng)
    np.testing.assert_allclose(invert_transforms(a_T_b) @ a_T_b, np.eye(4), atol=1e-12)
    w_T_from, w_T_to = poses.random_pose(rng), poses.random_pose(rng)
    from_T_to = relative_transforms(w_T_from, w_T_to)
    np.testing.assert_allclose(w_T_from @ from_T_to, w_T_to, atol=1e-12)


def test_chordal_mean_of_symmetric_rotations_is_their_centre(rng):
    centre = rotation_exp(np.array([0.3, -0.2, 0.5]))
    axis = np.array([1.0, 2.0, -1.0]) / np.sqrt(6.0)
    pair = np.stack([rotation_exp(0.4 * axis) @ centre, rotation_exp(-0.4 * axis) @ centre])
    np.testing.assert_allclose(chordal_mean_rotation(pair), centre, atol=1e-12)


def test_projection_to_rotation_undoes_rounding_and_refuses_reflections():
    noisy = ROT_Z_90 + 1e-4 * np.arange(9).reshape(3, 3)
    projected = project_to_rotation(noisy)
    np.testing.assert_allclose(projected @ projected.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(projected) == pytest.approx(1.0)
    assert np.linalg.det(project_to_rotation(np.diag([1.0, 1.0, -1.0]))) == pytest.approx(1.0)


@pytest.mark.parametrize(
    'matrix, words',
    [
        (np.eye(3), 'shape'),
        (np.full((4, 4), np.nan), 'non-finite'),
        (np.diag([1.0, 1.0, -1.0, 1.0]), 'proper rotation'),
        (np.vstack([np.eye(4)[:3], [0.0, 0.0, 1.0, 1.0]]), 'last row'),
    ],
)
def test_invalid_transforms_are_refused(matrix, words):
    with pytest.raises(PoseError, match=words):
        check_transforms(matrix)


CONFIG = UncertaintyConfig(translation_variance_floor=1e-4, rotation_variance_floor=3e-4)
FLOORS = np.diag([1e-4] * 3 + [3e-4] * 3)


def test_identical_samples_give_exactly_the_floor(poses, rng):
    pose = poses.random_pose(rng)
    for count in (1, 5):
        stats = pose_statistics(np.repeat(pose[None], count, axis=0), CONFIG)
        np.testing.assert_allclose(stats.mean, pose, atol=1e-12)
        np.testing.assert_allclose(stats.covariance, FLOORS, atol=1e-15)
        assert stats.num_samples == count


def test_known_perturbations_give_the_known_covariance(poses, rng):
    # A correlated 6x6 covariance: translation std ~ 5 cm, rotation std ~ 1-2 degrees.
    A = rng.normal(size=(6, 6)) * np.array([0.03] * 3 + [0.015] * 3)[:, None]
    true_covariance = A @ A.T
    mean = poses.random_pose(rng)
    deviations = rng.multivariate_normal(np.zeros(6), true_covariance, size=20000)
    samples = make_transforms(
        rotation_exp(deviations[:, 3:]) @ mean[:3, :3], mean[:3, 3] + deviations[:, :3]
    )
    stats = pose_statistics(samples, UncertaintyConfig(translation_variance_floor=1e-12,
                                                       rotation_variance_floor=1e-12))
    assert rotation_angle(stats.mean[:3, :3] @ mean[:3, :3].T) < 1e-3
    np.testing.assert_allclose(stats.mean[:3, 3], mean[:3, 3], atol=2e-3)
    scale = np.sqrt(np.outer(np.diag(true_covariance), np.diag(true_covariance)))
    # Sampling error of a covariance entry with 20000 samples is about 1 % of this scale.
    np.testing.assert_array_less(np.abs(stats.covariance - true_covariance), 0.05 * scale)


def test_covariance_scale_multiplies_the_sample_spread():
    samples = make_transforms(np.tile(np.eye(3), (2, 1, 1)), np.array([[1.0, 0, 0], [1.2, 0, 0]]))
    base = pose_statistics(samples, CONFIG).covariance
    doubled = pose_statistics(samples, UncertaintyConfig(covariance_scale=2.0)).covariance
    # Deviations +-0.1 in x: unbiased variance (0.01 + 0.01) / (2 - 1) = 0.02.
    assert base[0, 0] == pytest.approx(0.02) and doubled[0, 0] == pytest.approx(0.04)


def test_unknown_scale_inflates_along_the_translation():
    sample = make_transforms(np.eye(3), np.array([2.0, 0.0, 0.0]))[None]
    config = UncertaintyConfig(unknown_scale_relative_std=0.5)
    inflated = pose_statistics(sample, config, scale_known=False).covariance
    # 0.5^2 * t t^T with t = (2, 0, 0): 1.0 on x only; the floors elsewhere.
    expected = np.diag([1.0, 1e-4, 1e-4, 3e-4, 3e-4, 3e-4])
    np.testing.assert_allclose(inflated, expected, atol=1e-15)
    np.testing.assert_allclose(pose_statistics(sample, config).covariance, FLOORS, atol=1e-15)


def test_floors_hold_in_every_direction_not_only_on_the_diagonal():
    # Two samples and the unknown-scale term: the translation block has rank 2 and every
    # diagonal entry above its floor; raising the diagonal alone would leave it singular,
    # which a pose-graph back-end cannot invert.
    samples = make_transforms(np.tile(np.eye(3), (2, 1, 1)),
                              np.array([[1.0, 1.0, 0.0], [1.2, 1.0, 0.2]]))
    covariance = pose_statistics(samples, CONFIG, scale_known=False).covariance
    np.testing.assert_allclose(covariance, covariance.T, atol=1e-15)
    whitened = covariance / np.sqrt(np.outer(FLOORS.diagonal(), FLOORS.diagonal()))
    assert np.linalg.eigvalsh(whitened).min() > 1.0 - 1e-9          # covariance >= floors
    assert np.linalg.eigvalsh(covariance[:3, :3]).min() >= 1e-4 * (1.0 - 1e-9)
    # A covariance already above its floors in every direction comes back unchanged.
    rng = np.random.default_rng(3)
    A = rng.normal(size=(6, 6)) * 0.1
    wide = A @ A.T + np.eye(6) * 0.01
    np.testing.assert_allclose(apply_variance_floors(wide, FLOORS.diagonal()), wide,
                               atol=1e-15)


def test_edge_covariance_is_expressed_in_the_from_frame():
    # 'from' is rotated 90 degrees about z in the reference frame; 'to' sits 1 +- 0.1 along
    # the from-frame x axis (the reference frame's y axis).
    reference_T_from = make_transforms(ROT_Z_90, np.zeros(3))
    from_T_to = make_transforms(np.tile(np.eye(3), (2, 1, 1)),
                                np.array([[1.1, 0.0, 0.0], [0.9, 0.0, 0.0]]))
    samples = np.stack([np.stack([reference_T_from, reference_T_from @ p]) for p in from_T_to])
    stats = edge_statistics(samples, 0, 1, CONFIG)
    np.testing.assert_allclose(stats.mean, make_transforms(np.eye(3), [1.0, 0, 0]), atol=1e-12)
    np.testing.assert_allclose(stats.covariance[0, 0], 0.02)
    assert stats.covariance[1, 1] == pytest.approx(1e-4)  # floor: no spread along from-y
    means, covariances = camera_statistics(samples, CONFIG)
    assert covariances[1][1, 1] == pytest.approx(0.02)  # in the reference frame: along y
    np.testing.assert_allclose(covariances[0], FLOORS, atol=1e-15)  # the reference itself
    np.testing.assert_allclose(means[0], reference_T_from, atol=1e-12)


@pytest.mark.parametrize(
    'kwargs',
    [
        {'translation_variance_floor': 0.0},
        {'rotation_variance_floor': -1.0},
        {'covariance_scale': 0.0},
        {'unknown_scale_relative_std': -0.1},
    ],
)
def test_invalid_uncertainty_config_is_refused(kwargs):
    with pytest.raises(UncertaintyError):
        UncertaintyConfig(**kwargs)
