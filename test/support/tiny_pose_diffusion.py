"""A tiny pose-diffusion model for fast tests."""

from pathlib import Path

import torch

from raydiff_ros.model.config import BackboneConfig
from raydiff_ros.model.pose_diffusion import (
    PoseDenoiserConfig,
    PoseDiffusionConfig,
    PoseDiffusionModel,
    save_pose_model,
)


def tiny_pose_config() -> PoseDiffusionConfig:
    """A 28 x 28 DINOv2-shaped backbone of one block, 2 x 2 features, a 2-block denoiser of
    width 32."""
    return PoseDiffusionConfig(
        backbone=BackboneConfig(image_size=28, embed_dim=32, depth=1, num_heads=2,
                                pos_embed_grid=5),
        pose_denoiser=PoseDenoiserConfig(depth=2, hidden_size=32, num_heads=2, num_patches=2,
                                         feature_dim=32))


def save_tiny_pose_model(folder: Path, seed: int = 0) -> Path:
    """A freshly built tiny model (weights from ``seed``) saved as a model folder."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = PoseDiffusionModel(tiny_pose_config())
    save_pose_model(model, folder)
    return folder
