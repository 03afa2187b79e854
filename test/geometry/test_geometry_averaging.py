"""Motion averaging against known cameras: spanning tree, chained and averaged rotations,
centres from directions."""

import numpy as np
import pytest

from raydiff_ros.geometry.averaging import (
    average_rotations,
    chain_rotations,
    component_labels,
    connected_components,
    direction_errors_deg,
    maximum_spanning_tree,
    rotation_residuals_deg,
    solve_centres,
)
from raydiff_ros.geometry.transforms import (
    axis_angle_rotations,
    random_rotations,
    rotation_angle_deg,
)


def cameras(num: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    R = random_rotations(rng, num)
    R = R @ R[0].T  # camera 0 is the world frame
    centres = rng.normal(size=(num, 3))
    centres -= centres[0]
    return R, centres


def relative(R, pairs):
    return {(i, j): R[j] @ R[i].T for i, j in pairs}


def test_maximum_spanning_tree_prefers_heavy_edges_and_skips_unreachable():
    weights = {(0, 1): 10, (0, 2): 100, (1, 2): 50, (3, 4): 80}
    assert maximum_spanning_tree(5, weights) == [(0, 2), (2, 1)]
    assert maximum_spanning_tree(5, weights, root=3) == [(3, 4)]


def test_chained_rotations_are_exact_along_the_tree_in_both_directions():
    R, _ = cameras(4)
    pairs = [(0, 1), (1, 2), (2, 3)]
    tree = [(0, 1), (1, 2), (2, 3)]
    chained = chain_rotations(np.repeat(np.eye(3)[None], 4, axis=0), tree, relative(R, pairs))
    assert np.max(rotation_angle_deg(chained, R)) < 1e-6
    backwards = chain_rotations(np.repeat(R[3:4], 4, axis=0), [(3, 2), (2, 1), (1, 0)],
                                relative(R, pairs))
    assert np.max(rotation_angle_deg(backwards @ backwards[0].T, R)) < 1e-6


def test_averaging_spreads_noise_and_ignores_a_gross_outlier():
    rng = np.random.default_rng(1)
    num = 6
    R, _ = cameras(num, seed=1)
    pairs = [(i, j) for i in range(num) for j in range(i + 1, num)]
    measured = []
    for i, j in pairs:
        noise = axis_angle_rotations(rng.normal(size=(1, 3)), np.radians([0.5]))[0]
        measured.append(noise @ R[j] @ R[i].T)
    measured[3] = axis_angle_rotations(np.array([[0.0, 1.0, 0.0]]), np.radians([60.0]))[0] \
        @ measured[3]
    start = R @ axis_angle_rotations(rng.normal(size=(num, 3)), np.radians(np.full(num, 8.0)))
    start[0] = np.eye(3)
    averaged = average_rotations(start, pairs, np.array(measured), np.ones(len(pairs)))
    assert np.max(rotation_angle_deg(averaged, R)) < 1.0
    residuals = rotation_residuals_deg(averaged, pairs, np.array(measured))
    assert residuals[3] > 50.0
    assert np.median(residuals) < 1.5


def test_centres_follow_exact_directions_and_flag_a_flipped_one():
    num = 4
    R, centres = cameras(num, seed=2)
    pairs = [(0, 1), (1, 2), (2, 3), (0, 2), (1, 3)]
    translations = []
    for i, j in pairs:
        direction = R[j] @ (centres[i] - centres[j])
        translations.append(direction / np.linalg.norm(direction))
    translations = np.array(translations)
    anchor = centres + np.random.default_rng(3).normal(scale=0.3, size=centres.shape)
    anchor[0] = 0.0
    solved, lengths = solve_centres(R, pairs, translations, np.ones(len(pairs)), anchor, 1e-4)
    scale = np.sum(solved * centres) / np.sum(centres * centres)
    assert scale > 0
    assert np.max(np.abs(solved - scale * centres)) < 1e-2 * np.max(np.abs(centres))
    assert np.all(lengths > 0)
    assert np.max(direction_errors_deg(R, solved, pairs, translations)) < 0.5
    flipped = translations.copy()
    flipped[4] *= -1.0
    _, lengths = solve_centres(R, pairs, flipped, np.ones(len(pairs)) * [1, 1, 1, 1, 1e-3],
                               anchor, 1e-4)
    assert lengths[4] < 0


def test_centres_without_edges_are_the_anchor():
    R, centres = cameras(3, seed=4)
    solved, lengths = solve_centres(R, [], np.zeros((0, 3)), np.zeros(0), centres, 1.0)
    assert lengths.shape == (0,)
    assert np.allclose(solved, centres, atol=1e-9)


@pytest.mark.parametrize('fixed', [0, 2])
def test_averaging_holds_the_fixed_camera(fixed):
    R, _ = cameras(3, seed=5)
    pairs = [(0, 1), (1, 2), (0, 2)]
    start = np.repeat(np.eye(3)[None], 3, axis=0)
    averaged = average_rotations(start, pairs, np.array([R[j] @ R[i].T for i, j in pairs]),
                                 np.ones(3), fixed=fixed)
    assert rotation_angle_deg(averaged[fixed], np.eye(3)) < 1e-9
    for i, j in pairs:
        assert rotation_angle_deg(averaged[j] @ averaged[i].T, R[j] @ R[i].T) < 1e-4


def test_components_and_labels_group_linked_cameras():
    edges = [(3, 4), (0, 2), (2, 1)]
    assert connected_components(6, edges) == [[0, 1, 2], [3, 4], [5]]
    assert component_labels(6, edges) == [0, 0, 0, 3, 3, 5]
