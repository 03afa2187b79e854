"""Matching and refinement on the real temple_ring images (shared data)."""

import numpy as np
import pytest

from raydiff_ros.cli.evaluate import main
from raydiff_ros.estimation import (
    EstimatorError,
    RefinementError,
    create_estimator,
    with_refinement,
)
from raydiff_ros.estimation.reference import NoisyOracleEstimator
from raydiff_ros.evaluation.datasets import load_dataset
from raydiff_ros.evaluation.harness import HarnessConfig, run_evaluation
from raydiff_ros.evaluation.view_set import SceneViewSet
from raydiff_ros.features.matching import MatchingConfig, MatchingError, match_view_set
from raydiff_ros.geometry.metrics import relative_rotation_errors_deg
from raydiff_ros.geometry.transforms import camera_centers
from raydiff_ros.refinement.bundle import refine_poses
from raydiff_ros.refinement.refined_estimator import RefinedEstimator

START_IMAGES = (0, 15, 30)
VIEWS_PER_SET = 4
ORACLE_ROTATION_NOISE_DEG = 5.0
MAX_TRUE_POSE_MEDIAN_PX = 1.0
"""Median Sampson error of verified matches under the true poses (SfM agrees to ~0.9 deg)."""
MAX_REFINED_MEAN_ERROR_DEG = 1.0


@pytest.fixture(scope='module')
def temple(shared_dir):
    return load_dataset(shared_dir / 'data' / 'temple_ring')


def neighbour_sets(dataset) -> list[tuple[int, ...]]:
    """Each start image with its nearest neighbours on the ring (by true centre)."""
    centers = camera_centers(dataset.R, dataset.t)
    return [tuple(int(i) for i in np.argsort(np.linalg.norm(centers - centers[s], axis=1))
                  [:VIEWS_PER_SET]) for s in START_IMAGES]


def test_verified_matches_agree_with_the_true_poses(temple):
    view_set = SceneViewSet(temple, neighbour_sets(temple)[0])
    images = view_set.images()
    matches = match_view_set(images, view_set.K)
    assert [(p.i, p.j) for p in matches] == [(i, j) for i in range(4) for j in range(i + 1, 4)]
    _, _, report = refine_poses(view_set.ground_truth_R, view_set.ground_truth_t, view_set.K,
                                matches)
    assert report.initial_median_px < MAX_TRUE_POSE_MEDIAN_PX
    # A SIFT downscale is undone: points stay in the original pixel frame.
    small = match_view_set(images, view_set.K, MatchingConfig(max_image_side=320))
    _, _, small_report = refine_poses(view_set.ground_truth_R, view_set.ground_truth_t,
                                      view_set.K, small)
    assert small_report.initial_median_px < 2 * MAX_TRUE_POSE_MEDIAN_PX
    for pair in small:
        assert pair.points_i[:, 0].max() > 320 and pair.points_i[:, 0].max() < 640


def test_blank_images_give_no_pairs_and_bad_input_raises():
    blank = [np.full((60, 80, 3), 128, dtype=np.uint8)] * 3
    assert match_view_set(blank, None) == []
    with pytest.raises(MatchingError, match='at least 2'):
        match_view_set(blank[:1], None)
    with pytest.raises(MatchingError, match='uint8'):
        match_view_set([b.astype(np.float32) for b in blank], None)
    with pytest.raises(MatchingError, match='K must have shape'):
        match_view_set(blank, np.eye(3))


@pytest.mark.slow  # 2 to 6.5 s on 2 cores, up to 40 s when they are busy
def test_noisy_oracle_plus_bundle_improves_rotations(temple):
    oracle = NoisyOracleEstimator(seed=0, rotation_noise_deg=ORACLE_ROTATION_NOISE_DEG)
    refined = RefinedEstimator(NoisyOracleEstimator(
        seed=0, rotation_noise_deg=ORACLE_ROTATION_NOISE_DEG))
    before, after, seconds = [], [], []
    for indices in neighbour_sets(temple):
        view_set = SceneViewSet(temple, indices)
        inputs = view_set.estimation_input()
        coarse, fine = oracle.estimate(inputs), refined.estimate(inputs)
        for result, errors in ((coarse, before), (fine, after)):
            R, _ = result.world_to_camera()
            errors.append(relative_rotation_errors_deg(R, view_set.ground_truth_R).mean())
        seconds.append(fine.timings_s['refinement'])
        assert refined.last_report.refined
        assert fine.pose_sources[1:] == ('noisy_oracle+bundle',) * (VIEWS_PER_SET - 1)
    print(f'\ntemple_ring, {VIEWS_PER_SET} neighbouring views: mean rotation error per set '
          f'{np.round(before, 2)} -> {np.round(after, 3)} deg; matching + refinement '
          f'{np.round(seconds, 2)} s per view set (CPU)')
    assert np.mean(after) < MAX_REFINED_MEAN_ERROR_DEG < ORACLE_ROTATION_NOISE_DEG < np.mean(
        before)


def test_with_refinement_selects_the_wrapper():
    base = create_estimator('random')
    assert with_refinement(base, 'none') is base
    wrapped = with_refinement(base, 'bundle')
    assert isinstance(wrapped, RefinedEstimator) and wrapped.name == 'random+bundle'
    with pytest.raises(EstimatorError, match='refinement must be one of'):
        with_refinement(base, 'magic')
    with pytest.raises(RefinementError, match="'random' has no sampler"):
        with_refinement(base, 'guided')


def test_cli_refine_bundle_records_refinement_time(shared_dir, tmp_path, capsys):
    arguments = [str(shared_dir / 'data' / 'temple_ring'), '--estimator', 'noisy_oracle',
                 '--num-views', '2', '--sets-per-n', '1', '--output', str(tmp_path / 'o')]
    assert main(arguments + ['--refine', 'bundle']) == 0
    assert 'refinement:' in capsys.readouterr().out
    assert main(arguments) == 0
    assert 'refinement:' not in capsys.readouterr().out
    assert main(arguments + ['--refine', 'guided']) == 2  # the oracle has no sampler
    assert 'no sampler' in capsys.readouterr().err


def test_harness_records_refinement_seconds(temple):
    config = HarnessConfig(num_views=(2,), sets_per_n=1)
    plain = run_evaluation(temple, create_estimator('noisy_oracle'), config)
    refined = run_evaluation(temple, with_refinement(create_estimator('noisy_oracle'), 'bundle'),
                             config)
    assert plain.records[0].refinement_seconds is None
    assert refined.records[0].refinement_seconds > 0
    assert refined.estimator_name == 'noisy_oracle+bundle'
