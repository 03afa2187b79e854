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

Features and matching come from :mod:`.sift`, :mod:`.matching` and :mod:`.two_view`. The
result's ``pose_sources`` name each camera's origin: ``'reference'`` (camera 0),
``'essential_matrix'`` (placed through the spanning tree) or ``'fallback'``.

``uncertainty`` of a placed camera is ``1 / sqrt(inliers)`` of the pair that placed it (0 for
camera 0). Counters of the last call and of all calls are in ``last_stats`` and ``stats``.
"""

from dataclasses import dataclass, fields
import time

import cv2
import numpy as np

from raydiff_ros.estimation.contract import (
    POSE_SOURCE_REFERENCE,
    EstimationResult,
    ViewSetInput,
)
from raydiff_ros.estimation.registry import EstimatorOptions, typed_options
from raydiff_ros.features.matching import SiftMatchingConfig, guess_intrinsics
from raydiff_ros.features.sift import extract_features
from raydiff_ros.features.two_view import pair_geometry
from raydiff_ros.geometry.averaging import maximum_spanning_tree

FALLBACK_UNCERTAINTY = 1.0
POSE_SOURCE_PAIR = 'essential_matrix'
POSE_SOURCE_FALLBACK = 'fallback'


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


class ClassicalSiftEstimator:
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

    def estimate(self, view_set: ViewSetInput) -> EstimationResult:
        """Cameras of the view set's images, with its K or guessed intrinsics."""
        start = time.perf_counter()
        cfg = self.config
        images = view_set.image_list()
        num = len(images)
        stats = ClassicalStats()
        K = view_set.K
        if K is None:
            K = np.stack([guess_intrinsics(im.shape[1], im.shape[0]) for im in images])
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
        R, t, uncertainty, sources = self._chain(num, pairs, stats)
        self.last_stats = stats
        self.stats.add(stats)
        return EstimationResult.from_world_to_camera(
            R, t, K=K, intrinsics_estimated=view_set.K is None, uncertainty=uncertainty,
            pose_sources=sources, timings_s={'total': time.perf_counter() - start})

    def _chain(self, num: int, pairs: dict, stats: ClassicalStats):
        R = np.repeat(np.eye(3)[None], num, axis=0)
        t = np.zeros((num, 3))
        uncertainty = np.full(num, FALLBACK_UNCERTAINTY)
        uncertainty[0] = 0.0
        sources = [POSE_SOURCE_REFERENCE] + [POSE_SOURCE_FALLBACK] * (num - 1)
        placed = {0}
        known_depths: dict[int, dict[int, float]] = {k: {} for k in range(num)}
        scales = []
        for parent, child in maximum_spanning_tree(
                num, {pair: geometry.inliers for pair, geometry in pairs.items()}):
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
            sources[child] = POSE_SOURCE_PAIR
            placed.add(child)
        missing = [k for k in range(num) if k not in placed]
        if missing:
            stats.fallback_cameras += len(missing)
            centers = np.array([-R[k].T @ t[k] for k in sorted(placed)])
            centroid = centers.mean(axis=0)
            for k in missing:
                t[k] = -centroid
        return R, t, uncertainty, tuple(sources)

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


def make_classical_sift(options: EstimatorOptions) -> ClassicalSiftEstimator:
    """Registry factory of ``classical_sift`` (``options.seed`` seeds RANSAC; extra:
    :class:`ClassicalConfig` fields)."""
    config = typed_options(ClassicalConfig, options.extra, 'classical_sift')
    return ClassicalSiftEstimator(seed=options.seed, **config)
