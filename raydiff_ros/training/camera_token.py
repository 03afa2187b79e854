"""The ``camera_token`` variant of ``raydiff-train``: the camera-ray-token model.

Same data, crops, view counts, feature cache, optimiser, checkpoints and curves as the ray
models; only the model, the loss and the validation estimator differ:

* model: :class:`~raydiff_ros.model.camera_token.CameraTokenModel` with the backbone and
  transformer size of ``model.preset`` and ``model.overrides`` of the sections ``backbone``,
  ``denoiser`` and ``camera_token`` (the loss weights); ``init_from`` is not supported;
* loss: :func:`~raydiff_ros.model.camera_token.camera_token_losses` against the batch's
  normalised cameras ``R``, ``t`` (``camera_T_normalized``) and target rays;
* validation: the same loss on held-out sets, and the pose metrics of
  :class:`~raydiff_ros.inference.camera_token.CameraTokenEstimator`.
"""

from typing import Union

import numpy as np
import torch

from raydiff_ros.data.training_samples import SyntheticViewSetDataset
from raydiff_ros.inference.camera_token import CameraTokenEstimator
from raydiff_ros.inference.engine import EngineConfig
from raydiff_ros.model.camera_token import (
    CameraTokenModel,
    CameraTokenModelConfig,
    camera_token_losses,
    camera_token_preset,
)
from raydiff_ros.model.config import ConfigError, RayDiffusionConfig
from raydiff_ros.model.network import RayDiffusionModel
from raydiff_ros.training.config import TrainConfig
from raydiff_ros.training.validation import VALIDATION_SEED, ValidationResult, score_estimator

VARIANT = 'camera_token'


class CameraTokenTrainingError(ValueError):
    """The training configuration does not fit the camera-token variant."""


def camera_token_model_config(config: TrainConfig) -> CameraTokenModelConfig:
    """The model configuration of a ``camera_token`` run (see the module docstring)."""
    try:
        return camera_token_preset(config.model.preset, **config.model.overrides)
    except ConfigError as error:
        raise CameraTokenTrainingError(f'variant camera_token: {error}') from error


def build_model(config: Union[RayDiffusionConfig, CameraTokenModelConfig],
                ) -> Union[RayDiffusionModel, CameraTokenModel]:
    """The model a configuration describes (camera-token or ray model)."""
    if isinstance(config, CameraTokenModelConfig):
        return CameraTokenModel(config)
    return RayDiffusionModel(config)


def batch_loss(model: CameraTokenModel, features: torch.Tensor, batch: dict,
               device: torch.device) -> torch.Tensor:
    """The weighted loss of a batch: features (B, N, F, P, P); the batch's ``ndc``
    (B, N, 2, P, P), ``R`` (B, N, 3, 3), ``t`` (B, N, 3) and ``rays`` (B, N, 6, P, P)."""
    output = model(features, batch['ndc'].to(device))
    return camera_token_losses(output, batch['R'].to(device), batch['t'].to(device),
                               batch['rays'].to(device), model.config.camera_token)['total']


@torch.no_grad()
def validate(model: CameraTokenModel, dataset: SyntheticViewSetDataset, num_sets: int,
             num_views: int, device: torch.device) -> ValidationResult:
    """Loss on un-jittered crops of the first ``num_sets`` held-out sets, and the pose metrics
    of the estimator on them; the model is left in eval mode."""
    model.eval()
    num_sets = min(num_sets, len(dataset))
    losses = []
    for index in range(num_sets):
        sample = dataset[(index, VALIDATION_SEED)]
        batch = {key: sample[key][None, :num_views] for key in ('ndc', 'R', 't', 'rays')}
        features = model.features(sample['images'][None, :num_views].to(device))
        losses.append(float(batch_loss(model, features, batch, device)))
    loss = float(np.mean(losses)) if losses else float('nan')
    estimator = CameraTokenEstimator(model, EngineConfig(
        device=str(device), dtype='float32', max_views=max(num_views, 2), warmup=False))
    return score_estimator(estimator, dataset, num_sets, num_views, loss)
