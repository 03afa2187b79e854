"""Fixtures shared by the model tests: a tiny random model and its inputs."""

from __future__ import annotations

import pytest
from tiny_models import TINY_FEATURE_DIM, TINY_PATCHES, random_model  # noqa: F401
from tiny_models import tiny_config as _tiny_config
import torch

from raydiff_ros.model.config import RayDiffusionConfig
from raydiff_ros.model.network import RayDiffusionModel

TINY_MAX_IMAGES = 3


def tiny_config(**diffusion: object) -> RayDiffusionConfig:
    """The model tests' tiny config: 2 blocks, at most 3 images per pass."""
    return _tiny_config(denoiser_depth=2, max_images=TINY_MAX_IMAGES, **diffusion)


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
