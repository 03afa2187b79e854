"""Umeyama similarity alignment and its action on cameras."""

import numpy as np
import pytest

from raydiff_ros.geometry.alignment import (
    AlignmentError,
    DegenerateAlignmentError,
    Similarity,
    transform_cameras,
    umeyama_alignment,
)
from raydiff_ros.geometry.transforms import axis_angle_rotations, random_rotations


def known_similarity() -> Similarity:
    rotation = axis_angle_rotations(np.array([[1.0, 2.0, -0.5]]), np.array([0.7]))[0]
    return Similarity(scale=2.5, rotation=rotation, translation=np.array([0.3, -1.2, 4.0]))


def test_recovers_a_known_similarity_exactly():
    truth = known_similarity()
    source = np.random.default_rng(0).normal(size=(7, 3))
    estimate = umeyama_alignment(source, truth.apply(source))
    assert estimate.scale == pytest.approx(2.5, abs=1e-12)
    np.testing.assert_allclose(estimate.rotation, truth.rotation, atol=1e-12)
    np.testing.assert_allclose(estimate.translation, truth.translation, atol=1e-12)


def test_hand_computed_alignment_of_a_rotated_scaled_square():
    # Target = source rotated by +90 degrees about z, doubled, shifted by (1, 2, 3).
    source = np.array([[1.0, 0, 0], [0, 1, 0], [-1, 0, 0], [0, -1, 0]])
    target = np.array([[0.0, 2, 0], [-2, 0, 0], [0, -2, 0], [2, 0, 0]]) + [1.0, 2.0, 3.0]
    estimate = umeyama_alignment(source, target)
    np.testing.assert_allclose(
        estimate.rotation, [[0.0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12
    )
    assert estimate.scale == pytest.approx(2.0)
    np.testing.assert_allclose(estimate.translation, [1.0, 2.0, 3.0], atol=1e-12)


def test_without_scale_keeps_unit_scale_and_finds_the_rigid_fit():
    truth = known_similarity()
    rigid = Similarity(1.0, truth.rotation, truth.translation)
    source = np.random.default_rng(1).normal(size=(5, 3))
    estimate = umeyama_alignment(source, rigid.apply(source), with_scale=False)
    assert estimate.scale == 1.0
    np.testing.assert_allclose(estimate.rotation, truth.rotation, atol=1e-12)
    # On scaled data the rigid fit must not absorb the scale.
    assert umeyama_alignment(source, truth.apply(source), with_scale=False).scale == 1.0


def test_mirrored_target_still_gives_a_proper_rotation():
    source = np.random.default_rng(2).normal(size=(6, 3))
    mirrored = source * np.array([1.0, 1.0, -1.0])
    estimate = umeyama_alignment(source, mirrored)
    assert np.linalg.det(estimate.rotation) == pytest.approx(1.0)
    np.testing.assert_allclose(estimate.rotation @ estimate.rotation.T, np.eye(3), atol=1e-12)


def test_two_points_align_with_zero_residual():
    source = np.array([[0.0, 0, 0], [1, 0, 0]])
    target = np.array([[5.0, 5, 5], [5, 8, 5]])
    estimate = umeyama_alignment(source, target)
    np.testing.assert_allclose(estimate.apply(source), target, atol=1e-12)
    assert estimate.scale == pytest.approx(3.0)


def test_rejects_too_few_points_and_bad_shapes():
    with pytest.raises(AlignmentError, match='at least 2 points'):
        umeyama_alignment(np.zeros((1, 3)), np.ones((1, 3)))
    with pytest.raises(AlignmentError, match=r'shape \(N, 3\)'):
        umeyama_alignment(np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(AlignmentError, match='same shape'):
        umeyama_alignment(np.random.rand(4, 3), np.random.rand(5, 3))
    with pytest.raises(AlignmentError, match='non-finite'):
        umeyama_alignment(np.array([[0.0, 0, np.nan], [1, 0, 0]]), np.eye(3)[:2])


def test_rejects_coincident_points():
    points = np.random.default_rng(3).normal(size=(4, 3))
    coincident = np.tile([[1.0, 2.0, 3.0]], (4, 1))
    with pytest.raises(DegenerateAlignmentError, match='source points are all coincident'):
        umeyama_alignment(coincident, points)
    with pytest.raises(DegenerateAlignmentError, match='target points are all coincident'):
        umeyama_alignment(points, coincident)


def test_transform_cameras_moves_centres_as_points_and_keeps_projections():
    rng = np.random.default_rng(4)
    similarity = known_similarity()
    R = random_rotations(rng, 3)
    t = rng.normal(size=(3, 3))
    R_new, t_new = transform_cameras(similarity, R, t)
    centers = -np.einsum('nji,nj->ni', R, t)
    centers_new = -np.einsum('nji,nj->ni', R_new, t_new)
    np.testing.assert_allclose(centers_new, similarity.apply(centers), atol=1e-12)
    np.testing.assert_allclose(R_new @ np.swapaxes(R_new, 1, 2), np.tile(np.eye(3), (3, 1, 1)),
                               atol=1e-12)
    # A world point seen by the old cameras is seen in the same direction by the new ones.
    point = rng.normal(size=3)
    old = np.einsum('nij,j->ni', R, point) + t
    new = np.einsum('nij,j->ni', R_new, similarity.apply(point)) + t_new
    np.testing.assert_allclose(new, similarity.scale * old, atol=1e-12)
