"""Verified feature matches of a view set: SIFT, Lowe's ratio test, essential-matrix RANSAC.

For every pair (i, j), i < j, of N images: SIFT features and ratio-test matches
(:mod:`.sift`); a match is kept when it is an inlier of ``cv2.findEssentialMat`` (MAGSAC++ or
RANSAC, threshold ``ransac_threshold_px`` over the mean focal length) on K-normalised points
(:func:`essential_matrix`). Pairs with fewer than ``min_matches`` ratio-test matches or
``min_inliers`` inliers are left out. Returned points are pixels of the ORIGINAL images (a
downscale applied before SIFT is undone).

Unknown intrinsics are guessed (:func:`guess_intrinsics`): ``f = UNKNOWN_FOCAL_FACTOR *
max(W, H)`` (about a 45 deg horizontal field of view), principal point at the image centre.
"""

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from raydiff_ros.features.sift import extract_features, ratio_matches

UNKNOWN_FOCAL_FACTOR = 1.2
"""Focal length guess in units of the longer image side when K is unknown."""
ESSENTIAL_METHODS = {'magsac': cv2.USAC_MAGSAC, 'ransac': cv2.RANSAC}
ESSENTIAL_MATRIX_ROWS = 3
"""``findEssentialMat`` may stack several 3x3 solutions; the first one is used."""


class MatchingError(ValueError):
    """Bad images or intrinsics were given to the matcher."""


@dataclass(frozen=True)
class SiftMatchingConfig:
    """SIFT features, ratio test and essential-matrix RANSAC (matching and ``classical_sift``)."""

    max_features: int = 4000
    ratio: float = 0.8
    min_matches: int = 15
    min_inliers: int = 12
    ransac_threshold_px: float = 1.0
    ransac_confidence: float = 0.999
    method: str = 'magsac'
    max_image_side: int = 1280
    """Images with a longer side are downscaled (K scaled accordingly) before SIFT."""

    def __post_init__(self) -> None:
        if self.method not in ESSENTIAL_METHODS:
            raise ValueError(f'method must be one of {sorted(ESSENTIAL_METHODS)}, got '
                             f'{self.method!r}')
        if not 0 < self.ratio < 1 or not 0 < self.ransac_confidence < 1:
            raise ValueError('ratio and ransac_confidence must lie in (0, 1)')
        if min(self.max_features, self.min_matches, self.min_inliers,
               self.max_image_side) < 1 or self.ransac_threshold_px <= 0:
            raise ValueError('counts and thresholds must be positive')


@dataclass(frozen=True)
class MatchingConfig(SiftMatchingConfig):
    """Settings of :func:`match_view_set` (defaults as the classical baseline's)."""

    seed: int = 0
    """Seed of OpenCV's RANSAC generator."""


@dataclass(frozen=True, eq=False)
class PairMatches:
    """Verified correspondences of images i < j.

    Attributes:
        i, j: image indices in the view set.
        points_i: (M, 2) pixel coordinates (u, v) in image i.
        points_j: (M, 2) pixel coordinates of the same scene points in image j.
    """

    i: int
    j: int
    points_i: np.ndarray
    points_j: np.ndarray

    def __post_init__(self) -> None:
        points_i = np.asarray(self.points_i, dtype=np.float64).reshape(-1, 2)
        points_j = np.asarray(self.points_j, dtype=np.float64).reshape(-1, 2)
        if points_i.shape != points_j.shape:
            raise MatchingError(f'pair ({self.i}, {self.j}): {len(points_i)} points in i but '
                                f'{len(points_j)} in j')
        if not 0 <= self.i < self.j:
            raise MatchingError(f'pair indices must satisfy 0 <= i < j, got ({self.i}, {self.j})')
        object.__setattr__(self, 'points_i', points_i)
        object.__setattr__(self, 'points_j', points_j)

    @property
    def num_matches(self) -> int:
        return int(self.points_i.shape[0])


def guess_intrinsics(width: int, height: int) -> np.ndarray:
    """K (3, 3) for unknown intrinsics: ``f = UNKNOWN_FOCAL_FACTOR * max(W, H)``, centred."""
    focal = UNKNOWN_FOCAL_FACTOR * max(width, height)
    return np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])


def normalized_points(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixel points (M, 2) -> normalised image coordinates (M, 2) ``K^-1 [u, v, 1]``."""
    homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    normalized = homogeneous @ np.linalg.inv(K).T
    return normalized[:, :2] / normalized[:, 2:]


def _check_inputs(images: list, K: Optional[np.ndarray]) -> np.ndarray:
    if len(images) < 2:
        raise MatchingError(f'a view set needs at least 2 images, got {len(images)}')
    for index, image in enumerate(images):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise MatchingError(f'image {index} must be (H, W, 3) uint8, got {image.shape} '
                                f'{image.dtype}')
    if K is None:
        return np.stack([guess_intrinsics(im.shape[1], im.shape[0]) for im in images])
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (len(images), 3, 3):
        raise MatchingError(f'K must have shape ({len(images)}, 3, 3), got {K.shape}')
    return K


def essential_matrix(points_i: np.ndarray, points_j: np.ndarray, focal_px: float,
                     config: SiftMatchingConfig) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """Robust essential matrix of putative correspondences, or None when RANSAC fails.

    Args:
        points_i, points_j: (M, 2) K-normalised image coordinates in images i and j.
        focal_px: focal length in pixels that converts ``ransac_threshold_px``.
        config: RANSAC method, confidence and threshold.

    Returns:
        ``E`` (3, 3) with ``x_j^T E x_i = 0`` and the (M,) bool inlier mask.
    """
    E, mask = cv2.findEssentialMat(points_i, points_j, np.eye(3),
                                   method=ESSENTIAL_METHODS[config.method],
                                   prob=config.ransac_confidence,
                                   threshold=config.ransac_threshold_px / focal_px)
    if E is None or E.shape[0] < ESSENTIAL_MATRIX_ROWS or mask is None:
        return None
    return E[:ESSENTIAL_MATRIX_ROWS], mask.ravel() > 0


def verified_pair(i: int, j: int, pixels_i: np.ndarray, pixels_j: np.ndarray,
                  K_i: np.ndarray, K_j: np.ndarray,
                  config: MatchingConfig) -> Optional[PairMatches]:
    """Essential-matrix inliers of putative matches, or None when the pair fails.

    Args:
        i, j: image indices (i < j).
        pixels_i, pixels_j: (M, 2) putative correspondences in pixels.
        K_i, K_j: (3, 3) intrinsics of the two images (pixels).
        config: thresholds.
    """
    if len(pixels_i) < config.min_matches:
        return None
    focal = np.mean([K_i[0, 0], K_i[1, 1], K_j[0, 0], K_j[1, 1]])
    fit = essential_matrix(normalized_points(pixels_i, K_i), normalized_points(pixels_j, K_j),
                           focal, config)
    if fit is None or fit[1].sum() < config.min_inliers:
        return None
    inliers = fit[1]
    return PairMatches(i=i, j=j, points_i=pixels_i[inliers], points_j=pixels_j[inliers])


def match_view_set(images: list[np.ndarray], K: Optional[np.ndarray],
                   config: Optional[MatchingConfig] = None) -> list[PairMatches]:
    """Verified SIFT correspondences of every pair i < j of a view set.

    Args:
        images: N (H, W, 3) uint8 RGB images.
        K: (N, 3, 3) intrinsics in pixels, or None (guessed as in ``classical_sift``).
        config: matching settings (default ``MatchingConfig()``).

    Returns:
        The pairs that passed (in order (0, 1), (0, 2), ...), points in original pixels.
    """
    config = config or MatchingConfig()
    K = _check_inputs(images, K)
    cv2.setRNGSeed(config.seed)
    sift = cv2.SIFT_create(nfeatures=config.max_features)
    features, factors = [], []
    for image in images:
        feature, factor = extract_features(image, sift, config.max_image_side)
        features.append(feature)
        factors.append(factor)
    pairs = []
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            index = ratio_matches(features[i], features[j], config.ratio)
            pixels_i = features[i].points[index[:, 0]] / factors[i]
            pixels_j = features[j].points[index[:, 1]] / factors[j]
            pair = verified_pair(i, j, pixels_i, pixels_j, K[i], K[j], config)
            if pair is not None:
                pairs.append(pair)
    return pairs
