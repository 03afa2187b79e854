"""Tiny ray-diffusion models for fast tests (random weights)."""

import torch

from raydiff_ros.model.config import (
    BackboneConfig,
    DenoiserConfig,
    DiffusionConfig,
    RayDiffusionConfig,
)
from raydiff_ros.model.network import RayDiffusionModel

TINY_IMAGE_SIZE = 56  # 4 x 4 patches of 14 pixels
TINY_PATCHES = 4
TINY_FEATURE_DIM = 32
INIT_STD = 0.1


def tiny_config(denoiser_depth: int = 2, max_images: int = 3,
                **diffusion: object) -> RayDiffusionConfig:
    """A model small enough to run the full 100-step sampler in well under a second."""
    return RayDiffusionConfig(
        backbone=BackboneConfig(image_size=TINY_IMAGE_SIZE, embed_dim=TINY_FEATURE_DIM, depth=1,
                                num_heads=2, pos_embed_grid=5),
        denoiser=DenoiserConfig(depth=denoiser_depth, hidden_size=32, num_heads=2,
                                num_patches=TINY_PATCHES, max_num_images=max_images,
                                feature_dim=TINY_FEATURE_DIM),
        diffusion=DiffusionConfig(**diffusion),
    )


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """``model`` with every parameter N(0, INIT_STD^2) from ``seed``, in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * INIT_STD)
    return model.eval()


def random_model(config: RayDiffusionConfig, seed: int = 0) -> RayDiffusionModel:
    """Model whose every parameter is N(0, INIT_STD^2) from ``seed``, in eval mode."""
    return randomize(RayDiffusionModel(config), seed)
