"""Epipolar geometry of calibrated camera pairs, batched and differentiable (torch).

For cameras i, j with world-to-camera ``(R_i, t_i)``, ``(R_j, t_j)`` (``x_cam = R x_w + t``,
OpenCV axes) and pixel intrinsics ``K_i``, ``K_j``:

* relative pose ``j_T_i``: ``R_ji = R_j R_i^T``, ``t_ji = t_j - R_ji t_i``;
* fundamental matrix ``F = K_j^-T [t_ji]_x R_ji K_i^-1`` (``x_j^T F x_i = 0`` for homogeneous
  pixels of one scene point);
* Sampson residual ``r = x_j^T F x_i / sqrt((F x_i)_1^2 + (F x_i)_2^2 + (F^T x_j)_1^2 +
  (F^T x_j)_2^2)``, in pixels; the Sampson error is ``|r|``, the first-order geometric
  distance of the correspondence from the epipolar constraint. It does not depend on the scale
  of F, so neither on the length of ``t_ji``: the residuals build F from the unit baseline
  direction, which keeps F well scaled when a translation shrinks.

This is the package's one Sampson residual: the bundle adjustment, the guided ray sampler and
the pose-diffusion guidance all use it.
"""

import torch

from raydiff_ros.geometry.transforms import skew

SAMPSON_EPS = 1e-12
"""Added under the square root of the Sampson denominator (F = 0 when t_ji = 0)."""
BASELINE_EPS = 1e-12
"""Added to baseline lengths when the relative translation is normalised."""


def fundamental_matrices(R_i: torch.Tensor, t_i: torch.Tensor, K_i: torch.Tensor,
                         R_j: torch.Tensor, t_j: torch.Tensor, K_j: torch.Tensor
                         ) -> torch.Tensor:
    """F (..., 3, 3) with ``x_j^T F x_i = 0``; rotations (..., 3, 3), translations (..., 3),
    pixel intrinsics (..., 3, 3), all broadcast together."""
    R_ji = R_j @ R_i.transpose(-1, -2)
    t_ji = t_j - (R_ji @ t_i[..., None])[..., 0]
    essential = skew(t_ji) @ R_ji
    return torch.linalg.inv(K_j).transpose(-1, -2) @ essential @ torch.linalg.inv(K_i)


def pair_fundamental_matrices(R: torch.Tensor, t: torch.Tensor,
                              K_inv: torch.Tensor) -> torch.Tensor:
    """F of every ordered camera pair, (..., N, N, 3, 3), from the unit baseline direction.

    Entry [a, b] is the F of cameras i = a, j = b (``x_b^T F x_a = 0``); the diagonal is 0.
    R (..., N, 3, 3) and t (..., N, 3) world-to-camera, K_inv (..., N, 3, 3) inverse pixel
    intrinsics.
    """
    R_ab = R[..., None, :, :, :] @ R[..., :, None, :, :].transpose(-1, -2)  # R_b R_a^T
    t_ab = t[..., None, :, :] - (R_ab @ t[..., :, None, :, None])[..., 0]
    direction = t_ab / (torch.linalg.norm(t_ab, dim=-1, keepdim=True) + BASELINE_EPS)
    return (K_inv[..., None, :, :, :].transpose(-1, -2) @ skew(direction) @ R_ab
            @ K_inv[..., :, None, :, :])


def homogeneous_sampson_residuals(R: torch.Tensor, t: torch.Tensor, K_inv: torch.Tensor,
                                  pair_i: torch.Tensor, pair_j: torch.Tensor,
                                  x_i: torch.Tensor, x_j: torch.Tensor) -> torch.Tensor:
    """:func:`sampson_residuals` without its checks, from inverse intrinsics K_inv
    (..., N, 3, 3) and homogeneous pixels x_i, x_j (M, 3): for callers that evaluate the same
    correspondences many times (bundle adjustment, guidance). F is built once per ordered
    camera pair (N * N) and gathered per correspondence."""
    F = pair_fundamental_matrices(R, t, K_inv)[..., pair_i, pair_j, :, :]
    F_x_i = (F @ x_i[..., None])[..., 0]
    Ft_x_j = (F.transpose(-1, -2) @ x_j[..., None])[..., 0]
    numerator = (x_j * F_x_i).sum(-1)
    denominator = F_x_i[..., :2].square().sum(-1) + Ft_x_j[..., :2].square().sum(-1)
    return numerator / torch.sqrt(denominator + SAMPSON_EPS)


def sampson_residuals(R: torch.Tensor, t: torch.Tensor, K: torch.Tensor, pair_i: torch.Tensor,
                      pair_j: torch.Tensor, points_i: torch.Tensor,
                      points_j: torch.Tensor) -> torch.Tensor:
    """Signed Sampson residuals (pixels) of correspondences under batches of cameras.

    Args:
        R: (..., N, 3, 3) world-to-camera rotations of the N cameras.
        t: (..., N, 3) world-to-camera translations.
        K: (N, 3, 3) or (..., N, 3, 3) pixel intrinsics.
        pair_i, pair_j: (M,) long indices of the two cameras of each correspondence.
        points_i, points_j: (M, 2) pixel coordinates (u, v) in cameras pair_i and pair_j.

    Returns:
        (..., M) residuals; ``abs`` of them is the Sampson error.
    """
    if R.shape[-2:] != (3, 3) or t.shape[-1] != 3 or R.shape[:-2] != t.shape[:-1]:
        raise ValueError(f'need R (..., N, 3, 3) and t (..., N, 3), got {tuple(R.shape)}, '
                         f'{tuple(t.shape)}')
    if points_i.shape != points_j.shape or points_i.shape[-1] != 2 or points_i.ndim != 2:
        raise ValueError(f'points must be two (M, 2) arrays, got {tuple(points_i.shape)}, '
                         f'{tuple(points_j.shape)}')
    if pair_i.shape != (points_i.shape[0],) or pair_j.shape != pair_i.shape:
        raise ValueError('pair_i and pair_j must be (M,) with M the number of points')
    K_inv = torch.linalg.inv(K.to(R)).expand(R.shape)
    ones = torch.ones_like(points_i[:, :1])
    x_i = torch.cat([points_i, ones], dim=-1).to(R)
    x_j = torch.cat([points_j, ones], dim=-1).to(R)
    return homogeneous_sampson_residuals(R, t, K_inv, pair_i, pair_j, x_i, x_j)


def sampson_errors(R: torch.Tensor, t: torch.Tensor, K: torch.Tensor, pair_i: torch.Tensor,
                   pair_j: torch.Tensor, points_i: torch.Tensor,
                   points_j: torch.Tensor) -> torch.Tensor:
    """Sampson errors (..., M) >= 0 in pixels; arguments as :func:`sampson_residuals`."""
    return sampson_residuals(R, t, K, pair_i, pair_j, points_i, points_j).abs()
