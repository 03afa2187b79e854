"""Pose metrics on hand-computed cases, and equivalence with the official PyTorch3D formulas."""

import numpy as np
import pytest

from raydiff_ros.geometry.metrics import (
    MetricInputError,
    MetricThresholds,
    accuracy,
    camera_center_errors,
    evaluate_view_set,
    ordered_pairs,
    pool_view_set_errors,
    pose_auc,
    relative_rotation_errors_deg,
    relative_rotations,
    relative_translation_errors_deg,
    relative_translations,
    sequence_scene_scale,
    translation_angle_deg,
    unordered_pairs,
)
from raydiff_ros.geometry.transforms import (
    axis_angle_rotations,
    camera_centers,
    random_rotations,
    rotation_angle_deg,
)

FLIP_XY = np.diag([-1.0, -1.0, 1.0])


def rot(axis, degrees):
    return axis_angle_rotations(np.array([axis], dtype=float), np.radians([degrees]))[0]


def cameras_from_centers(R, centers):
    return R, -np.einsum('nij,nj->ni', R, centers)


# --- pair sets ------------------------------------------------------------------------------


def test_pair_sets():
    np.testing.assert_array_equal(ordered_pairs(3), [[0, 1], [0, 2], [1, 0], [1, 2], [2, 0],
                                                     [2, 1]])
    np.testing.assert_array_equal(unordered_pairs(3), [[0, 1], [0, 2], [1, 2]])
    assert len(ordered_pairs(8)) == 56 and len(unordered_pairs(8)) == 28
    with pytest.raises(MetricInputError, match='at least 2'):
        unordered_pairs(1)


# --- rotations ------------------------------------------------------------------------------


def test_relative_rotation_of_a_known_90_degree_pair():
    R = np.stack([np.eye(3), rot([0, 0, 1], 90)])
    # R_01 = R_0 R_1^T = Rz(-90)
    np.testing.assert_allclose(relative_rotations(R, np.array([[0, 1]]))[0], rot([0, 0, 1], -90),
                               atol=1e-12)
    errors = relative_rotation_errors_deg(np.stack([np.eye(3), np.eye(3)]), R)
    np.testing.assert_allclose(errors, [90.0, 90.0], atol=1e-9)


def test_a_10_degree_error_on_top_of_a_90_degree_relative_rotation():
    gt = np.stack([np.eye(3), rot([0, 0, 1], 90)])
    pred = np.stack([np.eye(3), rot([0, 0, 1], 90) @ rot([1, 0, 0], 10)])
    np.testing.assert_allclose(relative_rotation_errors_deg(pred, gt), [10.0, 10.0], atol=1e-9)
    # A common rotation of the whole predicted world changes nothing.
    world = rot([0.3, -1, 2], 77)
    np.testing.assert_allclose(relative_rotation_errors_deg(pred @ world, gt), [10.0, 10.0],
                               atol=1e-9)


def test_rotation_angle_of_known_rotations():
    angles = rotation_angle_deg(np.stack([rot([1, 1, 0], a) for a in (0, 15, 90, 180)]),
                                np.eye(3))
    np.testing.assert_allclose(angles, [0, 15, 90, 180], atol=1e-6)


# --- translations ---------------------------------------------------------------------------


def test_translation_angle_of_known_vectors_ignores_sign():
    a = np.array([[1.0, 0, 0], [1, 0, 0], [1, 0, 0], [2, 0, 0], [1, 0, 0], [0, 0, 0]])
    b = np.array([[1.0, 1, 0], [-1, 0, 0], [0, 0, 2], [-3, 3, 0], [1, 0, 1e-3], [1, 0, 0]])
    np.testing.assert_allclose(translation_angle_deg(a, b),
                               [45, 0, 90, 45, np.degrees(np.arctan(1e-3)), 90], atol=1e-9)


def test_relative_translation_is_camera_i_seen_from_camera_j():
    # Camera 0 at the origin, camera 1 at x = 1 turned 90 degrees about y (looking along -x).
    R1 = rot([0, 1, 0], 90)
    R, t = cameras_from_centers(np.stack([np.eye(3), R1]), np.array([[0.0, 0, 0], [1, 0, 0]]))
    v = relative_translations(R, t, np.array([[0, 1]]))[0]
    np.testing.assert_allclose(v, R1 @ np.array([-1.0, 0, 0]), atol=1e-12)
    # Seen from camera 1 (z forward = world -x), camera 0 is straight ahead.
    np.testing.assert_allclose(v, [0, 0, 1], atol=1e-12)


def test_relative_translation_error_is_scale_invariant_and_measures_direction():
    gt_R = np.stack([np.eye(3)] * 3)
    gt_R, gt_t = cameras_from_centers(gt_R, np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]))
    pred_R, pred_t = cameras_from_centers(gt_R, 5.0 * np.array([[0.0, 0, 0], [1, 0, 0],
                                                               [1, 1, 0]]))
    errors = relative_translation_errors_deg(pred_R, pred_t, gt_R, gt_t)
    # pairs (0,1): same direction; (0,2): (0,-1) vs (-1,-1) -> 45; (1,2): (1,-1) vs (0,-1) -> 45
    np.testing.assert_allclose(errors, [0.0, 45.0, 45.0], atol=1e-6)


# --- official PyTorch3D formulas ------------------------------------------------------------


def to_pytorch3d(R_cv, t_cv):
    """R_p3d = R_cv^T with columns 0 and 1 negated; T_p3d = t_cv with x and y negated."""
    R_p3d = np.swapaxes(R_cv, 1, 2).copy()
    R_p3d[:, :, :2] *= -1.0
    T_p3d = t_cv.copy()
    T_p3d[:, :2] *= -1.0
    return R_p3d, T_p3d


def official_rotation_errors(pred_R_p3d, gt_R_p3d, pairs):
    """RayDiffusion: R_rel = R_i^T R_j (row-vector PyTorch3D), error of R_gt R_pred^T."""
    i, j = pairs[:, 0], pairs[:, 1]
    rel_gt = np.swapaxes(gt_R_p3d[i], 1, 2) @ gt_R_p3d[j]
    rel_pred = np.swapaxes(pred_R_p3d[i], 1, 2) @ pred_R_p3d[j]
    cos = (np.trace(rel_gt @ np.swapaxes(rel_pred, 1, 2), axis1=1, axis2=2) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def official_translation_errors(pred, gt, pairs):
    """PoseDiffusion: translation row of inv(M_i) M_j, M = [[R, 0], [T, 1]] (row vectors)."""

    def relative_translation(R_p3d, T_p3d):
        M = np.zeros((len(R_p3d), 4, 4))
        M[:, :3, :3] = R_p3d
        M[:, 3, :3] = T_p3d
        M[:, 3, 3] = 1.0
        return (np.linalg.inv(M[pairs[:, 0]]) @ M[pairs[:, 1]])[:, 3, :3]

    a, b = relative_translation(*gt), relative_translation(*pred)
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.degrees(np.arccos(np.sqrt(1 - np.clip(1 - np.sum(a * b, axis=1) ** 2, 0, 1))))


def test_our_relative_rotation_equals_the_pytorch3d_formula_up_to_the_axis_flip():
    rng = np.random.default_rng(5)
    R_cv = random_rotations(rng, 6)
    R_p3d, _ = to_pytorch3d(R_cv, rng.normal(size=(6, 3)))
    pairs = ordered_pairs(6)
    ours = relative_rotations(R_cv, pairs)
    theirs = np.swapaxes(R_p3d[pairs[:, 0]], 1, 2) @ R_p3d[pairs[:, 1]]
    np.testing.assert_allclose(theirs, FLIP_XY @ ours @ FLIP_XY, atol=1e-12)


def test_errors_match_the_official_formulas_on_random_cameras():
    rng = np.random.default_rng(6)
    num = 7
    gt_R, gt_t = random_rotations(rng, num), rng.normal(size=(num, 3))
    pred_R, pred_t = random_rotations(rng, num), rng.normal(size=(num, 3))
    gt_p3d, pred_p3d = to_pytorch3d(gt_R, gt_t), to_pytorch3d(pred_R, pred_t)
    for pairs in (ordered_pairs(num), unordered_pairs(num)):
        np.testing.assert_allclose(
            relative_rotation_errors_deg(pred_R, gt_R, pairs),
            official_rotation_errors(pred_p3d[0], gt_p3d[0], pairs), atol=1e-7)
    pairs = unordered_pairs(num)
    np.testing.assert_allclose(
        relative_translation_errors_deg(pred_R, pred_t, gt_R, gt_t),
        official_translation_errors(pred_p3d, gt_p3d, pairs), atol=1e-6)


def test_rotation_error_is_the_same_for_both_orders_of_a_pair():
    rng = np.random.default_rng(7)
    pred, gt = random_rotations(rng, 5), random_rotations(rng, 5)
    errors = relative_rotation_errors_deg(pred, gt, ordered_pairs(5))
    lookup = {tuple(p): e for p, e in zip(ordered_pairs(5), errors, strict=True)}
    for i, j in unordered_pairs(5):
        assert lookup[(i, j)] == pytest.approx(lookup[(j, i)], abs=1e-9)


# --- camera centres -------------------------------------------------------------------------


def test_scene_scale_is_max_distance_from_the_centroid():
    centers = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 3]])
    # centroid (0, 0, 0.6): the last camera is 2.4 away, the others sqrt(1.36)
    assert sequence_scene_scale(centers) == pytest.approx(2.4)
    with pytest.raises(MetricInputError, match='coincide'):
        sequence_scene_scale(np.ones((3, 3)))


def test_camera_center_error_of_a_hand_computed_case_normalised_by_scene_scale():
    # GT: a unit square in z = 0. Prediction: the x-axis cameras lifted by h, the y-axis ones
    # lowered by h. Umeyama gives R = I, s = 1 / (1 + h^2); each error is h / sqrt(1 + h^2).
    h = 0.75
    gt_centers = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]])
    pred_centers = gt_centers + np.array([[0, 0, h], [0, 0, h], [0, 0, -h], [0, 0, -h]])
    R = random_rotations(np.random.default_rng(8), 4)
    gt = cameras_from_centers(R, gt_centers)
    pred = cameras_from_centers(R, pred_centers)
    errors = camera_center_errors(*pred, *gt, scene_scale=2.0)
    np.testing.assert_allclose(errors, np.full(4, 0.6 / 2.0), atol=1e-12)
    np.testing.assert_allclose(camera_center_errors(*pred, *gt, scene_scale=1.0), 0.6,
                               atol=1e-12)


def test_camera_center_errors_vanish_for_a_similar_copy():
    rng = np.random.default_rng(9)
    gt_R, gt_centers = random_rotations(rng, 5), rng.normal(size=(5, 3))
    world = rot([1, 2, 3], 40)
    pred_R = gt_R @ world.T
    pred_centers = 0.3 * gt_centers @ world.T + [4.0, -1.0, 2.0]
    errors = camera_center_errors(*cameras_from_centers(pred_R, pred_centers),
                                  *cameras_from_centers(gt_R, gt_centers), scene_scale=1.0)
    np.testing.assert_allclose(errors, 0.0, atol=1e-12)


def test_two_view_camera_center_accuracy_is_trivially_one():
    rng = np.random.default_rng(10)
    for _ in range(20):
        gt = cameras_from_centers(random_rotations(rng, 2), rng.normal(size=(2, 3)))
        pred = cameras_from_centers(random_rotations(rng, 2), rng.normal(size=(2, 3)))
        errors = camera_center_errors(*pred, *gt, scene_scale=0.01)
        assert accuracy(errors, 0.1) == 1.0
        np.testing.assert_allclose(errors, 0.0, atol=1e-9)


def test_collapsed_prediction_maps_all_centres_to_the_true_centroid():
    gt_centers = np.array([[1.0, 0, 0], [-1, 0, 0], [0, 2, 0]])
    R = np.stack([np.eye(3)] * 3)
    pred = cameras_from_centers(R, np.zeros((3, 3)))
    result = evaluate_view_set(*pred, *cameras_from_centers(R, gt_centers), scene_scale=2.0)
    assert result.alignment is None
    centroid = gt_centers.mean(axis=0)
    np.testing.assert_allclose(result.camera_center_errors,
                               np.linalg.norm(gt_centers - centroid, axis=1) / 2.0)


def test_camera_centers_are_minus_R_transpose_t():
    R = np.stack([rot([0, 0, 1], 90)])
    t = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(camera_centers(R, t), [-(R[0].T @ t[0])])


# --- accuracies and AUC ---------------------------------------------------------------------


def test_accuracy_is_strictly_below_threshold():
    assert accuracy(np.array([14.9, 15.0, 15.1, np.nan]), 15.0) == 0.25
    with pytest.raises(MetricInputError):
        accuracy(np.array([]), 15.0)


def test_auc_of_a_known_error_list():
    rotation = np.array([0.5, 1.5, 2.0, 40.0])
    translation = np.array([0.1, 0.2, 10.0, 5.0])
    # max errors 0.5, 1.5, 10, 40: accuracy 1/4 at k = 1, 2/4 at k = 2..10, 3/4 at k = 11..30
    expected = (1 * 0.25 + 9 * 0.5 + 20 * 0.75) / 30
    assert pose_auc(rotation, translation) == pytest.approx(expected, abs=1e-15)


def test_auc_threshold_edges_follow_the_histogram_bins():
    # Error exactly 1 misses k = 1 (half-open bin); exactly 30 counts at k = 30 (closed last bin).
    assert pose_auc(np.array([1.0]), np.array([0.0])) == pytest.approx(29 / 30)
    assert pose_auc(np.array([30.0]), np.array([0.0])) == pytest.approx(1 / 30)
    assert pose_auc(np.array([30.5]), np.array([0.0])) == 0.0
    assert pose_auc(np.zeros(3), np.zeros(3)) == 1.0


def test_auc_equals_the_mean_cumulative_unit_histogram():
    errors = np.random.default_rng(11).uniform(0, 45, size=(2, 500))
    histogram, _ = np.histogram(errors.max(axis=0), bins=np.arange(31))
    reference = np.mean(np.cumsum(histogram / 500))
    assert pose_auc(errors[0], errors[1]) == pytest.approx(reference, abs=1e-12)
    with pytest.raises(MetricInputError, match='positive integer'):
        pose_auc(errors[0], errors[1], max_threshold_deg=2.5)


# --- view sets and pooling ------------------------------------------------------------------


def test_evaluate_view_set_shapes_and_perfect_scores():
    rng = np.random.default_rng(12)
    gt = cameras_from_centers(random_rotations(rng, 4), rng.normal(size=(4, 3)))
    result = evaluate_view_set(*gt, *gt, scene_scale=1.0)
    assert result.rotation_errors_deg.shape == (12,)
    assert result.pair_rotation_errors_deg.shape == (6,)
    assert result.pair_translation_errors_deg.shape == (6,)
    assert result.camera_center_errors.shape == (4,)
    pooled = pool_view_set_errors([result, result])
    assert (pooled.rotation_accuracy, pooled.rra, pooled.rta, pooled.auc,
            pooled.camera_center_accuracy) == (1.0, 1.0, 1.0, 1.0, 1.0)
    assert (pooled.num_ordered_pairs, pooled.num_pairs, pooled.num_cameras) == (24, 12, 8)


def test_pooling_thresholds_the_concatenated_errors():
    gt_R = np.stack([np.eye(3), rot([0, 0, 1], 90), rot([0, 1, 0], 45)])
    centers = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    gt = cameras_from_centers(gt_R, centers)
    # Set A: perfect. Set B: camera 2 rotated by 20 degrees -> 4 of 6 ordered pairs fail.
    bad_R = gt_R.copy()
    bad_R[2] = rot([1, 0, 0], 20) @ bad_R[2]
    perfect = evaluate_view_set(*gt, *gt, scene_scale=1.0)
    broken = evaluate_view_set(*cameras_from_centers(bad_R, centers), *gt, scene_scale=1.0)
    np.testing.assert_allclose(np.sort(broken.rotation_errors_deg), [0, 0, 20, 20, 20, 20],
                               atol=1e-9)
    pooled = pool_view_set_errors([perfect, broken])
    assert pooled.rotation_accuracy == pytest.approx(8 / 12)
    assert pooled.rra == pytest.approx(4 / 6)
    assert pooled.mean_rotation_error_deg == pytest.approx(80 / 12)
    loose = pool_view_set_errors([perfect, broken], MetricThresholds(rotation_deg=25.0))
    assert loose.rotation_accuracy == 1.0


def test_bad_inputs_raise_clear_errors():
    R = np.stack([np.eye(3)] * 3)
    with pytest.raises(MetricInputError, match=r'shape \(N, 3, 3\)'):
        relative_rotation_errors_deg(np.eye(3), R)
    with pytest.raises(MetricInputError, match='differ in shape'):
        relative_rotation_errors_deg(R[:2], R)
    with pytest.raises(MetricInputError, match='scene_scale'):
        evaluate_view_set(R, np.zeros((3, 3)), R, np.eye(3), scene_scale=0.0)
    with pytest.raises(MetricInputError, match=r'\(3, 3\)'):
        evaluate_view_set(R, np.zeros((2, 3)), R, np.eye(3), scene_scale=1.0)
    with pytest.raises(MetricInputError, match='non-finite'):
        evaluate_view_set(R * np.nan, np.zeros((3, 3)), R, np.eye(3), scene_scale=1.0)
