"""Robust Sampson-error bundle adjustment (``raydiff_ros.refinement.bundle``)."""


import numpy as np
import pytest
import refinement_scenes as scenes
import torch

from raydiff_ros.features.matching import PairMatches
from raydiff_ros.geometry.transforms import (
    axis_angle_rotations,
    camera_centers,
    invert_transforms,
    make_transforms,
    random_rotations,
    rotation_angle_deg,
    rotation_exp,
)
from raydiff_ros.refinement.bundle import (
    BundleConfig,
    BundleError,
    refine_poses,
)

PERTURBATION_DEG = 5.0
CENTER_NOISE = 0.1
NOISE_PX = 0.5
OUTLIER_FRACTION = 0.2
HUBER_OUTLIER_FRACTION = 0.02
POINTS_PER_PAIR = 400
MAX_ERROR_DEG = 0.5


def test_rotation_exp_matches_rodrigues():
    rng = np.random.default_rng(3)
    axes = rng.standard_normal((5, 3))
    angles = rng.uniform(0, np.pi, 5)
    vectors = axes / np.linalg.norm(axes, axis=1, keepdims=True) * angles[:, None]
    expected = axis_angle_rotations(axes, angles)
    assert np.allclose(rotation_exp(torch.from_numpy(vectors)).numpy(), expected, atol=1e-12)
    assert np.allclose(rotation_exp(torch.zeros(3, dtype=torch.float64)).numpy(), np.eye(3))


# Huber is not redescending: it is tested with fewer outliers than the Cauchy loss.
@pytest.mark.parametrize('num_views,loss,outliers', [
    (2, 'cauchy', OUTLIER_FRACTION),
    (2, 'huber', HUBER_OUTLIER_FRACTION),
    pytest.param(5, 'cauchy', OUTLIER_FRACTION, marks=pytest.mark.slow),  # 3 to 11 s, 2 cores
])
def test_refinement_from_five_degrees_comes_back_within_half_a_degree(num_views, loss, outliers):
    rng = np.random.default_rng(num_views)
    R, t, K = scenes.ring_cameras(num_views)
    matches = scenes.synthetic_matches(R, t, K, POINTS_PER_PAIR, NOISE_PX, outliers, rng)
    R_start, t_start = scenes.perturbed(R, t, PERTURBATION_DEG, CENTER_NOISE, rng)
    R_out, t_out, report = refine_poses(R_start, t_start, K, matches, BundleConfig(loss=loss))
    before = rotation_angle_deg(R_start, R)
    after = rotation_angle_deg(R_out, R)
    print(f'N={num_views} {loss}: rotation error {before.max():.2f} -> {after.max():.3f} deg, '
          f'median Sampson {report.initial_median_px:.2f} -> {report.final_median_px:.3f} px, '
          f'{report.iterations} iterations, {report.seconds:.2f} s')
    assert report.refined and report.reason == ''
    assert report.num_matches == sum(p.num_matches for p in matches)
    assert after.max() < MAX_ERROR_DEG < before[1:].min()
    assert report.final_median_px < NOISE_PX < report.initial_median_px
    assert 1 <= report.iterations <= BundleConfig().max_iterations


def test_gauge_camera_zero_fixed_and_first_distance_kept():
    rng = np.random.default_rng(7)
    R, t, K = scenes.ring_cameras(4)
    matches = scenes.synthetic_matches(R, t, K, 200, NOISE_PX, 0.0, rng)
    R_start, t_start = scenes.perturbed(R, t, PERTURBATION_DEG, CENTER_NOISE, rng)
    R_out, t_out, _ = refine_poses(R_start, t_start, K, matches)
    assert np.array_equal(R_out[0], R_start[0]) and np.allclose(t_out[0], t_start[0])
    before, after = camera_centers(R_start, t_start), camera_centers(R_out, t_out)
    assert np.isclose(np.linalg.norm(after[1] - after[0]), np.linalg.norm(before[1] - before[0]))
    assert not np.allclose(after[2:], before[2:])


def test_too_few_matches_returns_the_input_unchanged_and_says_so():
    rng = np.random.default_rng(1)
    R, t, K = scenes.ring_cameras(3)
    few = scenes.synthetic_matches(R, t, K, 5, NOISE_PX, 0.0, rng)
    R_start, t_start = scenes.perturbed(R, t, PERTURBATION_DEG, CENTER_NOISE, rng)
    for matches in (few, []):
        R_out, t_out, report = refine_poses(R_start, t_start, K, matches)
        assert not report.refined and 'too few' in report.reason
        assert np.array_equal(R_out, R_start) and np.array_equal(t_out, t_start)
        assert report.iterations == 0 and report.num_matches == len(matches) * 5


def test_each_component_of_the_match_graph_keeps_its_anchor():
    rng = np.random.default_rng(4)
    R, t, K = scenes.ring_cameras(4)
    matches = [p for p in scenes.synthetic_matches(R, t, K, 200, NOISE_PX, 0.0, rng)
               if (p.i, p.j) in ((0, 1), (2, 3))]
    R_start, t_start = scenes.perturbed(R, t, PERTURBATION_DEG, CENTER_NOISE, rng)
    R_out, t_out, report = refine_poses(R_start, t_start, K, matches)
    assert report.refined and report.num_free_cameras == 2
    assert np.array_equal(R_out[2], R_start[2]) and np.allclose(t_out[2], t_start[2])
    # Within each component the relative rotation is recovered; across them nothing changes.
    for a, b in ((0, 1), (2, 3)):
        assert rotation_angle_deg(R_out[a] @ R_out[b].T, R[a] @ R[b].T) < MAX_ERROR_DEG
    assert np.isclose(rotation_angle_deg(R_out[0] @ R_out[2].T, R[0] @ R[2].T),
                      rotation_angle_deg(R_start[0] @ R_start[2].T, R[0] @ R[2].T))
    centers_in, centers_out = camera_centers(R_start, t_start), camera_centers(R_out, t_out)
    assert np.isclose(np.linalg.norm(centers_out[3] - centers_out[2]),
                      np.linalg.norm(centers_in[3] - centers_in[2]))


def test_weak_pairs_link_no_cameras():
    rng = np.random.default_rng(5)
    R, t, K = scenes.ring_cameras(2)
    weak = scenes.synthetic_matches(R, t, K, 40, NOISE_PX, 0.0, rng)
    R_start, t_start = scenes.perturbed(R, t, PERTURBATION_DEG, CENTER_NOISE, rng)
    R_out, _, report = refine_poses(R_start, t_start, K, weak)
    assert not report.refined and 'no pair has' in report.reason
    assert np.array_equal(R_out, R_start)
    _, _, report = refine_poses(R_start, t_start, K, weak, BundleConfig(min_pair_matches=30))
    assert report.refined


def test_cameras_without_matches_are_held_fixed():
    rng = np.random.default_rng(2)
    R, t, K = scenes.ring_cameras(3)
    matches = [p for p in scenes.synthetic_matches(R, t, K, 100, NOISE_PX, 0.0, rng)
               if p.j != 2]
    R_start, t_start = scenes.perturbed(R, t, PERTURBATION_DEG, CENTER_NOISE, rng)
    R_out, t_out, report = refine_poses(R_start, t_start, K, matches)
    assert report.refined and report.num_free_cameras == 1
    assert np.array_equal(R_out[2], R_start[2])


def test_bad_inputs_raise():
    R, t, K = scenes.ring_cameras(2)
    with pytest.raises(BundleError, match='R must have shape'):
        refine_poses(R[:1], t[:1], K[:1], [])
    with pytest.raises(BundleError, match='expected t'):
        refine_poses(R, t[:, :2], K, [])
    outside = PairMatches(i=0, j=3, points_i=np.zeros((40, 2)), points_j=np.zeros((40, 2)))
    with pytest.raises(BundleError, match='beyond'):
        refine_poses(R, t, K, [outside])
    with pytest.raises(ValueError, match='loss'):
        BundleConfig(loss='l1')


def test_the_refinement_does_not_depend_on_the_world_frame_of_the_start():
    """The same start expressed in another world frame (rotated and moved) refines to the same
    cameras: the damped steps turn with the frame (block-isotropic Marquardt scaling)."""
    rng = np.random.default_rng(5)
    R, t, K = scenes.ring_cameras(4)
    matches = scenes.synthetic_matches(R, t, K, 80, 0.5, 0.0, rng)
    R_start, t_start = scenes.perturbed(R, t, 4.0, 0.05, rng)
    R_a, t_a, report = refine_poses(R_start, t_start, K, matches)
    assert report.refined
    other_T_world = make_transforms(random_rotations(rng, 1)[0], [1.0, -2.0, 0.5])
    moved = make_transforms(R_start, t_start) @ invert_transforms(other_T_world)
    R_b, t_b, _ = refine_poses(moved[:, :3, :3], moved[:, :3, 3], K, matches)
    back = make_transforms(R_b, t_b) @ other_T_world
    np.testing.assert_allclose(back[:, :3, :3], R_a, atol=1e-9)
    np.testing.assert_allclose(back[:, :3, 3], t_a, atol=1e-9)
