"""Two-view geometry of matched points with known intrinsics (poselib's LO-RANSAC).

``relative_pose`` fits ``cam_j_T_cam_i`` (rotation and unit translation, ``x_j = R x_i + t``)
to putative correspondences with poselib's 5-point essential-matrix LO-RANSAC followed by its
bundle refinement on the inliers, with a Sampson-error threshold of ``max_epipolar_error_px``
pixels. A pair is accepted with at least ``min_inliers`` inliers making at least
``min_inlier_ratio`` of the matches; its ``confidence`` in [0, 1) grows with both.

Unknown intrinsics are the caller's to supply (the prior's estimate or a guess,
:func:`~raydiff_ros.features.matching.guess_intrinsics`).
"""

from dataclasses import dataclass
import math
from typing import Optional

import numpy as np

from raydiff_ros.estimation.contract import EstimatorError

MIN_POINTS = 5
"""Fewest correspondences of a relative-pose fit (the 5-point solver's sample)."""


@dataclass(frozen=True)
class TwoViewConfig:
    """Robust relative-pose fitting and acceptance.

    Attributes:
        max_epipolar_error_px: RANSAC inlier threshold (Sampson error, pixels).
        min_inliers: fewest inliers of an accepted pair.
        min_inlier_ratio: smallest inlier share of an accepted pair.
        inlier_scale: inlier count at which the confidence reaches ``1 - 1/e`` of its
            inlier-ratio cap.
        max_iterations: RANSAC iteration cap.
        success_probability: RANSAC stops by this many iterations at most: enough to draw,
            with this probability, one all-inlier 5-point sample when the inliers make
            ``min_inlier_ratio`` of the matches (:meth:`iterations`). A pair with a smaller
            inlier share is not accepted anyway, so more iterations would only spend time on
            pairs that fail (at 0.3 and 0.999: 2840 iterations).
        seed: RANSAC seed.
    """

    max_epipolar_error_px: float = 1.0
    min_inliers: int = 40
    min_inlier_ratio: float = 0.3
    inlier_scale: float = 100.0
    max_iterations: int = 10000
    success_probability: float = 0.999
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_epipolar_error_px <= 0 or self.inlier_scale <= 0:
            raise EstimatorError('max_epipolar_error_px and inlier_scale must be positive')
        if self.min_inliers < 5 or not 0 <= self.min_inlier_ratio < 1:
            raise EstimatorError('min_inliers must be >= 5 and min_inlier_ratio in [0, 1)')
        if self.max_iterations < 1:
            raise EstimatorError('max_iterations must be >= 1')
        if not 0 < self.success_probability < 1:
            raise EstimatorError('success_probability must lie in (0, 1)')

    def iterations(self) -> int:
        """RANSAC iterations at most: ``max_iterations``, or fewer when ``min_inlier_ratio``
        bounds what an accepted pair needs (see ``success_probability``)."""
        all_inliers = self.min_inlier_ratio ** MIN_POINTS
        if all_inliers <= 0:
            return self.max_iterations
        needed = math.log(1 - self.success_probability) / math.log1p(-all_inliers)
        return max(1, min(self.max_iterations, math.ceil(needed)))


@dataclass(frozen=True, eq=False)
class RelativePose:
    """A verified pair: ``cam_j_T_cam_i`` and its inlier correspondences.

    Attributes:
        i, j: image indices, i < j.
        R: (3, 3) rotation ``cam_j_R_cam_i``.
        t: (3,) unit translation (``x_j = R x_i + t``).
        num_matches: putative correspondences.
        num_inliers: RANSAC inliers.
        points_i, points_j: (num_inliers, 2) inlier pixels in images i and j.
    """

    i: int
    j: int
    R: np.ndarray
    t: np.ndarray
    num_matches: int
    num_inliers: int
    points_i: np.ndarray
    points_j: np.ndarray

    @property
    def inlier_ratio(self) -> float:
        return self.num_inliers / max(self.num_matches, 1)

    def accepted(self, config: TwoViewConfig) -> bool:
        """Enough inliers, and a large enough share of the matches."""
        return (self.num_inliers >= config.min_inliers
                and self.num_inliers >= config.min_inlier_ratio * self.num_matches)

    def confidence(self, config: TwoViewConfig) -> float:
        """In [0, 1): inlier ratio times ``1 - exp(-inliers / inlier_scale)``."""
        return self.inlier_ratio * (1.0 - np.exp(-self.num_inliers / config.inlier_scale))


def _camera(K: np.ndarray, size: tuple[int, int]) -> dict:
    return {'model': 'PINHOLE', 'width': int(size[0]), 'height': int(size[1]),
            'params': [float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])]}


def relative_pose(i: int, j: int, points_i: np.ndarray, points_j: np.ndarray,
                  K_i: np.ndarray, K_j: np.ndarray, size_i: tuple[int, int],
                  size_j: tuple[int, int],
                  config: Optional[TwoViewConfig] = None) -> Optional[RelativePose]:
    """``cam_j_T_cam_i`` from putative matches, or None when the pair is not verified
    (:func:`fit_relative_pose` followed by :meth:`RelativePose.accepted`)."""
    config = config or TwoViewConfig()
    pose = fit_relative_pose(i, j, points_i, points_j, K_i, K_j, size_i, size_j, config)
    return pose if pose is not None and pose.accepted(config) else None


def fit_relative_pose(i: int, j: int, points_i: np.ndarray, points_j: np.ndarray,
                      K_i: np.ndarray, K_j: np.ndarray, size_i: tuple[int, int],
                      size_j: tuple[int, int],
                      config: Optional[TwoViewConfig] = None) -> Optional[RelativePose]:
    """The best ``cam_j_T_cam_i`` of putative matches, accepted or not; None with fewer than
    :data:`MIN_POINTS` matches or a degenerate fit.

    Args:
        i, j: image indices (i < j).
        points_i, points_j: (M, 2) putative correspondences in pixels.
        K_i, K_j: (3, 3) intrinsics in pixels.
        size_i, size_j: (width, height) of the two images.
        config: RANSAC threshold, iterations and seed (default ``TwoViewConfig()``).

    Raises:
        EstimatorError: poselib is not installed.
    """
    config = config or TwoViewConfig()
    points_i = np.asarray(points_i, dtype=np.float64).reshape(-1, 2)
    points_j = np.asarray(points_j, dtype=np.float64).reshape(-1, 2)
    if len(points_i) != len(points_j):
        raise ValueError(f'{len(points_i)} points in image {i} but {len(points_j)} in {j}')
    if len(points_i) < MIN_POINTS:
        return None
    try:
        import poselib
    except ImportError as error:
        raise EstimatorError(f'two-view geometry needs poselib (requirements.txt): {error}'
                             ) from error
    iterations = config.iterations()
    ransac = {'max_epipolar_error': config.max_epipolar_error_px, 'seed': config.seed,
              'max_iterations': iterations, 'min_iterations': min(100, iterations)}
    pose, info = poselib.estimate_relative_pose(points_i, points_j, _camera(K_i, size_i),
                                                _camera(K_j, size_j), ransac, {})
    inliers = np.asarray(info['inliers'], dtype=bool)
    translation = np.asarray(pose.t, dtype=np.float64)
    norm = np.linalg.norm(translation)
    if inliers.sum() < MIN_POINTS or not np.isfinite(norm) or norm < 1e-12:
        return None
    return RelativePose(i=i, j=j, R=np.asarray(pose.R, dtype=np.float64), t=translation / norm,
                        num_matches=len(points_i), num_inliers=int(inliers.sum()),
                        points_i=points_i[inliers], points_j=points_j[inliers])
