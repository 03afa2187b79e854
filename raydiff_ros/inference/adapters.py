"""The engine behind the estimator interfaces of the evaluation harness and the node pipeline.

``RayDiffusionEstimator`` wraps a :class:`PoseEstimator`:

* ``estimate_from_images(images, K) -> PoseEstimate`` (evaluation harness): the point estimate
  (medoid sample) as world-to-camera R, t with the world = camera 0's optical frame;
* ``estimate_samples_from_images(images, K) -> PoseSamples`` (node pipeline): every diffusion
  sample, so the pipeline computes covariances from their spread;
* ``estimate_result(images, K, sampler)``: the engine's full result, optionally with another
  sampler (the Sampson-guided one of ``raydiff_ros.refinement``); :func:`pose_estimate` and
  :func:`pose_samples` turn such a result into the two interfaces' outputs.
"""

from pathlib import Path
from typing import Optional

import numpy as np

from raydiff_ros.evaluation.estimators import ImagePoseEstimator, PoseEstimate
from raydiff_ros.inference.engine import (
    EngineConfig,
    PoseEstimationResult,
    PoseEstimator,
    RaySampler,
)
from raydiff_ros.inference.models import resolve_model_dir
from raydiff_ros.pipeline.poses import PoseSamples


def _world_to_camera(reference_T_camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    camera_T_reference = np.linalg.inv(reference_T_camera)
    return camera_T_reference[..., :3, :3], camera_T_reference[..., :3, 3]


def pose_estimate(result: PoseEstimationResult) -> PoseEstimate:
    """The point estimate of an engine result as world-to-camera R (N, 3, 3), t (N, 3), world =
    camera 0's optical frame; K only when the model estimated it."""
    R, t = _world_to_camera(result.reference_T_camera)
    return PoseEstimate(R=R, t=t, K=result.K if result.intrinsics_estimated else None,
                        uncertainty=result.rotation_spread_deg)


def pose_samples(result: PoseEstimationResult) -> PoseSamples:
    """Every sample of an engine result as world-to-camera R (S, N, 3, 3), t (S, N, 3)."""
    R, t = _world_to_camera(result.samples_reference_T_camera)
    return PoseSamples(R=R, t=t, K=result.K if result.intrinsics_estimated else None)


class RayDiffusionEstimator(ImagePoseEstimator):
    """Ray-diffusion estimates for the evaluation harness and the node."""

    name = 'ray_diffusion'

    def __init__(self, engine: PoseEstimator) -> None:
        self.engine = engine

    def estimate_result(self, images: list[np.ndarray], K: Optional[np.ndarray],
                        sampler: Optional[RaySampler] = None,
                        bboxes: Optional[np.ndarray] = None) -> PoseEstimationResult:
        """The engine's result for N (H, W, 3) uint8 images and optional (N, 3, 3) K, drawn
        with ``sampler`` (default: the model's own); optional (N, 4) object boxes to crop to
        (default: the whole images)."""
        return self.engine.estimate(list(images), K, bboxes=bboxes, sampler=sampler)

    def estimate(self, view_set) -> PoseEstimate:
        """Harness entry: crops to the view set's object boxes when it has them."""
        return pose_estimate(self.estimate_result(view_set.images(), view_set.K,
                                                  bboxes=view_set.object_boxes))

    def estimate_from_images(self, images, K: Optional[np.ndarray]) -> PoseEstimate:
        return pose_estimate(self.estimate_result(images, K))

    def estimate_samples_from_images(self, images, K: Optional[np.ndarray]) -> PoseSamples:
        return pose_samples(self.estimate_result(images, K))


def make_ray_diffusion_estimator(seed: int = 0, model_dir: Optional[Path] = None,
                                 samples: int = 1, device: str = 'auto',
                                 dtype: str = 'auto') -> RayDiffusionEstimator:
    """Load the model (``model_dir`` or the default one) into an engine and wrap it."""
    config = EngineConfig(device=device, dtype=dtype, num_samples=samples, seed=seed)
    return RayDiffusionEstimator(PoseEstimator(resolve_model_dir(model_dir), config))
