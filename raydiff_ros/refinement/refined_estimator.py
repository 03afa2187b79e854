"""An estimator wrapper that refines another estimator's cameras with bundle adjustment.

``RefinedEstimator(base)`` runs ``base``, matches the view set's images (``match_view_set``)
and refines the predicted poses (``refine_poses``, which works on world-to-camera poses with
view 0 as the world) with the view set's intrinsics, else the base result's K, else the same
guess as ``classical_sift``. It never reads the ground truth. The result is the refined point
estimate (one sample), with the base result's intrinsics and uncertainty; its ``timings_s``
gains ``refinement`` (matching plus the solver); the solver's report is ``last_report``.
"""

import time
from typing import Optional

import numpy as np

from raydiff_ros.estimation.contract import EstimationResult, PoseEstimator, ViewSetInput
from raydiff_ros.features.matching import MatchingConfig, guess_intrinsics, match_view_set
from raydiff_ros.refinement.bundle import BundleConfig, BundleReport, refine_poses


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

    def estimate(self, view_set: ViewSetInput) -> EstimationResult:
        prediction = self.base.estimate(view_set)
        start = time.perf_counter()
        images = view_set.image_list()
        K = view_set.K
        if K is None:
            K = prediction.K if prediction.K is not None else np.stack(
                [guess_intrinsics(im.shape[1], im.shape[0]) for im in images])
        matches = match_view_set(images, K, self.matching)
        R, t = prediction.world_to_camera()
        R, t, self.last_report = refine_poses(R, t, K, matches, self.bundle)
        timings = dict(prediction.timings_s, refinement=time.perf_counter() - start)
        sources = prediction.pose_sources
        if self.last_report.refined:
            sources = (sources[0],) + tuple(f'{source}+bundle' for source in sources[1:])
        return EstimationResult.from_world_to_camera(
            R, t, K=prediction.K, intrinsics_estimated=prediction.intrinsics_estimated,
            uncertainty=prediction.uncertainty, timings_s=timings, pose_sources=sources)


def with_bundle_adjustment(estimator: PoseEstimator) -> RefinedEstimator:
    """Refinement ``'bundle'`` of the registry (default settings)."""
    return RefinedEstimator(estimator)
