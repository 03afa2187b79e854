"""SO(3) / SE(3) maths against known values (numpy and torch agree)."""

import numpy as np
import pytest
import torch

from raydiff_ros.geometry.transforms import (
    PoseError,
    axis_angle_rotations,
    camera_centers,
    check_transforms,
    chordal_mean_rotation,
    invert_transforms,
    make_transforms,
    project_to_rotation,
    random_rotations,
    relative_transforms,
    rotation_angle,
    rotation_angle_deg,
    rotation_exp,
    rotation_log,
    skew,
    translations_from_centers,
)

QUARTER_TURN_Z = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def test_exp_of_known_rotation_vectors():
    np.testing.assert_allclose(rotation_exp(np.array([0.0, 0.0, np.pi / 2])), QUARTER_TURN_Z,
                               atol=1e-15)
    np.testing.assert_allclose(rotation_exp(np.zeros(3)), np.eye(3), atol=0)
    half_turn_x = rotation_exp(np.array([np.pi, 0.0, 0.0]))
    np.testing.assert_allclose(half_turn_x, np.diag([1.0, -1.0, -1.0]), atol=1e-15)
    # below SMALL_ANGLE the first-order form: I + [w]_x
    tiny = np.array([1e-13, -2e-13, 3e-13])
    np.testing.assert_allclose(rotation_exp(tiny), np.eye(3) + skew(tiny), atol=1e-26)


def test_log_inverts_exp_near_zero_mid_range_and_near_a_half_turn():
    rng = np.random.default_rng(0)
    axes = rng.normal(size=(6, 3))
    axes /= np.linalg.norm(axes, axis=-1, keepdims=True)
    angles = np.array([1e-9, 1e-4, 0.5, 2.0, np.pi - 1e-4, np.pi - 1e-2])
    rotvecs = axes * angles[:, None]
    np.testing.assert_allclose(rotation_log(rotation_exp(rotvecs)), rotvecs, atol=1e-9)
    np.testing.assert_allclose(rotation_angle(rotation_exp(rotvecs)), angles, rtol=1e-7)
    np.testing.assert_allclose(rotation_log(QUARTER_TURN_Z), [0.0, 0.0, np.pi / 2], atol=1e-15)


def test_numpy_and_torch_exp_agree_and_torch_is_differentiable():
    rotvecs = np.random.default_rng(1).normal(size=(5, 3))
    tensor = torch.from_numpy(rotvecs).requires_grad_(True)
    result = rotation_exp(tensor)
    np.testing.assert_allclose(result.detach().numpy(), rotation_exp(rotvecs), atol=1e-14)
    result.sum().backward()
    assert torch.isfinite(tensor.grad).all()
    np.testing.assert_allclose(skew(torch.tensor([1.0, 2.0, 3.0])).numpy(),
                               [[0, -3, 2], [3, 0, -1], [-2, 1, 0]])


def test_axis_angle_rotations_turn_by_exactly_the_angle():
    rng = np.random.default_rng(2)
    axes = rng.normal(size=(10, 3)) * 7.0  # any length
    rotations = axis_angle_rotations(axes, np.full(10, np.radians(5.0)))
    np.testing.assert_allclose(np.degrees(rotation_angle(rotations)), 5.0, atol=1e-9)
    np.testing.assert_allclose(axis_angle_rotations(np.array([0, 0, 2.0]), np.pi / 2),
                               QUARTER_TURN_Z, atol=1e-15)


def test_geodesic_angle_in_degrees():
    np.testing.assert_allclose(rotation_angle_deg(QUARTER_TURN_Z, np.eye(3)), 90.0)
    np.testing.assert_allclose(rotation_angle_deg(np.diag([1.0, -1.0, -1.0]), np.eye(3)), 180.0)
    rotations = random_rotations(np.random.default_rng(3), 4)
    np.testing.assert_allclose(rotation_angle_deg(rotations, rotations), 0.0, atol=1e-5)


def test_random_rotations_are_seeded_proper_rotations():
    np.testing.assert_array_equal(random_rotations(np.random.default_rng(1), 4),
                                  random_rotations(np.random.default_rng(1), 4))
    rotations = random_rotations(np.random.default_rng(2), 100)
    np.testing.assert_allclose(rotations @ np.swapaxes(rotations, 1, 2),
                               np.tile(np.eye(3), (100, 1, 1)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0)


def test_projection_to_the_nearest_rotation():
    np.testing.assert_allclose(project_to_rotation(2.0 * QUARTER_TURN_Z), QUARTER_TURN_Z,
                               atol=1e-15)
    reflected = QUARTER_TURN_Z @ np.diag([1.0, 1.0, -1.0])  # det -1: nearest proper rotation
    projected = project_to_rotation(reflected)
    np.testing.assert_allclose(np.linalg.det(projected), 1.0)
    mean = chordal_mean_rotation(np.stack([np.eye(3), QUARTER_TURN_Z]))
    np.testing.assert_allclose(rotation_angle_deg(mean, np.eye(3)), 45.0, atol=1e-9)


def test_transforms_compose_invert_and_give_centres():
    a_T_b = make_transforms(QUARTER_TURN_Z, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(invert_transforms(a_T_b) @ a_T_b, np.eye(4), atol=1e-15)
    np.testing.assert_allclose(invert_transforms(a_T_b)[:3, 3], [-2.0, 1.0, -3.0], atol=1e-15)
    np.testing.assert_allclose(relative_transforms(a_T_b, a_T_b), np.eye(4), atol=1e-15)
    # camera_T_world = a_T_b: the camera sits at C = -R^T t
    np.testing.assert_allclose(camera_centers(QUARTER_TURN_Z, [1.0, 2.0, 3.0]),
                               [-2.0, 1.0, -3.0], atol=1e-15)
    np.testing.assert_allclose(translations_from_centers(QUARTER_TURN_Z, [-2.0, 1.0, -3.0]),
                               [1.0, 2.0, 3.0], atol=1e-15)


@pytest.mark.parametrize('transforms, message', [
    (np.eye(3), 'shape'),
    (np.full((4, 4), np.nan), 'non-finite'),
    (np.diag([1.0, 1.0, 1.0, 2.0]), 'last row'),
    (np.diag([1.0, 1.0, -1.0, 1.0]), 'proper rotation'),
])
def test_bad_transforms_are_refused(transforms, message):
    with pytest.raises(PoseError, match=message):
        check_transforms(transforms)
