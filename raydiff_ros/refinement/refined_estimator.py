"""An estimator wrapper that refines another estimator's cameras with bundle adjustment.

``RefinedEstimator(base)`` calls ``base.estimate(view_set)``, matches the view set's images
(``match_view_set``) and refines the predicted poses (``refine_poses``) with the intrinsics
handed to estimators (``view_set.K``), else the base prediction's K, else the same guess as
``classical_sift``. It never reads the ground truth itself. The wall time of matching plus
refinement of the last view set is ``last_refinement_seconds``; its report is ``last_report``.
"""

import time
from typing import Optional

import numpy as np

from raydiff_ros.evaluation.classical import guess_intrinsics
from raydiff_ros.evaluation.estimators import PoseEstimate, PoseEstimator
from raydiff_ros.evaluation.view_set import ViewSet
from raydiff_ros.refinement.bundle import BundleConfig, BundleReport, refine_poses
from raydiff_ros.refinement.matching import MatchingConfig, match_view_set


class RefinedEstimator:
    """``base`` followed by Sampson-error bundle adjustment.

    Args:
        base: any pose estimator.
        matching: feature matching settings.
        bundle: solver settings.
    """

    def __init__(self, base: PoseEstimator, matching: Optional[MatchingConfig] = None,
                 bundle: Optional[BundleConfig] = None) -> None:
        self.base = base
        self.name = f'{base.name}+bundle'
        self.matching = matching or MatchingConfig()
        self.bundle = bundle or BundleConfig()
        self.last_report: Optional[BundleReport] = None
        self.last_refinement_seconds: Optional[float] = None

    def estimate(self, view_set: ViewSet) -> PoseEstimate:
        """Evaluation harness interface."""
        return self._refined(self.base.estimate(view_set), view_set.images(), view_set.K)

    def estimate_from_images(self, images: list[np.ndarray],
                             K: Optional[np.ndarray]) -> PoseEstimate:
        """Node interface (N (H, W, 3) uint8 RGB images, optional (N, 3, 3) K)."""
        return self._refined(self.base.estimate_from_images(images, K), images, K)

    def _refined(self, prediction: PoseEstimate, images: list[np.ndarray],
                 K: Optional[np.ndarray]) -> PoseEstimate:
        start = time.perf_counter()
        if K is None:
            K = prediction.K if prediction.K is not None else np.stack(
                [guess_intrinsics(im.shape[1], im.shape[0]) for im in images])
        matches = match_view_set(images, K, self.matching)
        R, t, self.last_report = refine_poses(prediction.R, prediction.t, K, matches,
                                              self.bundle)
        self.last_refinement_seconds = time.perf_counter() - start
        return PoseEstimate(R=R, t=t, K=prediction.K, uncertainty=prediction.uncertainty)
