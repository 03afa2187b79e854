"""Classical baseline estimator ``classical_sift``: SIFT matches, essential matrices, chaining.

For N images:

1. **Intrinsics.** The given K, or when unknown a guess ``f = UNKNOWN_FOCAL_FACTOR * max(W, H)``
   (about a 45 deg horizontal field of view) with the principal point at the image centre.
2. **Features.** OpenCV SIFT (at most ``max_features`` per image) on the grey image.
3. **Pairs.** For every pair (i, j), i < j: brute-force L2 2-nearest-neighbour matching with
   Lowe's ratio test; pixel coordinates normalised with K^-1; ``cv2.findEssentialMat`` (MAGSAC++
   by default, threshold ``ransac_threshold_px`` pixels over the mean focal length);
   ``cv2.recoverPose`` gives ``cam_j_T_cam_i`` (rotation, unit translation) and the
   triangulated inliers in camera i at unit baseline. A pair fails with fewer than
   ``min_matches`` ratio-test matches or fewer than ``min_inliers`` cheirality inliers.
4. **Spanning tree.** A maximum spanning tree of the successful pairs (weight: inlier count)
   grown from camera 0 (Prim). Camera 0 is the world frame (R = I, t = 0).
5. **Chaining and scale.** Walking the tree from camera 0, each child gets
   ``R_c = R_cp R_p`` and ``t_c = R_cp t_p + s t_cp``. The scale ``s`` makes the pair's
   triangulation consistent with what is already known: the median over keypoints of the
   parent seen in both the parent's earlier pairs and this one of (known depth / unit-baseline
   depth) in the parent camera. The first edge from camera 0 fixes the unit (s = 1); with
   fewer than ``min_scale_points`` shared keypoints the mean of the scales used so far is
   taken (a *scale fallback*, counted).
6. **Failures.** Cameras that no successful pair connects to camera 0 get the identity rotation
   and the centroid of the placed centres (a *camera fallback*, counted, uncertainty 1).
   Nothing raises for lack of matches.

``uncertainty`` of a placed camera is ``1 / sqrt(inliers)`` of the pair that placed it (0 for
camera 0). Counters of the last call and of all calls are in ``last_stats`` and ``stats``.
"""

from dataclasses import dataclass, fields
import heapq
from typing import Optional

import cv2
import numpy as np

from raydiff_ros.evaluation.estimators import (
    ImagePoseEstimator,
    PoseEstimate,
)

UNKNOWN_FOCAL_FACTOR = 1.2
"""Focal length guess in units of the longer image side when K is unknown."""
FALLBACK_UNCERTAINTY = 1.0
MAX_TRIANGULATION_DEPTH = 50.0
"""``recoverPose`` distance threshold: points farther than this many baselines are dropped."""
ESSENTIAL_METHODS = {'magsac': cv2.USAC_MAGSAC, 'ransac': cv2.RANSAC}
KNN_NEIGHBOURS = 2


@dataclass(frozen=True)
class SiftMatchingConfig:
    """SIFT features, ratio test and essential-matrix RANSAC (shared with the refinement)."""

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
class ClassicalConfig(SiftMatchingConfig):
    """Settings of :class:`ClassicalSiftEstimator` (defaults tuned on temple_ring)."""

    min_scale_points: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.min_scale_points < 1:
            raise ValueError('counts and thresholds must be positive')


@dataclass
class ClassicalStats:
    """Counters: pairs tried and failed, cameras placed by the fallback, scale fallbacks."""

    pairs: int = 0
    failed_pairs: int = 0
    fallback_cameras: int = 0
    scale_fallbacks: int = 0

    def add(self, other: 'ClassicalStats') -> None:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))


@dataclass
class Features:
    """SIFT keypoints (M, 2) in pixels and descriptors (M, 128) of one image."""

    points: np.ndarray
    descriptors: Optional[np.ndarray]


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


def guess_intrinsics(width: int, height: int) -> np.ndarray:
    """K (3, 3) for unknown intrinsics: ``f = UNKNOWN_FOCAL_FACTOR * max(W, H)``, centred."""
    focal = UNKNOWN_FOCAL_FACTOR * max(width, height)
    return np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])


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


def normalized_points(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixel points (M, 2) -> normalised image coordinates (M, 2) ``K^-1 [u, v, 1]``."""
    homogeneous = np.concatenate([points, np.ones((len(points), 1))], axis=1)
    normalized = homogeneous @ np.linalg.inv(K).T
    return normalized[:, :2] / normalized[:, 2:]


def pair_geometry(i: int, j: int, features: list, K: np.ndarray,
                  config: ClassicalConfig) -> Optional[PairGeometry]:
    """Relative pose of images i and j, or None when the pair fails (see module docstring)."""
    matches = ratio_matches(features[i], features[j], config.ratio)
    if len(matches) < config.min_matches:
        return None
    points_i = normalized_points(features[i].points[matches[:, 0]], K[i])
    points_j = normalized_points(features[j].points[matches[:, 1]], K[j])
    focal = np.mean([K[i][0, 0], K[i][1, 1], K[j][0, 0], K[j][1, 1]])
    identity = np.eye(3)
    E, mask = cv2.findEssentialMat(points_i, points_j, identity,
                                   method=ESSENTIAL_METHODS[config.method],
                                   prob=config.ransac_confidence,
                                   threshold=config.ransac_threshold_px / focal)
    if E is None or E.shape[0] < 3 or mask is None:
        return None
    count, R, t, pose_mask, points = cv2.recoverPose(
        E[:3], points_i, points_j, cameraMatrix=identity,
        distanceThresh=MAX_TRIANGULATION_DEPTH, mask=mask.copy())
    good = pose_mask.ravel() > 0
    if count < config.min_inliers or good.sum() < config.min_inliers:
        return None
    camera_i = (points[:3] / points[3:]).T[good]
    camera_j = camera_i @ R.T + t.ravel()
    valid = np.isfinite(camera_i).all(axis=1) & (camera_i[:, 2] > 0) & (camera_j[:, 2] > 0)
    return PairGeometry(i=i, j=j, R=R, t=t.ravel() / np.linalg.norm(t), inliers=int(count),
                        keypoints_i=matches[good, 0][valid], keypoints_j=matches[good, 1][valid],
                        depths_i=camera_i[valid, 2], depths_j=camera_j[valid, 2])


def maximum_spanning_tree(num_views: int, pairs: dict, root: int = 0) -> list[tuple[int, int]]:
    """Edges (parent, child) of a maximum spanning tree (weight: inliers) grown from ``root``
    (Prim), in the order the children are added. Unreachable cameras are left out."""
    neighbours: dict[int, list] = {k: [] for k in range(num_views)}
    for (i, j), geometry in pairs.items():
        neighbours[i].append((geometry.inliers, i, j))
        neighbours[j].append((geometry.inliers, j, i))
    placed, edges = {root}, []
    heap = [(-w, a, b) for w, a, b in neighbours[root]]
    heapq.heapify(heap)
    while heap:
        _, parent, child = heapq.heappop(heap)
        if child in placed:
            continue
        placed.add(child)
        edges.append((parent, child))
        for weight, a, b in neighbours[child]:
            if b not in placed:
                heapq.heappush(heap, (-weight, a, b))
    return edges


class ClassicalSiftEstimator(ImagePoseEstimator):
    """The classical baseline (see the module docstring).

    Args:
        seed: seed of OpenCV's RANSAC generator (reproducible estimates).
        **options: fields of :class:`ClassicalConfig`.
    """

    name = 'classical_sift'

    def __init__(self, seed: int = 0, **options) -> None:
        self.seed = int(seed)
        self.config = ClassicalConfig(**options)
        self.stats = ClassicalStats()
        self.last_stats = ClassicalStats()

    def estimate_from_images(self, images: list[np.ndarray],
                             K: Optional[np.ndarray]) -> PoseEstimate:
        cfg = self.config
        num = len(images)
        if num < 1:
            raise ValueError('classical_sift needs at least one image')
        stats = ClassicalStats()
        if K is None:
            K = np.stack([guess_intrinsics(im.shape[1], im.shape[0]) for im in images])
        K = np.asarray(K, dtype=np.float64)
        cv2.setRNGSeed(self.seed)
        sift = cv2.SIFT_create(nfeatures=cfg.max_features)
        features, K_scaled = [], []
        for image, intrinsics in zip(images, K, strict=True):
            feature, factor = extract_features(image, sift, cfg.max_image_side)
            features.append(feature)
            K_scaled.append(np.diag([factor, factor, 1.0]) @ intrinsics)
        pairs = {}
        for i in range(num):
            for j in range(i + 1, num):
                stats.pairs += 1
                geometry = pair_geometry(i, j, features, K_scaled, cfg)
                if geometry is None:
                    stats.failed_pairs += 1
                else:
                    pairs[(i, j)] = geometry
        R, t, uncertainty = self._chain(num, pairs, stats)
        self.last_stats = stats
        self.stats.add(stats)
        return PoseEstimate(R=R, t=t, K=K, uncertainty=uncertainty)

    def _chain(self, num: int, pairs: dict, stats: ClassicalStats):
        R = np.repeat(np.eye(3)[None], num, axis=0)
        t = np.zeros((num, 3))
        uncertainty = np.full(num, FALLBACK_UNCERTAINTY)
        uncertainty[0] = 0.0
        placed = {0}
        known_depths: dict[int, dict[int, float]] = {k: {} for k in range(num)}
        scales = []
        for parent, child in maximum_spanning_tree(num, pairs):
            geometry = pairs[(min(parent, child), max(parent, child))]
            R_cp, t_cp, kp_parent, depth_parent, kp_child, depth_child = geometry.oriented(parent)
            scale = self._scale(known_depths[parent], kp_parent, depth_parent, scales, stats)
            scales.append(scale)
            R[child] = R_cp @ R[parent]
            t[child] = R_cp @ t[parent] + scale * t_cp
            for key, depth in zip(kp_parent, depth_parent, strict=True):
                known_depths[parent].setdefault(int(key), float(scale * depth))
            for key, depth in zip(kp_child, depth_child, strict=True):
                known_depths[child].setdefault(int(key), float(scale * depth))
            uncertainty[child] = 1.0 / np.sqrt(geometry.inliers)
            placed.add(child)
        missing = [k for k in range(num) if k not in placed]
        if missing:
            stats.fallback_cameras += len(missing)
            centers = np.array([-R[k].T @ t[k] for k in sorted(placed)])
            centroid = centers.mean(axis=0)
            for k in missing:
                t[k] = -centroid
        return R, t, uncertainty

    def _scale(self, known: dict, keypoints: np.ndarray, depths: np.ndarray, scales: list,
               stats: ClassicalStats) -> float:
        if not scales:
            return 1.0
        ratios = [known[int(key)] / depth for key, depth in zip(keypoints, depths, strict=True)
                  if int(key) in known]
        if len(ratios) >= self.config.min_scale_points:
            return float(np.median(ratios))
        stats.scale_fallbacks += 1
        return float(np.mean(scales))
