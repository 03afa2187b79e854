"""Closed-form batched 3x3 linear algebra.

Tiny batched LAPACK calls (``torch.linalg.det``/``solve`` on (..., 3, 3)) carry a large fixed
cost per call on a busy multi-threaded CPU; these closed forms are exact, cheap and run on any
device.
"""

import torch


def det3(matrix: torch.Tensor) -> torch.Tensor:
    """Determinant of (..., 3, 3) matrices by the triple product ``r0 . (r1 x r2)``; (...)."""
    rows = matrix.unbind(dim=-2)
    return (rows[0] * torch.linalg.cross(rows[1], rows[2], dim=-1)).sum(dim=-1)


def solve_symmetric3(
    eigenvalues: torch.Tensor, eigenvectors: torch.Tensor, right_side: torch.Tensor
) -> torch.Tensor:
    """Solve ``A x = b`` for symmetric positive-definite ``A = V diag(w) V^T``.

    Args:
        eigenvalues: (..., 3) ``w`` (all positive).
        eigenvectors: (..., 3, 3) ``V`` (columns are eigenvectors).
        right_side: (..., 3) ``b``.

    Returns:
        (..., 3) ``x = V diag(1/w) V^T b``.
    """
    coefficients = (eigenvectors.transpose(-1, -2) @ right_side[..., None])[..., 0]
    return (eigenvectors @ (coefficients / eigenvalues)[..., None])[..., 0]
