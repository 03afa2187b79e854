"""Two-view geometry from matches with known intrinsics: relative pose and triangulation.

For a pair (i, j): ratio-test matches of the SIFT features, K-normalised; a robust essential
matrix (:func:`~raydiff_ros.features.matching.essential_matrix`); ``cv2.recoverPose`` gives
``cam_j_T_cam_i`` (rotation, unit translation) and the triangulated inliers in camera i at unit
baseline. A pair fails with fewer than ``min_matches`` ratio-test matches or fewer than
``min_inliers`` cheirality inliers.
"""

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from raydiff_ros.features.matching import SiftMatchingConfig, essential_matrix, normalized_points
from raydiff_ros.features.sift import Features, ratio_matches

MAX_TRIANGULATION_DEPTH = 50.0
"""``recoverPose`` distance threshold: points farther than this many baselines are dropped."""


@dataclass
class PairGeometry:
    """Relative pose ``cam_j_T_cam_i`` of a pair and its triangulated inliers.

    Attributes:
        i, j: image indices (i < j).
        R: (3, 3) rotation, ``x_j = R x_i + t``.
        t: (3,) unit translation.
        inliers: cheirality inliers.
        keypoints_i, keypoints_j: (M,) keypoint indices of the triangulated inliers.
        depths_i, depths_j: (M,) their depths in camera i / j at unit baseline.
    """

    i: int
    j: int
    R: np.ndarray
    t: np.ndarray
    inliers: int
    keypoints_i: np.ndarray
    keypoints_j: np.ndarray
    depths_i: np.ndarray
    depths_j: np.ndarray

    def oriented(self, parent: int) -> tuple:
        """(R_cp, t_cp, parent keypoints, parent depths, child keypoints, child depths) for
        moving from ``parent`` (i or j) to the other camera."""
        if parent == self.i:
            return (self.R, self.t, self.keypoints_i, self.depths_i, self.keypoints_j,
                    self.depths_j)
        R_back = self.R.T
        return (R_back, -R_back @ self.t, self.keypoints_j, self.depths_j, self.keypoints_i,
                self.depths_i)


def pair_geometry(i: int, j: int, features: list[Features], K: np.ndarray,
                  config: SiftMatchingConfig) -> Optional[PairGeometry]:
    """Relative pose of images i and j from their SIFT features, or None when the pair fails.

    Args:
        i, j: image indices (i < j).
        features: SIFT features of every image of the set.
        K: (N, 3, 3) intrinsics of the images the features were extracted from (pixels).
        config: ratio test and RANSAC settings.
    """
    matches = ratio_matches(features[i], features[j], config.ratio)
    if len(matches) < config.min_matches:
        return None
    points_i = normalized_points(features[i].points[matches[:, 0]], K[i])
    points_j = normalized_points(features[j].points[matches[:, 1]], K[j])
    focal = np.mean([K[i][0, 0], K[i][1, 1], K[j][0, 0], K[j][1, 1]])
    fit = essential_matrix(points_i, points_j, focal, config)
    if fit is None:
        return None
    E, inliers = fit
    count, R, t, pose_mask, points = cv2.recoverPose(
        E, points_i, points_j, cameraMatrix=np.eye(3), distanceThresh=MAX_TRIANGULATION_DEPTH,
        mask=inliers.astype(np.uint8)[:, None])
    good = pose_mask.ravel() > 0
    if count < config.min_inliers or good.sum() < config.min_inliers:
        return None
    camera_i = (points[:3] / points[3:]).T[good]
    camera_j = camera_i @ R.T + t.ravel()
    valid = np.isfinite(camera_i).all(axis=1) & (camera_i[:, 2] > 0) & (camera_j[:, 2] > 0)
    return PairGeometry(i=i, j=j, R=R, t=t.ravel() / np.linalg.norm(t), inliers=int(count),
                        keypoints_i=matches[good, 0][valid], keypoints_j=matches[good, 1][valid],
                        depths_i=camera_i[valid, 2], depths_j=camera_j[valid, 2])
