"""Training checkpoints: a model folder in our format plus the optimizer state, for resuming.

Layout of a run's output folder::

    <output_dir>/train_config.yaml           the resolved training configuration
    <output_dir>/metrics.jsonl               one JSON object per logged / validated iteration
    <output_dir>/curves.png                  loss and metric curves
    <output_dir>/checkpoints/step_00001000/  one checkpoint per saved iteration:
        config.yaml, model.safetensors       our model format (raydiff_ros.model.checkpoint):
                                             ``load_model`` / ``RayDiffusionEngine`` read it as is
        training_state.pt                    iteration, optimizer, LR scheduler and loss-scaler
                                             states (torch.save of tensors and plain values;
                                             read back with weights_only=True)

A checkpoint is written into a temporary folder and renamed into place, so an interrupted save
never leaves a half-written checkpoint that resuming would pick up. Only the newest
``keep`` checkpoints are kept.
"""

from dataclasses import dataclass
from pathlib import Path
import shutil
import tempfile
from typing import Any, Optional, Union

import torch

from raydiff_ros.model.camera_token import (
    CameraTokenModel,
    load_camera_token_state,
    save_camera_token_model,
)
from raydiff_ros.model.checkpoint import assign_weights, load_state, save_model
from raydiff_ros.model.network import RayDiffusionModel
from raydiff_ros.model.pose_diffusion import (
    PoseDiffusionModel,
    assign_pose_weights,
    load_pose_state,
    save_pose_model,
)

PathLike = Union[str, Path]

CHECKPOINT_DIR = 'checkpoints'
STEP_DIR = 'step_{:08d}'
STEP_GLOB = 'step_*'
TRAINING_STATE_FILE = 'training_state.pt'
TRAINING_STATE_VERSION = 1
BACKBONE_PREFIX = 'backbone.'


class TrainingCheckpointError(ValueError):
    """A training checkpoint is missing or unreadable."""


@dataclass
class TrainingState:
    """Everything besides the weights that a resumed run needs.

    Attributes:
        iteration: iterations completed.
        optimizer: ``optimizer.state_dict()``.
        scheduler: ``lr_scheduler.state_dict()``.
        scaler: ``GradScaler.state_dict()`` (empty when loss scaling is off).
    """

    iteration: int
    optimizer: dict
    scheduler: dict
    scaler: dict

    def to_dict(self) -> dict[str, Any]:
        return {'version': TRAINING_STATE_VERSION, 'iteration': self.iteration,
                'optimizer': self.optimizer, 'scheduler': self.scheduler, 'scaler': self.scaler}


def checkpoint_dir(output_dir: PathLike, iteration: int) -> Path:
    """Folder of the checkpoint saved after ``iteration`` iterations."""
    return Path(output_dir) / CHECKPOINT_DIR / STEP_DIR.format(iteration)


def list_checkpoints(output_dir: PathLike) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first."""
    folder = Path(output_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.glob(STEP_GLOB)
                  if path.is_dir() and (path / TRAINING_STATE_FILE).is_file())


def latest_checkpoint(output_dir: PathLike) -> Optional[Path]:
    """The newest complete checkpoint folder, or None."""
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None


def save_checkpoint(output_dir: PathLike, model: RayDiffusionModel, state: TrainingState,
                    keep: int) -> Path:
    """Write a checkpoint for ``state.iteration`` and prune all but the newest ``keep``."""
    target = checkpoint_dir(output_dir, state.iteration)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix='.saving-', dir=target.parent))
    try:
        if isinstance(model, PoseDiffusionModel):
            save_pose_model(model, temporary)
        elif isinstance(model, CameraTokenModel):
            save_camera_token_model(model, temporary)
        else:
            save_model(model, temporary)
        torch.save(state.to_dict(), temporary / TRAINING_STATE_FILE)
        if target.exists():
            shutil.rmtree(target)
        temporary.rename(target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    for old in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def load_training_state(checkpoint: PathLike) -> TrainingState:
    """Read ``training_state.pt`` of a checkpoint folder."""
    path = Path(checkpoint) / TRAINING_STATE_FILE
    if not path.is_file():
        raise TrainingCheckpointError(f'{path} not found')
    try:
        data = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # torch raises many types for corrupt files
        raise TrainingCheckpointError(f'{path} is unreadable: {error}') from error
    if not isinstance(data, dict) or data.get('version') != TRAINING_STATE_VERSION:
        raise TrainingCheckpointError(f'{path} is not a version-{TRAINING_STATE_VERSION} '
                                      'training state')
    return TrainingState(iteration=int(data['iteration']), optimizer=data['optimizer'],
                         scheduler=data['scheduler'], scaler=data['scaler'])


def load_checkpoint_weights(model: RayDiffusionModel, checkpoint: PathLike) -> None:
    """Load a checkpoint's (or any model folder's) weights into ``model`` (strict)."""
    if isinstance(model, PoseDiffusionModel):
        config, state = load_pose_state(checkpoint)
        if config != model.config:
            raise TrainingCheckpointError(f'{checkpoint} holds a model with a different '
                                          'configuration than the one being trained')
        assign_pose_weights(model, state)
        return
    if isinstance(model, CameraTokenModel):
        config, state = load_camera_token_state(checkpoint)
    else:
        config, state = load_state(checkpoint)
    if config != model.config:
        raise TrainingCheckpointError(f'{checkpoint} holds a model with a different '
                                      'configuration than the one being trained')
    assign_weights(model, state)


def load_backbone_weights(model: RayDiffusionModel, model_dir: PathLike) -> None:
    """Copy the ``backbone.*`` weights of a model folder (e.g. the DINOv2 weights of an imported
    official checkpoint) into ``model``, whose backbone configuration must be the same."""
    if not model.config.backbone.weights_in_checkpoint:
        raise TrainingCheckpointError(f'the {model.config.backbone.kind} backbone is loaded from '
                                      'its package: drop model.backbone_from')
    config, state = load_state(model_dir)
    if config.backbone != model.config.backbone:
        raise TrainingCheckpointError(f'{model_dir} has a different backbone configuration '
                                      f'({config.backbone}) than the model being trained')
    prefix = BACKBONE_PREFIX
    backbone = {key[len(prefix):]: value for key, value in state.items()
                if key.startswith(prefix)}
    model.backbone.load_state_dict(backbone, strict=True)
