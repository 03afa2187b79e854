"""Weighted robust (L1) means of rotations and of 3-D points, by Weiszfeld iterations.

The geodesic L1 mean of rotations ``R_i`` minimises ``sum_i w_i angle(R^T R_i)`` (Hartley et
al., "Rotation averaging", IJCV 2013, section 6.3); the geometric median of points ``p_i``
minimises ``sum_i w_i ||p - p_i||``. Both are the maximum-likelihood estimates under Laplacian
noise, so a few gross outliers move them much less than the arithmetic (L2) means.
"""

from typing import Optional

import numpy as np

from raydiff_ros.geometry.transforms import chordal_mean_rotation, rotation_exp, rotation_log

WEISZFELD_ITERATIONS = 30
"""Most Weiszfeld steps per mean."""

WEISZFELD_TOLERANCE = 1e-9
"""Stop when a step moves the estimate less than this (radians, or point units)."""

RESIDUAL_FLOOR = 1e-9
"""Residuals below this are clamped, so that a sample at the estimate has a finite weight."""


def _check_weights(weights: np.ndarray, count: int) -> np.ndarray:
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (count,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError(f'weights must be {count} finite non-negative values')
    if not np.any(weights > 0):
        raise ValueError('at least one weight must be positive')
    return weights


def l1_mean_rotation(
    rotations: np.ndarray, weights: np.ndarray, initial: Optional[np.ndarray] = None
) -> np.ndarray:
    """Weighted geodesic L1 mean (3, 3) of rotations (M, 3, 3), weights (M,) >= 0.

    Starts at ``initial`` (3, 3) when given, else at the chordal L2 mean of the positively
    weighted rotations, then runs Weiszfeld
    steps ``R <- R exp(sum_i w_i v_i / |v_i| / sum_i w_i / |v_i|)`` with ``v_i = log(R^T R_i)``.
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    weights = _check_weights(weights, rotations.shape[0])
    used = weights > 0
    rotations, weights = rotations[used], weights[used]
    mean = chordal_mean_rotation(rotations) if initial is None else initial
    for _ in range(WEISZFELD_ITERATIONS):
        residuals = rotation_log(mean.T @ rotations)
        norms = np.maximum(np.linalg.norm(residuals, axis=-1), RESIDUAL_FLOOR)
        step_weights = weights / norms
        step = (step_weights[:, None] * residuals).sum(axis=0) / step_weights.sum()
        mean = mean @ rotation_exp(step)
        if np.linalg.norm(step) < WEISZFELD_TOLERANCE:
            break
    return mean


def geometric_median(points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted geometric median (3,) of points (M, 3), weights (M,) >= 0 (Weiszfeld)."""
    points = np.asarray(points, dtype=np.float64)
    weights = _check_weights(weights, points.shape[0])
    used = weights > 0
    points, weights = points[used], weights[used]
    median = np.average(points, axis=0, weights=weights)
    for _ in range(WEISZFELD_ITERATIONS):
        norms = np.maximum(np.linalg.norm(points - median, axis=-1), RESIDUAL_FLOOR)
        step_weights = weights / norms
        updated = (step_weights[:, None] * points).sum(axis=0) / step_weights.sum()
        moved = np.linalg.norm(updated - median)
        median = updated
        if moved < WEISZFELD_TOLERANCE:
            break
    return median
