"""Baseline lengths from shared points: depths at unit baseline against known points, length
ratios against the true baselines, and a chain of pairs (no triangle, so no length from the
directions) whose centres come out right only with them, and a wrong ratio the guard refuses."""

import numpy as np
import pytest

from raydiff_ros.features.relative_pose import RelativePose
from raydiff_ros.fusion import estimator as fusion
from raydiff_ros.fusion.baseline_lengths import length_ratios, relative_lengths, unit_depths
from raydiff_ros.fusion.view_graph import ViewGraph
from raydiff_ros.geometry.transforms import axis_angle_rotations

K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])


def cameras(num, seed):
    """(N, 3, 3) world-to-camera rotations, (N, 3) centres along x with uneven spacing,
    all looking down +z at a point cloud."""
    rng = np.random.default_rng(seed)
    R = axis_angle_rotations(rng.normal(size=(num, 3)), np.radians(rng.uniform(2, 6, num)))
    centres = np.zeros((num, 3))
    centres[1:, 0] = np.cumsum(rng.uniform(0.3, 1.5, num - 1))
    centres[1:, 1] = rng.uniform(-0.2, 0.2, num - 1)
    return R, centres


def project(points, R, centre):
    camera = (points - centre) @ R.T
    pixels = camera @ K.T
    return pixels[:, :2] / pixels[:, 2:], camera[:, 2]


def rays(pixels):
    return np.concatenate([pixels, np.ones((len(pixels), 1))], axis=1) @ np.linalg.inv(K).T


def pair_geometry(R, centres, i, j):
    """``cam_j_R_cam_i`` and the unit ``t`` of ``x_j = R x_i + t``, and the baseline."""
    R_ij = R[j] @ R[i].T
    t = R[j] @ (centres[i] - centres[j])
    return R_ij, t / np.linalg.norm(t), float(np.linalg.norm(t))


def test_unit_depths_are_the_true_depths_over_the_baseline():
    rng = np.random.default_rng(0)
    R, centres = cameras(2, seed=1)
    points = rng.uniform([-1, -1, 4], [2, 1, 9], size=(50, 3))
    pixels_i, depth_i = project(points, R[0], centres[0])
    pixels_j, depth_j = project(points, R[1], centres[1])
    R_ij, t, baseline = pair_geometry(R, centres, 0, 1)
    found_i, found_j = unit_depths(R_ij, t, rays(pixels_i), rays(pixels_j))
    np.testing.assert_allclose(found_i, depth_i / baseline, rtol=1e-9)
    np.testing.assert_allclose(found_j, depth_j / baseline, rtol=1e-9)
    # Parallel rays (a point at infinity along the baseline's normal) have no depth.
    parallel = unit_depths(np.eye(3), np.array([1.0, 0, 0]), np.array([[0, 0, 1.0]]),
                           np.array([[0, 0, 1.0]]))
    assert np.isnan(parallel[0]).all() and np.isnan(parallel[1]).all()


def observations(R, centres, edges, points, noise_px=0.0, seed=0):
    """Pixels and unit-baseline depths of the points each edge sees (every point, both
    views), with pixel noise."""
    rng = np.random.default_rng(seed)
    pixels, depths = {}, {}
    for i, j in edges:
        pixels_i = project(points, R[i], centres[i])[0] + rng.normal(0, noise_px, (len(points), 2))
        pixels_j = project(points, R[j], centres[j])[0] + rng.normal(0, noise_px, (len(points), 2))
        R_ij, t, _ = pair_geometry(R, centres, i, j)
        pixels[(i, j)] = (pixels_i, pixels_j)
        depths[(i, j)] = unit_depths(R_ij, t, rays(pixels_i), rays(pixels_j))
    return pixels, depths


def test_ratios_and_lengths_follow_the_true_baselines():
    rng = np.random.default_rng(2)
    R, centres = cameras(4, seed=3)
    points = rng.uniform([-1, -1, 5], [4, 1, 10], size=(200, 3))
    edges = [(0, 1), (1, 2), (2, 3)]
    pixels, depths = observations(R, centres, edges, points, noise_px=0.2)
    ratios = length_ratios(pixels, depths)
    assert set(ratios) == {((0, 1), (1, 2)), ((1, 2), (2, 3))}  # pairs of edges sharing a view
    true = {e: pair_geometry(R, centres, *e)[2] for e in edges}
    for (e, f), (log_ratio, shared) in ratios.items():
        assert shared >= 190  # two noisy detections of a point lie within 1 px
        assert np.exp(log_ratio) == pytest.approx(true[f] / true[e], rel=0.02)
    (lengths,) = relative_lengths(edges, ratios)
    scale = true[(0, 1)] / lengths[(0, 1)]
    for edge in edges:
        assert scale * lengths[edge] == pytest.approx(true[edge], rel=0.03)
    assert np.prod(list(lengths.values())) == pytest.approx(1.0)


def test_edges_that_share_no_points_are_separate_groups():
    rng = np.random.default_rng(4)
    R, centres = cameras(4, seed=5)
    edges = [(0, 1), (1, 2), (2, 3)]
    pixels, depths = observations(R, centres, edges, rng.uniform([-1, -1, 5], [4, 1, 10],
                                                                 size=(100, 3)))
    # Edge (1, 2) sees other points than (0, 1) and (2, 3), whose own points are shared.
    other = observations(R, centres, [(1, 2)], rng.uniform([-1, -1, 5], [4, 1, 10],
                                                           size=(100, 3)))
    pixels[(1, 2)], depths[(1, 2)] = other[0][(1, 2)], other[1][(1, 2)]
    ratios = length_ratios(pixels, depths, tolerance_px=0.5)
    assert ratios == {}
    assert relative_lengths(edges, ratios) == []
    assert length_ratios(pixels, depths, min_shared=101) == {}


def test_a_chain_of_pairs_gets_its_lengths_from_the_shared_points():
    """A chain has no triangle: the directions alone leave each baseline's length free."""
    rng = np.random.default_rng(6)
    num = 4
    R, centres = cameras(num, seed=7)
    points = rng.uniform([-1, -1, 5], [4, 1, 10], size=(150, 3))
    edges = [(0, 1), (1, 2), (2, 3)]
    pixels, _ = observations(R, centres, edges, points, noise_px=0.2, seed=1)
    graph = ViewGraph(num_views=num)
    for i, j in edges:
        R_ij, t, _ = pair_geometry(R, centres, i, j)
        graph.verified[(i, j)] = RelativePose(i, j, R_ij, t, 150, 150, *pixels[(i, j)])
    Ks = np.repeat(K[None], num, axis=0)
    truth = centres @ R[0].T - centres[0] @ R[0].T  # in camera 0's frame

    def centre_errors(config):
        estimator = fusion.FusedEstimator(None, config, device='cpu')
        fused = estimator._fuse(num, None, graph, *estimator._verified_edges(graph, Ks))[0]
        found = fused[:, :3, 3]
        found = found * np.linalg.norm(truth[1]) / np.linalg.norm(found[1])
        return np.linalg.norm(found - truth, axis=1) / np.linalg.norm(truth[1])

    assert np.max(centre_errors(fusion.FusedConfig(shared_point_lengths=True))) < 0.03
    off = fusion.FusedConfig(shared_point_lengths=False)
    assert np.max(centre_errors(off)) > 0.2  # every baseline the same length


def test_lengths_that_would_bend_the_directions_are_not_kept():
    """A triangle fixes its own proportions: a wrong ratio (3 times the true one) cannot be
    held without turning the directions, so the free solution stays; the true ratio is kept."""
    num = 3
    R, centres = cameras(num, seed=8)
    centres[2] += np.array([0.0, 0.8, 0.0])  # a proper triangle
    graph = ViewGraph(num_views=num)
    for i, j in [(0, 1), (1, 2), (0, 2)]:
        R_ij, t, _ = pair_geometry(R, centres, i, j)
        graph.verified[(i, j)] = RelativePose(i, j, R_ij, t, 100, 100, np.zeros((0, 2)),
                                              np.zeros((0, 2)))
    kept = list(graph.verified)
    confidence = dict.fromkeys(kept, 1.0)
    estimator = fusion.FusedEstimator(None, fusion.FusedConfig(shared_point_lengths=True),
                                      device='cpu')
    true = {e: pair_geometry(R, centres, *e)[2] for e in kept}

    def solved(ratio=None):
        ratios = {} if ratio is None else {((0, 1), (1, 2)): (np.log(ratio), 100)}
        anchor = np.array([[0, 0, 0], [1.0, 0, 0], [1.0, 1.0, 0]])  # a rough guess
        found = estimator._centres(R, kept, graph, confidence, anchor, ratios)
        return found * np.linalg.norm(centres[1] - centres[0]) / np.linalg.norm(found[1])

    truth = centres - centres[0]
    np.testing.assert_allclose(solved(true[(1, 2)] / true[(0, 1)]), truth, atol=1e-3)
    # The free solution (the weak anchor pulls it a little) stays for the wrong ratio.
    np.testing.assert_allclose(solved(), truth, atol=2e-2)
    np.testing.assert_allclose(solved(3 * true[(1, 2)] / true[(0, 1)]), solved(), atol=1e-9)
    held = fusion.LENGTHS_DIRECTION_SLACK_DEG
    fusion.LENGTHS_DIRECTION_SLACK_DEG = 180.0  # without the guard the wrong ratio is held
    try:
        assert np.max(np.abs(solved(3 * true[(1, 2)] / true[(0, 1)]) - truth)) > 0.1
    finally:
        fusion.LENGTHS_DIRECTION_SLACK_DEG = held
