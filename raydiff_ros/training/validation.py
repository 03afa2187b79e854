"""Held-out validation during training.

Two measurements on the first ``num_sets`` held-out view sets, with their first ``num_views``
views:

* **validation loss**: the training objective on un-jittered crops at fixed timesteps
  (``loss_timesteps``; regression: t = T - 1) with fixed noise, so that values are comparable
  across iterations;
* **pose metrics through the real inference path**: the images go through
  :class:`raydiff_ros.inference.RayDiffusionEngine` (crop, backbone, sampler, rays to cameras by
  Procrustes with the true intrinsics); the estimate is scored against the true cameras with
  :func:`raydiff_ros.geometry.metrics.evaluate_view_set` (scene scale: all cameras of the set)
  and pooled (rotation accuracy at 15 deg, camera-centre accuracy at 0.1). Object scenes pass
  their object boxes (the demo's crop), rig scenes none (full-image crop).

The ``pose_diffusion`` variant (:func:`validate_pose`) measures the same: its x0 loss on the
camera encodings, and the poses of :class:`raydiff_ros.inference.pose_diffusion.
PoseDiffusionEstimator` (no guidance: training measures the network alone).

A view set whose estimate fails (degenerate rays of an untrained model) counts as a failure and
is scored with all cameras at identity rotation on a line (a fixed, poor guess).
"""

from dataclasses import dataclass

import numpy as np
import torch

from raydiff_ros.data.training_samples import SyntheticViewSetDataset
from raydiff_ros.estimation.contract import EstimationError, PoseEstimator, ViewSetInput
from raydiff_ros.geometry.metrics import (
    evaluate_view_set,
    pool_view_set_errors,
    sequence_scene_scale,
)
from raydiff_ros.geometry.transforms import camera_centers
from raydiff_ros.inference.engine import EngineConfig, RayDiffusionEngine
from raydiff_ros.inference.pose_diffusion import PoseDiffusionEstimator, PoseDiffusionOptions
from raydiff_ros.model.network import RayDiffusionModel
from raydiff_ros.model.pose_diffusion import (
    PoseDiffusionModel,
    camera_targets,
    pose_diffusion_loss,
)
from raydiff_ros.training.objectives import ray_loss

VALIDATION_SEED = 12345
"""Seed of the validation crops, noise and samplers (fixed for comparable curves)."""


@dataclass(frozen=True)
class ValidationResult:
    """Validation numbers (see the module docstring)."""

    loss: float
    rotation_accuracy: float
    camera_center_accuracy: float
    mean_rotation_error_deg: float
    failures: int
    num_sets: int

    def to_record(self) -> dict:
        return {'val_loss': self.loss, 'val_rotation_accuracy': self.rotation_accuracy,
                'val_camera_center_accuracy': self.camera_center_accuracy,
                'val_mean_rotation_error_deg': self.mean_rotation_error_deg,
                'val_failures': self.failures}


def _fallback_pose(num_views: int) -> tuple[np.ndarray, np.ndarray]:
    R = np.repeat(np.eye(3)[None], num_views, axis=0)
    centers = np.zeros((num_views, 3))
    centers[:, 0] = np.arange(num_views)
    return R, -centers


@torch.no_grad()
def validation_loss(model: RayDiffusionModel, dataset: SyntheticViewSetDataset, num_sets: int,
                    num_views: int, timesteps: tuple, regression: bool,
                    device: torch.device) -> float:
    """Mean x0 MSE over the first ``num_sets`` sets at the given timesteps, fixed noise."""
    losses = []
    generator = torch.Generator().manual_seed(VALIDATION_SEED)
    steps = (model.schedule.max_timesteps - 1,) if regression else tuple(timesteps)
    for index in range(num_sets):
        sample = dataset[(index, VALIDATION_SEED)]
        images = sample['images'][None, :num_views].to(device)
        rays = sample['rays'][None, :num_views].to(device)
        ndc = sample['ndc'][None, :num_views].to(device)
        features = model.features(images)
        for step in steps:
            noise = torch.randn(rays.shape, generator=generator).to(device)
            t = torch.full((1,), int(step), dtype=torch.long, device=device)
            losses.append(float(ray_loss(model, features, rays, ndc, t, noise, regression)))
    return float(np.mean(losses)) if losses else float('nan')


def validate(model: RayDiffusionModel, dataset: SyntheticViewSetDataset, num_sets: int,
             num_views: int, num_samples: int, loss_timesteps: tuple, regression: bool,
             device: torch.device) -> ValidationResult:
    """Run both validation measurements; the model is left in eval mode."""
    model.eval()
    num_sets = min(num_sets, len(dataset))
    loss = validation_loss(model, dataset, num_sets, num_views, loss_timesteps, regression,
                           device)
    estimator = RayDiffusionEngine(model, EngineConfig(
        device=str(device), dtype='float32', num_samples=num_samples, seed=VALIDATION_SEED,
        max_views=max(num_views, 2), warmup=False))
    return score_estimator(estimator, dataset, num_sets, num_views, loss)


@torch.no_grad()
def pose_validation_loss(model: PoseDiffusionModel, dataset: SyntheticViewSetDataset,
                         num_sets: int, num_views: int, timesteps: tuple,
                         device: torch.device) -> float:
    """Mean x0 MSE of the camera encodings over the first ``num_sets`` sets, fixed noise."""
    losses = []
    generator = torch.Generator().manual_seed(VALIDATION_SEED)
    for index in range(num_sets):
        sample = dataset[(index, VALIDATION_SEED)]
        features = model.features(sample['images'][None, :num_views].to(device))
        targets = camera_targets(*(sample[key][None, :num_views].to(device) for key in
                                   ('R', 't', 'K', 'crop_params', 'image_size')),
                                 model.rotation)
        for step in timesteps:
            noise = torch.randn(targets.shape, generator=generator).to(device)
            t = torch.full((1,), int(step), dtype=torch.long, device=device)
            losses.append(float(pose_diffusion_loss(model, features, targets, t, noise)))
    return float(np.mean(losses)) if losses else float('nan')


def validate_pose(model: PoseDiffusionModel, dataset: SyntheticViewSetDataset, num_sets: int,
                  num_views: int, num_samples: int, loss_timesteps: tuple,
                  device: torch.device) -> ValidationResult:
    """Both validation measurements of a pose-diffusion model (unguided sampling)."""
    model.eval()
    num_sets = min(num_sets, len(dataset))
    loss = pose_validation_loss(model, dataset, num_sets, num_views, loss_timesteps, device)
    estimator = PoseDiffusionEstimator(
        model, PoseDiffusionOptions(guidance=False, max_views=max(num_views, 2)),
        device=str(device), dtype='float32', num_samples=num_samples, seed=VALIDATION_SEED)
    return score_estimator(estimator, dataset, num_sets, num_views, loss)


def score_estimator(estimator: PoseEstimator, dataset: SyntheticViewSetDataset, num_sets: int,
                    num_views: int, loss: float) -> ValidationResult:
    """Pose metrics of ``estimator`` on the first ``num_sets`` sets (``loss`` is reported)."""
    errors, failures = [], 0
    for index in range(num_sets):
        record = dataset.view_set(index)
        views = list(range(min(num_views, record.num_views)))
        images = [record.images[v] for v in views]
        bboxes = record.bboxes[views] if record.scene_type == 'object' else None
        try:
            result = estimator.estimate(ViewSetInput(images, K=record.K[views], boxes=bboxes))
            R, t = result.world_to_camera()
        except EstimationError:
            failures += 1
            R, t = _fallback_pose(len(views))
        scale = sequence_scene_scale(camera_centers(record.R, record.t))
        errors.append(evaluate_view_set(R, t, record.R[views], record.t[views], scale))
    if not errors:
        return ValidationResult(loss, float('nan'), float('nan'), float('nan'), 0, 0)
    pooled = pool_view_set_errors(errors)
    return ValidationResult(loss=loss, rotation_accuracy=pooled.rotation_accuracy,
                            camera_center_accuracy=pooled.camera_center_accuracy,
                            mean_rotation_error_deg=pooled.mean_rotation_error_deg,
                            failures=failures, num_sets=num_sets)
