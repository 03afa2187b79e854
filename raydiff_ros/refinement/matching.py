"""Verified feature matches of a view set: SIFT, Lowe's ratio test, essential-matrix RANSAC.

For every pair (i, j), i < j, of N images: SIFT features and ratio-test matches come from
``raydiff_ros.evaluation.classical`` (the same functions as the ``classical_sift`` baseline);
a match is kept when it is an inlier of ``cv2.findEssentialMat`` (MAGSAC++ or RANSAC, threshold
``ransac_threshold_px`` over the mean focal length) on K-normalised points. Pairs with fewer
than ``min_matches`` ratio-test matches or ``min_inliers`` inliers are left out. Returned points
are pixels of the ORIGINAL images (a downscale applied before SIFT is undone).
"""

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from raydiff_ros.evaluation.classical import (
    ESSENTIAL_METHODS,
    SiftMatchingConfig,
    extract_features,
    guess_intrinsics,
    normalized_points,
    ratio_matches,
)

ESSENTIAL_MATRIX_ROWS = 3
"""``findEssentialMat`` may stack several 3x3 solutions; the first one is used."""


class MatchingError(ValueError):
    """Bad images or intrinsics were given to the matcher."""


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
    E, mask = cv2.findEssentialMat(
        normalized_points(pixels_i, K_i), normalized_points(pixels_j, K_j), np.eye(3),
        method=ESSENTIAL_METHODS[config.method], prob=config.ransac_confidence,
        threshold=config.ransac_threshold_px / focal)
    if E is None or E.shape[0] < ESSENTIAL_MATRIX_ROWS or mask is None:
        return None
    inliers = mask.ravel() > 0
    if inliers.sum() < config.min_inliers:
        return None
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
