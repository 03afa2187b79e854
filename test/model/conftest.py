"""Fixtures shared by the model tests: a tiny random model and its inputs."""

from __future__ import annotations

import pytest
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
TINY_MAX_IMAGES = 3
INIT_STD = 0.1


def tiny_config(**diffusion: object) -> RayDiffusionConfig:
    """A model small enough to run the full 100-step sampler in well under a second."""
    return RayDiffusionConfig(
        backbone=BackboneConfig(image_size=TINY_IMAGE_SIZE, embed_dim=TINY_FEATURE_DIM, depth=1,
                                num_heads=2, pos_embed_grid=5),
        denoiser=DenoiserConfig(depth=2, hidden_size=32, num_heads=2, num_patches=TINY_PATCHES,
                                max_num_images=TINY_MAX_IMAGES, feature_dim=TINY_FEATURE_DIM),
        diffusion=DiffusionConfig(**diffusion),
    )


def random_model(config: RayDiffusionConfig, seed: int = 0) -> RayDiffusionModel:
    """Model whose every parameter is N(0, INIT_STD^2) from ``seed``, in eval mode."""
    model = RayDiffusionModel(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * INIT_STD)
    return model.eval()


def random_inputs(config: RayDiffusionConfig, num_images: int, seed: int = 1):
    """(features (N, F, P, P), ndc (N, 2, P, P)) drawn from ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    P = config.denoiser.num_patches
    features = torch.randn((num_images, config.denoiser.feature_dim, P, P), generator=generator)
    ndc = torch.rand((num_images, 2, P, P), generator=generator) * 2 - 1
    return features, ndc


@pytest.fixture(scope='module')
def tiny_model() -> RayDiffusionModel:
    return random_model(tiny_config())


@pytest.fixture(scope='session')
def make_tiny_config():
    """tiny_config(**diffusion_overrides) -> RayDiffusionConfig."""
    return tiny_config


@pytest.fixture(scope='session')
def make_random_model():
    """random_model(config, seed=0) -> RayDiffusionModel."""
    return random_model


@pytest.fixture(scope='session')
def make_inputs():
    """random_inputs(config, num_images, seed=1) -> (features (N, F, P, P), ndc (N, 2, P, P))."""
    return random_inputs


@pytest.fixture()
def single_thread():
    """Run a test on one torch thread (tiny models: a second thread only adds contention)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
