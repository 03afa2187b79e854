"""The classical SIFT + essential-matrix baseline (``classical_sift``)."""

import numpy as np
import pytest

from raydiff_ros.estimation import (
    EstimatorOptions,
    ViewSetInput,
    available_estimators,
    create_estimator,
)
from raydiff_ros.evaluation.datasets import load_dataset
from raydiff_ros.evaluation.view_set import SceneViewSet
from raydiff_ros.features.classical import ClassicalSiftEstimator
from raydiff_ros.features.matching import guess_intrinsics
from raydiff_ros.features.two_view import PairGeometry
from raydiff_ros.geometry.metrics import evaluate_view_set, pool_view_set_errors
from raydiff_ros.geometry.transforms import camera_centers

SMALL_BASELINE_STARTS = (0, 10, 20, 30, 40)
VIEWS_PER_SET = 3
MIN_ROTATION_ACCURACY = 0.9
MAX_CENTER_ERROR = 0.1


@pytest.fixture(scope='module')
def temple(shared_dir):
    return load_dataset(shared_dir / 'data' / 'temple_ring')


def small_baseline_sets(dataset) -> list[tuple[int, ...]]:
    """Each start image with its nearest neighbours on the ring (by true centre)."""
    centers = camera_centers(dataset.R, dataset.t)
    return [tuple(int(i) for i in np.argsort(np.linalg.norm(centers - centers[s], axis=1))
                  [:VIEWS_PER_SET]) for s in SMALL_BASELINE_STARTS]


def score(estimator, dataset, index_sets, intrinsics_known=True):
    errors = []
    for indices in index_sets:
        view_set = SceneViewSet(dataset, indices, intrinsics_known=intrinsics_known)
        R, t = estimator.estimate(view_set.estimation_input()).world_to_camera()
        errors.append(evaluate_view_set(R, t, view_set.ground_truth_R,
                                        view_set.ground_truth_t, dataset.scene_scale))
    return pool_view_set_errors(errors)


def test_registered_under_its_name():
    assert 'classical_sift' in available_estimators()
    estimator = create_estimator('classical_sift',
                                 EstimatorOptions(seed=1, extra={'ratio': 0.7}))
    assert isinstance(estimator, ClassicalSiftEstimator) and estimator.config.ratio == 0.7


def test_small_baseline_rotations_far_above_the_random_floor(temple):
    sets = small_baseline_sets(temple)
    classical = score(create_estimator('classical_sift'), temple, sets)
    floor = score(create_estimator('random'), temple, sets)
    assert classical.rotation_accuracy >= MIN_ROTATION_ACCURACY
    assert floor.rotation_accuracy <= 0.2
    # chained, scaled translations put the centres where they belong
    assert classical.median_camera_center_error < MAX_CENTER_ERROR


def test_unknown_intrinsics_use_the_documented_guess(temple):
    K = guess_intrinsics(640, 480)
    np.testing.assert_allclose(K, [[768, 0, 320], [0, 768, 240], [0, 0, 1]])
    estimator = create_estimator('classical_sift')
    prediction = estimator.estimate(SceneViewSet(temple, small_baseline_sets(temple)[0],
                                                 intrinsics_known=False).estimation_input())
    np.testing.assert_allclose(prediction.K[0], K)
    assert prediction.intrinsics_estimated


def test_wide_baselines_fall_back_without_crashing(temple):
    estimator = create_estimator('classical_sift')
    view_set = SceneViewSet(temple, (0, 12, 24, 36))  # 90 deg apart
    prediction = estimator.estimate(view_set.estimation_input())
    stats = estimator.last_stats
    assert stats.pairs == 6 and stats.failed_pairs >= 1
    R, t = prediction.world_to_camera()
    assert R.shape == (4, 3, 3) and np.all(np.isfinite(t))
    unplaced = np.flatnonzero(prediction.uncertainty == 1.0)
    assert len(unplaced) == stats.fallback_cameras
    assert [prediction.pose_sources[k] for k in unplaced] == ['fallback'] * len(unplaced)
    for k in unplaced:  # the identity rotation in view 0's frame
        np.testing.assert_allclose(R[k], np.eye(3), atol=1e-12)


def test_featureless_images_give_an_identity_fallback():
    estimator = ClassicalSiftEstimator()
    images = [np.full((60, 80, 3), value, dtype=np.uint8) for value in (0, 128, 255)]
    prediction = estimator.estimate(ViewSetInput(images))
    assert estimator.last_stats.failed_pairs == 3 and estimator.last_stats.fallback_cameras == 2
    np.testing.assert_allclose(prediction.reference_T_camera[:, :3, :3],
                               np.repeat(np.eye(3)[None], 3, axis=0), atol=1e-12)
    assert prediction.pose_sources == ('reference', 'fallback', 'fallback')
    assert estimator.stats.failed_pairs == 3


def make_pair(i, j, inliers):
    empty = np.zeros(0)
    return PairGeometry(i, j, np.eye(3), np.array([1.0, 0, 0]), inliers, empty.astype(int),
                        empty.astype(int), empty, empty)


def test_pair_orientation_inverts_the_relative_pose():
    R = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    pair = PairGeometry(0, 1, R, np.array([0.0, 0, 1]), 20, np.array([3]), np.array([4]),
                        np.array([2.0]), np.array([5.0]))
    R_back, t_back, kp_parent, depth_parent, kp_child, _ = pair.oriented(1)
    np.testing.assert_allclose(R_back, R.T)
    np.testing.assert_allclose(R_back @ pair.t + t_back, 0.0, atol=1e-12)
    assert kp_parent.tolist() == [4] and depth_parent.tolist() == [5.0]
    assert kp_child.tolist() == [3]
