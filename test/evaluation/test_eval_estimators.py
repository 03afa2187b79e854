"""The reference estimators on scene view sets, the registry by name, and the chance floor."""

import math

import numpy as np
import pytest

from raydiff_ros.estimation import (
    EstimationResult,
    EstimatorError,
    EstimatorOptions,
    PoseEstimator,
    available_estimators,
    create_estimator,
    register_estimator,
    registry,
)
from raydiff_ros.estimation.reference import (
    GroundTruthEstimator,
    NoisyOracleEstimator,
    RandomPoseEstimator,
)
from raydiff_ros.evaluation.datasets import load_dataset, write_poses_json
from raydiff_ros.evaluation.view_set import SceneViewSet
from raydiff_ros.geometry.metrics import accuracy, evaluate_view_set
from raydiff_ros.geometry.transforms import make_transforms, random_rotations, rotation_angle_deg

# --- registry and protocol ------------------------------------------------------------------


def test_builtin_estimators_are_registered_and_created_by_name():
    assert {'ground_truth', 'random', 'noisy_oracle'} <= set(available_estimators())
    assert isinstance(create_estimator('ground_truth'), GroundTruthEstimator)
    random_estimator = create_estimator('random', EstimatorOptions(seed=3))
    assert isinstance(random_estimator, RandomPoseEstimator)
    assert isinstance(random_estimator, PoseEstimator)
    with pytest.raises(EstimatorError, match="unknown estimator 'sift'; available: .*random"):
        create_estimator('sift')


def test_registering_a_new_estimator_and_duplicate_names():
    class Constant:
        name = 'constant_test'

        def __init__(self, options):
            self.seed = options.seed

        def estimate(self, view_set):
            n = view_set.num_views
            return EstimationResult(np.tile(np.eye(4), (n, 1, 1)))

    register_estimator('constant_test', Constant)
    try:
        assert create_estimator('constant_test', EstimatorOptions(seed=2)).seed == 2
        with pytest.raises(EstimatorError, match='already registered'):
            register_estimator('constant_test', Constant)
        register_estimator('constant_test', Constant, overwrite=True)
    finally:
        registry._REGISTRY.pop('constant_test', None)
    with pytest.raises(EstimatorError, match='names are letters'):
        register_estimator('bad name!', Constant)


def test_estimators_see_pixels_and_known_intrinsics_only(tmp_path, synth):
    names = synth.write_images(tmp_path, 3)
    R, t = synth.ring_cameras(3)
    write_poses_json(tmp_path / 'poses.json', names, synth.synthetic_K(3), R, t)
    dataset = load_dataset(tmp_path)
    seen = {}

    class Recorder:
        name = 'recorder'

        def estimate(self, view_set):
            seen['images'], seen['K'] = view_set.image_list(), view_set.K
            return EstimationResult(np.tile(np.eye(4), (view_set.num_views, 1, 1)))

    Recorder().estimate(SceneViewSet(dataset, (2, 0)).estimation_input())
    assert [image.shape for image in seen['images']] == [(48, 64, 3)] * 2
    assert all(image.dtype == np.uint8 for image in seen['images'])
    np.testing.assert_array_equal(seen['images'][0], dataset.load_image(2))
    np.testing.assert_allclose(seen['K'], dataset.K[[2, 0]])
    Recorder().estimate(SceneViewSet(dataset, (1, 2), intrinsics_known=False).estimation_input())
    assert seen['K'] is None


def test_view_set_rejects_bad_indices(ring_dataset_of):
    dataset = ring_dataset_of(5)
    with pytest.raises(ValueError, match='distinct'):
        SceneViewSet(dataset, (1, 1))
    with pytest.raises(ValueError, match='out of range'):
        SceneViewSet(dataset, (0, 5))


@pytest.fixture
def ring_dataset_of(synth):
    return lambda num: synth.in_memory_dataset(*synth.ring_cameras(num))


# --- built-in estimators --------------------------------------------------------------------


def scene_input(dataset, indices):
    return SceneViewSet(dataset, tuple(indices)).estimation_input()


def test_ground_truth_estimator_returns_the_true_cameras(ring_dataset_of):
    dataset = ring_dataset_of(6)
    estimate = GroundTruthEstimator().estimate(scene_input(dataset, (4, 1, 3)))
    # the true poses of views 1 and 2 in the frame of view 0 (camera 4)
    world_T_camera = np.linalg.inv(make_transforms(dataset.R, dataset.t))
    expected = np.linalg.inv(world_T_camera[4]) @ world_T_camera[[4, 1, 3]]
    np.testing.assert_allclose(estimate.reference_T_camera, expected, atol=1e-12)
    np.testing.assert_allclose(estimate.reference_T_camera[0], np.eye(4), atol=1e-12)
    assert estimate.pose_sources == ('reference', 'ground_truth', 'ground_truth')


def test_random_estimator_same_seed_same_output(ring_dataset_of):
    view_set = scene_input(ring_dataset_of(6), (0, 1, 2, 3))
    a = RandomPoseEstimator(seed=5).estimate(view_set)
    b = RandomPoseEstimator(seed=5).estimate(view_set)
    c = RandomPoseEstimator(seed=6).estimate(view_set)
    np.testing.assert_array_equal(a.reference_T_camera, b.reference_T_camera)
    assert not np.allclose(a.reference_T_camera, c.reference_T_camera)


def test_noisy_oracle_perturbs_rotations_by_at_most_twice_the_given_angle(ring_dataset_of):
    dataset = ring_dataset_of(8)
    view_set = scene_input(dataset, range(8))
    estimate = NoisyOracleEstimator(seed=1, rotation_noise_deg=5.0, center_noise=0.0).estimate(
        view_set)
    R, t = estimate.world_to_camera()
    # each camera's rotation error is exactly 5 deg (axis_angle_rotations, tested in
    # geometry); the result is in view 0's frame, which carries its own error into the others,
    # so each relative rotation differs by at most 2 x 5 deg
    errors = evaluate_view_set(R, t, dataset.R, dataset.t, dataset.scene_scale)
    relative_true = dataset.R @ dataset.R[0].T
    relative_estimated = R @ R[0].T
    assert rotation_angle_deg(relative_estimated, relative_true).max() <= 10.0 + 1e-9
    assert errors.rotation_errors_deg.max() <= 10.0 + 1e-9
    assert errors.rotation_errors_deg.max() > 1.0
    np.testing.assert_allclose(errors.camera_center_errors, 0.0, atol=1e-12)
    noisy_centres = NoisyOracleEstimator(seed=1, rotation_noise_deg=0.0, center_noise=0.05)
    moved_R, moved_t = noisy_centres.estimate(view_set).world_to_camera()
    errors = evaluate_view_set(moved_R, moved_t, dataset.R, dataset.t, dataset.scene_scale)
    # arccos near 1 resolves angles to about 1e-6 degrees in float64.
    np.testing.assert_allclose(errors.rotation_errors_deg, 0.0, atol=1e-5)
    assert 0.0 < errors.camera_center_errors.mean() < 0.2


# --- the chance floor -----------------------------------------------------------------------

CHANCE_VIEWS = 8
CHANCE_SETS = 3000
SIGMAS = 5.0


def uniform_rotation_angle_cdf(theta_rad: float) -> float:
    """P(angle < theta) for a Haar-random rotation: integral of (1 - cos) / pi = (t - sin t)/pi."""
    return (theta_rad - math.sin(theta_rad)) / math.pi


def test_random_floor_scores_what_chance_predicts(synth):
    """The random estimator's relative rotation accuracy matches the Haar prediction.

    For independent Haar rotations, the error rotation of pair (i, j), G_ij (P_i P_j^T)^T, is
    itself Haar. Errors of two different unordered pairs are independent even when they share
    a camera (given the shared camera, the other one's Haar rotation makes the error Haar), so
    the indicators are pairwise independent and the count of successes has exactly the binomial
    variance n p (1 - p), over n unordered pairs. We allow 5 standard deviations (a false
    failure probability below 1e-6 under the normal approximation; with n p ~ 80 at 15 degrees
    that approximation is adequate).

    Translation directions: for the pair (i, j) the predicted relative translation
    P_j (C_i - C_j) is a uniformly random direction (P_j Haar), so the sign-agnostic angle to
    any fixed direction is below 15 degrees with probability 1 - cos(15 deg). Pairs sharing
    their second camera j share P_j and are dependent; each pair depends on at most N - 2
    others, so Var <= (N - 1) n p (1 - p) (Cauchy-Schwarz on the covariances). The bound uses
    that inflated variance.
    """
    rng = np.random.default_rng(2024)
    estimator = RandomPoseEstimator(seed=7)
    rotation_errors, translation_errors = [], []
    for _ in range(CHANCE_SETS):
        gt_R = random_rotations(rng, CHANCE_VIEWS)
        gt_t = rng.normal(size=(CHANCE_VIEWS, 3))
        dataset = synth.in_memory_dataset(gt_R, gt_t)
        R, t = estimator.estimate(scene_input(dataset, range(CHANCE_VIEWS))).world_to_camera()
        errors = evaluate_view_set(R, t, gt_R, gt_t, scene_scale=1.0)
        rotation_errors.append(errors.pair_rotation_errors_deg)
        translation_errors.append(errors.pair_translation_errors_deg)
    rotation_errors = np.concatenate(rotation_errors)
    translation_errors = np.concatenate(translation_errors)
    n = rotation_errors.size
    assert n == CHANCE_SETS * CHANCE_VIEWS * (CHANCE_VIEWS - 1) // 2

    for threshold_deg in (15.0, 90.0):
        p = uniform_rotation_angle_cdf(math.radians(threshold_deg))
        sigma = math.sqrt(p * (1 - p) / n)
        measured = accuracy(rotation_errors, threshold_deg)
        assert abs(measured - p) < SIGMAS * sigma, (threshold_deg, measured, p, sigma)
    assert uniform_rotation_angle_cdf(math.radians(15.0)) == pytest.approx(9.4867e-4, rel=1e-4)

    p = 1.0 - math.cos(math.radians(15.0))
    sigma = math.sqrt((CHANCE_VIEWS - 1) * p * (1 - p) / n)
    measured = accuracy(translation_errors, 15.0)
    assert abs(measured - p) < SIGMAS * sigma, (measured, p, sigma)

