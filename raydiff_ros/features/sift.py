"""SIFT keypoints and Lowe's ratio-test matches (OpenCV).

``extract_features`` detects at most ``max_features`` SIFT keypoints on the grey image,
downscaled first so that its longer side is at most ``max_side`` (the factor is returned so
that callers can map keypoints back to the original pixels); ``ratio_matches`` is brute-force
L2 2-nearest-neighbour matching with Lowe's ratio test.
"""

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

KNN_NEIGHBOURS = 2


@dataclass
class Features:
    """SIFT keypoints (M, 2) in pixels and descriptors (M, 128) of one image."""

    points: np.ndarray
    descriptors: Optional[np.ndarray]


def extract_features(image: np.ndarray, sift, max_side: int) -> tuple[Features, float]:
    """SIFT features of an (H, W, 3) uint8 RGB image, and the downscale factor applied."""
    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    factor = min(1.0, max_side / max(grey.shape))
    if factor < 1.0:
        grey = cv2.resize(grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    keypoints, descriptors = sift.detectAndCompute(grey, None)
    points = np.array([kp.pt for kp in keypoints], dtype=np.float64).reshape(-1, 2)
    return Features(points=points, descriptors=descriptors), factor


def ratio_matches(a: Features, b: Features, ratio: float) -> np.ndarray:
    """(M, 2) index pairs (into a, into b) passing Lowe's ratio test."""
    if (a.descriptors is None or b.descriptors is None or len(a.points) < KNN_NEIGHBOURS
            or len(b.points) < KNN_NEIGHBOURS):
        return np.zeros((0, 2), dtype=np.int64)
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    pairs = [(m.queryIdx, m.trainIdx)
             for m, n in (p for p in matcher.knnMatch(a.descriptors, b.descriptors,
                                                      k=KNN_NEIGHBOURS) if len(p) == 2)
             if m.distance < ratio * n.distance]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)
