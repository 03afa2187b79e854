"""Camera encodings (6D and quaternion rotations) and Sampson residuals against known values."""

import math

import numpy as np
import pytest
import torch

from raydiff_ros.geometry.camera_encoding import (
    camera_encoding_dim,
    decode_cameras,
    encode_cameras,
    matrix_to_quaternion,
    matrix_to_rotation_6d,
    quaternion_to_matrix,
    rotation_6d_to_matrix,
)
from raydiff_ros.geometry.epipolar import sampson_errors, sampson_residuals
from raydiff_ros.geometry.transforms import axis_angle_rotations, random_rotations


def rotations(num: int, seed: int = 0) -> torch.Tensor:
    R = random_rotations(np.random.default_rng(seed), num)
    # include the hard cases of quaternion extraction: identity and 180 deg turns
    special = np.stack([np.eye(3), np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]),
                        np.diag([-1.0, -1.0, 1.0])])
    return torch.from_numpy(np.concatenate([R, special]))


def test_quaternion_matches_a_known_rotation_and_round_trips():
    # 90 deg about z: (x, y, z, w) = (0, 0, sin 45, cos 45)
    R = torch.from_numpy(axis_angle_rotations(np.array([[0.0, 0.0, 1.0]]), math.pi / 2))
    q = matrix_to_quaternion(R)
    assert torch.allclose(q, torch.tensor([[0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5)]],
                                          dtype=torch.float64), atol=1e-12)
    R_all = rotations(50)
    q_all = matrix_to_quaternion(R_all)
    assert torch.all(q_all[:, 3] >= 0)
    assert torch.allclose(q_all.norm(dim=-1), torch.ones(len(R_all), dtype=torch.float64))
    assert torch.allclose(quaternion_to_matrix(q_all), R_all, atol=1e-10)
    # a scaled quaternion is the same rotation
    assert torch.allclose(quaternion_to_matrix(3.0 * q_all), R_all, atol=1e-10)


def test_6d_round_trip_and_gram_schmidt_gives_rotations():
    R_all = rotations(50, seed=1)
    d6 = matrix_to_rotation_6d(R_all)
    assert d6.shape == (54, 6)
    assert torch.allclose(rotation_6d_to_matrix(d6), R_all, atol=1e-10)
    noisy = d6 + 0.3 * torch.randn(d6.shape, generator=torch.Generator().manual_seed(0),
                                   dtype=torch.float64)
    R = rotation_6d_to_matrix(noisy)
    eye = torch.eye(3, dtype=torch.float64).expand_as(R)
    assert torch.allclose(R @ R.transpose(-1, -2), eye, atol=1e-10)
    assert torch.allclose(torch.linalg.det(R), torch.ones(len(R), dtype=torch.float64))


@pytest.mark.parametrize('parameterisation', ['6d', 'quaternion'])
def test_camera_encoding_round_trip(parameterisation):
    R = rotations(6, seed=2).reshape(2, 5, 3, 3)
    t = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    focal = torch.rand(2, 5, generator=torch.Generator().manual_seed(2),
                       dtype=torch.float64) + 0.5
    encoding = encode_cameras(R, t, focal, parameterisation)
    assert encoding.shape == (2, 5, camera_encoding_dim(parameterisation))
    R_back, t_back, focal_back = decode_cameras(encoding, parameterisation)
    assert torch.allclose(R_back, R, atol=1e-10)
    assert torch.allclose(t_back, t)
    assert torch.allclose(focal_back, focal)
    with pytest.raises(ValueError, match='rotation parameterisation'):
        encode_cameras(R, t, focal, 'euler')


def two_view_problem(num_points: int = 40, seed: int = 0):
    """Cameras (R (2, 3, 3), t (2, 3)), K (2, 3, 3) and exact pixel correspondences."""
    rng = np.random.default_rng(seed)
    R = np.stack([np.eye(3), axis_angle_rotations(np.array([[0.1, 1.0, 0.05]]), 0.3)[0]])
    centers = np.array([[0.0, 0.0, 0.0], [1.0, 0.1, 0.2]])
    t = -np.einsum('nij,nj->ni', R, centers)
    K = np.array([[[500.0, 0, 320], [0, 480.0, 240], [0, 0, 1]],
                  [[450.0, 0, 300], [0, 460.0, 250], [0, 0, 1]]])
    points = rng.uniform([-2, -2, 5], [2, 2, 9], size=(num_points, 3))
    pixels = []
    for n in range(2):
        camera = points @ R[n].T + t[n]
        image = camera @ K[n].T
        pixels.append(image[:, :2] / image[:, 2:])
    as_t = torch.from_numpy
    return as_t(R), as_t(t), as_t(K), as_t(pixels[0]), as_t(pixels[1])


def test_sampson_error_of_a_known_configuration():
    # identity rotations, baseline along x, K = I: epipolar lines are horizontal and the
    # Sampson error of a vertical offset d is d / sqrt(2)
    R = torch.eye(3, dtype=torch.float64).expand(2, 3, 3)
    t = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 0.0, 0.0]], dtype=torch.float64)
    K = torch.eye(3, dtype=torch.float64).expand(2, 3, 3)
    pair = torch.tensor([0, 0]), torch.tensor([1, 1])
    points_i = torch.tensor([[0.2, 0.1], [0.0, 0.5]], dtype=torch.float64)
    points_j = torch.tensor([[-0.3, 0.4], [0.7, 0.5]], dtype=torch.float64)
    errors = sampson_errors(R, t, K, *pair, points_i, points_j)
    assert torch.allclose(errors, torch.tensor([0.3 / math.sqrt(2), 0.0],
                                               dtype=torch.float64), atol=1e-12)


def test_sampson_error_is_zero_for_true_cameras_and_positive_for_perturbed_ones():
    R, t, K, x_i, x_j = two_view_problem()
    pair_i = torch.zeros(len(x_i), dtype=torch.long)
    pair_j = torch.ones(len(x_i), dtype=torch.long)
    true_errors = sampson_errors(R, t, K, pair_i, pair_j, x_i, x_j)
    assert true_errors.max() < 1e-8
    turn = torch.from_numpy(axis_angle_rotations(np.array([[0.0, 0.0, 1.0]]), 0.02)[0])
    R_rotated = torch.stack([R[0], turn @ R[1]])
    t_shifted = t + torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.1, 0.0]], dtype=torch.float64)
    batch_R = torch.stack([R, R_rotated, R])
    batch_t = torch.stack([t, t, t_shifted])
    errors = sampson_errors(batch_R, batch_t, K, pair_i, pair_j, x_i, x_j)
    assert errors.shape == (3, len(x_i))
    assert errors[0].max() < 1e-8
    assert errors[1].mean() > 1.0 and errors[2].mean() > 1.0
    # the scale of the baseline does not matter, and the sign flips with the point order
    scaled = sampson_residuals(R, 4.0 * t, K, pair_i, pair_j, x_i, x_j)
    assert scaled.abs().max() < 1e-8
    swapped = sampson_residuals(R_rotated, t, K, pair_j, pair_i, x_j, x_i)
    assert torch.allclose(swapped.abs(), errors[1], rtol=1e-6)
