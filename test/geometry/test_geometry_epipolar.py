"""The package's one Sampson residual (geometry.epipolar): known values, scale invariance, the
batched form against the per-correspondence fundamental matrices."""

import numpy as np
import torch

from raydiff_ros.geometry.epipolar import (
    fundamental_matrices,
    homogeneous_sampson_residuals,
    sampson_residuals,
)
from raydiff_ros.geometry.transforms import random_rotations


def test_sampson_residual_of_a_hand_computed_case():
    # Camera 1 is camera 0 moved along x: epipolar lines are horizontal, the Sampson error is
    # the vertical disparity over sqrt(2) (half the squared disparity goes to each image).
    R = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)
    t = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 0.0, 0.0]], dtype=torch.float64)
    K_inv = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)
    x_i = torch.tensor([[0.0, 0.0, 1.0], [0.3, -0.2, 1.0]], dtype=torch.float64)
    x_j = torch.tensor([[0.5, 0.1, 1.0], [-0.4, -0.2, 1.0]], dtype=torch.float64)
    pair = torch.tensor([0, 0]), torch.tensor([1, 1])
    residuals = homogeneous_sampson_residuals(R, t, K_inv, *pair, x_i, x_j)
    assert abs(abs(float(residuals[0])) - 0.1 / np.sqrt(2)) < 1e-9
    assert abs(float(residuals[1])) < 1e-12


def test_sampson_residual_does_not_depend_on_the_baseline_length():
    R = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)
    K_inv = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1)
    x_i = torch.tensor([[0.1, 0.2, 1.0]], dtype=torch.float64)
    x_j = torch.tensor([[0.3, 0.5, 1.0]], dtype=torch.float64)
    pair = torch.tensor([0]), torch.tensor([1])
    values = [float(homogeneous_sampson_residuals(
        R, torch.tensor([[0.0, 0, 0], [s, 0.2 * s, 0]], dtype=torch.float64), K_inv, *pair,
        x_i, x_j)) for s in (1e-3, 1.0, 50.0)]
    assert np.allclose(values, values[1]) and abs(values[1]) > 0.01


def test_batched_residuals_equal_the_per_correspondence_fundamental_matrices():
    rng = np.random.default_rng(5)
    batch, num, count = 3, 4, 50
    R = torch.from_numpy(random_rotations(rng, batch * num).reshape(batch, num, 3, 3))
    t = torch.from_numpy(rng.normal(size=(batch, num, 3)))
    K = torch.tensor([[500.0, 0, 320], [0, 480.0, 240], [0, 0, 1]], dtype=torch.float64)
    K = K.repeat(num, 1, 1)
    K[1, 0, 0] = 650.0
    pair_i = torch.from_numpy(rng.integers(0, num, count))
    pair_j = (pair_i + torch.from_numpy(rng.integers(1, num, count))) % num
    points_i = torch.from_numpy(rng.uniform(0, 640, (count, 2)))
    points_j = torch.from_numpy(rng.uniform(0, 480, (count, 2)))
    residuals = sampson_residuals(R, t, K, pair_i, pair_j, points_i, points_j)
    assert residuals.shape == (batch, count)
    F = fundamental_matrices(R[:, pair_i], t[:, pair_i], K[pair_i], R[:, pair_j], t[:, pair_j],
                             K[pair_j])
    x_i = torch.cat([points_i, torch.ones(count, 1, dtype=torch.float64)], dim=1)
    x_j = torch.cat([points_j, torch.ones(count, 1, dtype=torch.float64)], dim=1)
    F_x_i = (F @ x_i[..., None])[..., 0]
    Ft_x_j = (F.transpose(-1, -2) @ x_j[..., None])[..., 0]
    expected = (x_j * F_x_i).sum(-1) / torch.sqrt(F_x_i[..., :2].square().sum(-1)
                                                  + Ft_x_j[..., :2].square().sum(-1))
    # SAMPSON_EPS (1e-12 under the root) is about 1e-6 of these denominators (F of pixels)
    torch.testing.assert_close(residuals, expected, rtol=1e-5, atol=1e-9)
