"""Sampson guidance of ray x0 predictions (``raydiff_ros.refinement.guidance``)."""


import numpy as np
import pytest
import refinement_scenes as scenes
import torch

from raydiff_ros.geometry.camera import Cameras
from raydiff_ros.geometry.metrics import relative_rotation_errors_deg
from raydiff_ros.geometry.rays import (
    cameras_to_rays,
    rays_from_spatial,
    rays_to_cameras_procrustes,
    rays_to_spatial,
)
from raydiff_ros.model.config import DiffusionConfig
from raydiff_ros.model.diffusion import NoiseSchedule, sample_rays
from raydiff_ros.refinement.guidance import (
    GuidanceConfig,
    GuidanceProblem,
    differentiable_cameras,
    guide_x0,
    sample_rays_guided,
    sampson_loss,
)

NUM_VIEWS = 3
NUM_PATCHES = 16
GUIDANCE_STEPS = 40
TEST_STEP = 0.2
SAMPLER_STRIDE = 10


@pytest.fixture(scope='module')
def scene():
    rng = np.random.default_rng(0)
    R, t, K = scenes.ring_cameras(NUM_VIEWS)
    matches = scenes.synthetic_matches(R, t, K, 200, 0.5, 0.1, rng)
    R_start, t_start = scenes.perturbed(R, t, 5.0, 0.1, rng)
    size = torch.tensor([scenes.IMAGE_SIZE] * NUM_VIEWS, dtype=torch.float64)
    K_t = torch.from_numpy(K)
    rays = cameras_to_rays(Cameras(torch.from_numpy(R_start), torch.from_numpy(t_start), K_t,
                                   size), None, NUM_PATCHES)
    problem = GuidanceProblem(K=K_t, image_size=size, crop_params=None, matches=matches)
    return R, rays_to_spatial(rays)[None], problem


def test_differentiable_cameras_match_the_geometry_package(scene):
    _, x0, problem = scene
    rays = rays_from_spatial(x0)
    R, t = differentiable_cameras(rays, problem.K, problem.image_size, None)
    reference = rays_to_cameras_procrustes(rays, problem.K, problem.image_size)
    assert torch.allclose(R, reference.R, atol=1e-9) and torch.allclose(t, reference.t,
                                                                         atol=1e-9)


def test_guidance_lowers_the_loss_and_moves_cameras_towards_the_truth(scene):
    R_true, x0, problem = scene
    config = GuidanceConfig(step=TEST_STEP)
    start_loss = float(sampson_loss(x0, problem, config))
    x = x0
    losses = []
    for _ in range(GUIDANCE_STEPS):
        x, loss = guide_x0(x, problem, config)
        losses.append(loss)
    assert torch.isfinite(x).all() and losses[0] == pytest.approx(start_loss)
    final_loss = float(sampson_loss(x, problem, config))
    before = relative_rotation_errors_deg(
        differentiable_cameras(rays_from_spatial(x0), problem.K, problem.image_size,
                               None)[0][0].numpy(), R_true).mean()
    after = relative_rotation_errors_deg(
        differentiable_cameras(rays_from_spatial(x), problem.K, problem.image_size,
                               None)[0][0].numpy(), R_true).mean()
    print(f'\nguidance: loss {start_loss:.2f} -> {final_loss:.2f}, mean relative rotation '
          f'error {before:.2f} -> {after:.2f} deg in {GUIDANCE_STEPS} steps')
    assert final_loss < 0.5 * start_loss
    assert after < 0.5 * before


def test_guided_sampler_without_guided_steps_is_the_sampler_and_guidance_helps(scene):
    _, x_fixed, problem = scene
    schedule = NoiseSchedule(DiffusionConfig(sampling_stride=SAMPLER_STRIDE))
    features = torch.zeros(1, NUM_VIEWS, 1, NUM_PATCHES, NUM_PATCHES, dtype=torch.float64)

    def denoise(features, x_t, t, ndc):
        return x_fixed.clone()

    plain = sample_rays(denoise, features, None, schedule,
                        generator=torch.Generator().manual_seed(0))
    unguided = sample_rays_guided(denoise, features, None, schedule, problem,
                                  GuidanceConfig(last_steps=0),
                                  generator=torch.Generator().manual_seed(0))
    guided = sample_rays_guided(denoise, features, None, schedule, problem,
                                GuidanceConfig(last_steps=3),
                                generator=torch.Generator().manual_seed(0))
    assert torch.allclose(unguided.rays, plain.rays) and unguided.num_steps == plain.num_steps
    config = GuidanceConfig()
    assert float(sampson_loss(guided.rays, problem, config)) < float(
        sampson_loss(unguided.rays, problem, config))


def test_guidance_input_errors(scene):
    _, x0, problem = scene
    with pytest.raises(ValueError, match='x0 must have shape'):
        sampson_loss(x0[:, :2], problem, GuidanceConfig())
    with pytest.raises(ValueError, match='step'):
        GuidanceConfig(step=0.0)
