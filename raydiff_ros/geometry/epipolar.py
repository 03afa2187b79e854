"""Epipolar geometry of calibrated camera pairs, batched and differentiable (torch).

For cameras i, j with world-to-camera ``(R_i, t_i)``, ``(R_j, t_j)`` (``x_cam = R x_w + t``,
OpenCV axes) and pixel intrinsics ``K_i``, ``K_j``:

* relative pose ``j_T_i``: ``R_ji = R_j R_i^T``, ``t_ji = t_j - R_ji t_i``;
* fundamental matrix ``F = K_j^-T [t_ji]_x R_ji K_i^-1`` (``x_j^T F x_i = 0`` for homogeneous
  pixels of one scene point);
* Sampson residual ``r = x_j^T F x_i / sqrt((F x_i)_1^2 + (F x_i)_2^2 + (F^T x_j)_1^2 +
  (F^T x_j)_2^2)``, in pixels; the Sampson error is ``|r|``, the first-order geometric
  distance of the correspondence from the epipolar constraint. It does not depend on the scale
  of F, so neither on the length of ``t_ji``.
"""

import torch

SAMPSON_EPS = 1e-12
"""Added under the square root of the Sampson denominator (F = 0 when t_ji = 0)."""


def skew_matrix(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrices ``[v]_x``."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(
        v.shape[:-1] + (3, 3))


def fundamental_matrices(R_i: torch.Tensor, t_i: torch.Tensor, K_i: torch.Tensor,
                         R_j: torch.Tensor, t_j: torch.Tensor, K_j: torch.Tensor
                         ) -> torch.Tensor:
    """F (..., 3, 3) with ``x_j^T F x_i = 0``; rotations (..., 3, 3), translations (..., 3),
    pixel intrinsics (..., 3, 3), all broadcast together."""
    R_ji = R_j @ R_i.transpose(-1, -2)
    t_ji = t_j - (R_ji @ t_i[..., None])[..., 0]
    essential = skew_matrix(t_ji) @ R_ji
    return torch.linalg.inv(K_j).transpose(-1, -2) @ essential @ torch.linalg.inv(K_i)


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
    K = K.to(R).expand(R.shape)
    # F of every ordered camera pair (a, b), (..., N, N, 3, 3), then one per correspondence:
    # N * N products and 2 N inverses instead of M of each.
    F_ab = fundamental_matrices(R[..., :, None, :, :], t[..., :, None, :], K[..., :, None, :, :],
                                R[..., None, :, :, :], t[..., None, :, :], K[..., None, :, :, :])
    F = F_ab[..., pair_i, pair_j, :, :]
    ones = torch.ones_like(points_i[:, :1])
    x_i = torch.cat([points_i, ones], dim=-1).to(R)
    x_j = torch.cat([points_j, ones], dim=-1).to(R)
    F_x_i = (F @ x_i[..., None])[..., 0]
    Ft_x_j = (F.transpose(-1, -2) @ x_j[..., None])[..., 0]
    numerator = (x_j * F_x_i).sum(-1)
    denominator = F_x_i[..., :2].square().sum(-1) + Ft_x_j[..., :2].square().sum(-1)
    return numerator / torch.sqrt(denominator + SAMPSON_EPS)


def sampson_errors(R: torch.Tensor, t: torch.Tensor, K: torch.Tensor, pair_i: torch.Tensor,
                   pair_j: torch.Tensor, points_i: torch.Tensor,
                   points_j: torch.Tensor) -> torch.Tensor:
    """Sampson errors (..., M) >= 0 in pixels; arguments as :func:`sampson_residuals`."""
    return sampson_residuals(R, t, K, pair_i, pair_j, points_i, points_j).abs()
