"""Refinement ``'guided'``: the engine's sampler with Sampson guidance (``guided_estimator``)."""

import logging

from inference_helpers import oracle_for
import numpy as np
import pytest
import refinement_scenes as scenes
from tiny_models import random_model, tiny_config
import torch

from raydiff_ros.estimation import (
    EstimationResult,
    RefinementError,
    ViewSetInput,
    create_estimator,
    with_refinement,
)
from raydiff_ros.geometry.epipolar import homogeneous_sampson_residuals
from raydiff_ros.inference.engine import EngineConfig, RayDiffusionEngine
from raydiff_ros.refinement.guidance import GuidanceConfig
from raydiff_ros.refinement.guided_estimator import (
    GuidedConfig,
    GuidedRayDiffusionEstimator,
)

NUM_VIEWS = 3
NUM_SAMPLES = 2
SAMPLING_STRIDE = 10
POINTS_PER_PAIR = 100
NOISE_PX = 0.5
# The tiny model has 4 x 4 rays per image (the released one 16 x 16): the gradient per ray is
# larger, so the step is smaller than the default.
TINY_GUIDANCE = GuidanceConfig(step=0.003, iterations=10, last_steps=3)
ORACLE_PERTURBATION_DEG = 5.0
ORACLE_CENTER_NOISE = 0.1


@pytest.fixture(scope='module')
def scene():
    """Images of the synthetic ring's size, its K, and exact matches of its true cameras."""
    rng = np.random.default_rng(0)
    R, t, K = scenes.ring_cameras(NUM_VIEWS)
    matches = scenes.synthetic_matches(R, t, K, POINTS_PER_PAIR, NOISE_PX, 0.0, rng)
    width, height = scenes.IMAGE_SIZE
    images = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
              for _ in range(NUM_VIEWS)]
    return {'R': R, 't': t, 'K': K, 'matches': matches, 'images': images}


def ray_diffusion(model) -> RayDiffusionEngine:
    return RayDiffusionEngine(model, EngineConfig(device='cpu', num_samples=NUM_SAMPLES,
                                                  warmup=False))


def tiny_random(seed: int) -> RayDiffusionEngine:
    return ray_diffusion(random_model(tiny_config(max_images=NUM_VIEWS,
                                                  sampling_stride=SAMPLING_STRIDE), seed=seed))


def guided(base, scene, guidance=TINY_GUIDANCE, matches=None) -> GuidedRayDiffusionEstimator:
    known = scene['matches'] if matches is None else matches
    return GuidedRayDiffusionEstimator(base, GuidedConfig(guidance=guidance),
                                       matcher=lambda images, K: known)


def median_sampson_px(estimate: EstimationResult, scene) -> float:
    """Median |Sampson residual| (pixels) of the scene's matches under the estimated cameras."""
    matches = scene['matches']
    sizes = [pair.num_matches for pair in matches]

    def homogeneous(points):
        return torch.from_numpy(np.concatenate([points, np.ones((len(points), 1))], axis=1))

    R, t = estimate.world_to_camera()
    residuals = homogeneous_sampson_residuals(
        torch.from_numpy(R), torch.from_numpy(t),
        torch.from_numpy(np.linalg.inv(scene['K'])),
        torch.from_numpy(np.repeat([p.i for p in matches], sizes)),
        torch.from_numpy(np.repeat([p.j for p in matches], sizes)),
        homogeneous(np.concatenate([p.points_i for p in matches])),
        homogeneous(np.concatenate([p.points_j for p in matches])))
    return float(residuals.abs().median())


@pytest.mark.parametrize('model_seed', [0, 2, 3])
def test_guided_random_model_has_a_lower_sampson_error_than_the_plain_sampler(scene,
                                                                             model_seed):
    base = tiny_random(model_seed)
    inputs = ViewSetInput(scene['images'], scene['K'])
    plain = base.estimate(inputs)
    estimator = guided(base, scene)
    result = estimator.estimate(inputs)
    before, after = median_sampson_px(plain, scene), median_sampson_px(result, scene)
    report = estimator.last_report
    print(f'\nrandom model {model_seed}: median Sampson {before:.1f} -> {after:.1f} px, '
          f'matching + guidance {result.timings_s["refinement"]:.3f} s')
    assert report.guided and report.reason == ''
    assert report.num_matches == NUM_VIEWS * (NUM_VIEWS - 1) // 2 * POINTS_PER_PAIR
    assert len(report.losses) == TINY_GUIDANCE.last_steps * TINY_GUIDANCE.iterations
    assert result.samples_reference_T_camera.shape == (NUM_SAMPLES, NUM_VIEWS, 4, 4)
    assert np.isfinite(result.samples_reference_T_camera).all()
    assert result.timings_s['guidance'] == report.guidance_seconds > 0
    assert result.timings_s['refinement'] == pytest.approx(
        report.matching_seconds + report.guidance_seconds)
    assert result.pose_sources[1:] == ('ray_diffusion+guided',) * (NUM_VIEWS - 1)
    assert after < before


@pytest.fixture(scope='module')
def off_oracle(scene) -> RayDiffusionEngine:
    """A denoiser that always predicts the rays of cameras 5 deg off the truth (the matches
    are those of the true cameras): the plain path returns the perturbed cameras."""
    rng = np.random.default_rng(1)
    R_off, t_off = scenes.perturbed(scene['R'], scene['t'], ORACLE_PERTURBATION_DEG,
                                    ORACLE_CENTER_NOISE, rng)
    return ray_diffusion(oracle_for(scene['images'], R_off, t_off, scene['K'],
                                    tiny_config(max_images=NUM_VIEWS,
                                                sampling_stride=SAMPLING_STRIDE)))


def test_guidance_pulls_an_off_oracle_towards_the_matched_geometry(scene, off_oracle):
    inputs = ViewSetInput(scene['images'], scene['K'])
    before = median_sampson_px(off_oracle.estimate(inputs), scene)
    estimator = guided(off_oracle, scene, GuidanceConfig(step=0.003, iterations=10,
                                                         last_steps=1))
    after = median_sampson_px(estimator.estimate(inputs), scene)
    print(f'\noff oracle: median Sampson {before:.2f} -> {after:.2f} px')
    assert after < 0.5 * before


def test_without_guided_steps_the_guided_path_is_the_plain_path(scene):
    base = tiny_random(0)
    inputs = ViewSetInput(scene['images'], scene['K'])
    plain = base.estimate(inputs)
    unguided = guided(base, scene, GuidanceConfig(last_steps=0)).estimate(inputs)
    assert np.allclose(unguided.samples_reference_T_camera, plain.samples_reference_T_camera,
                       atol=1e-6)


@pytest.mark.parametrize('K, matches, reason', [
    ('known', 'few', 'too few verified matches'),
    (None, 'all', 'intrinsics unknown'),
])
def test_fallback_to_the_plain_sampler_says_why(scene, off_oracle, caplog, K, matches, reason):
    base = off_oracle  # real cameras: the plain path also works without K (homography)
    K = scene['K'] if K == 'known' else None
    kept = scene['matches'] if matches == 'all' else [
        scenes.PairMatches(i=0, j=1, points_i=scene['matches'][0].points_i[:5],
                           points_j=scene['matches'][0].points_j[:5])]
    estimator = guided(base, scene, matches=kept)
    inputs = ViewSetInput(scene['images'], K)
    with caplog.at_level(logging.WARNING):
        samples = estimator.estimate(inputs)
    plain = base.estimate(inputs)
    report = estimator.last_report
    assert not report.guided and reason in report.reason and not report.losses
    assert report.guidance_seconds == 0 and samples.timings_s['refinement'] >= 0
    assert reason in caplog.text
    assert np.array_equal(samples.samples_reference_T_camera, plain.samples_reference_T_camera)


def test_guided_needs_a_diffusion_sampler():
    with pytest.raises(RefinementError, match="'classical_sift' has no sampler"):
        with_refinement(create_estimator('classical_sift'), 'guided')
    regression = ray_diffusion(random_model(tiny_config(max_images=NUM_VIEWS,
                                                        regression=True)))
    with pytest.raises(RefinementError, match='regression'):
        with_refinement(regression, 'guided')
    wrapped = with_refinement(tiny_random(0), 'guided')
    assert isinstance(wrapped, GuidedRayDiffusionEstimator)
    assert wrapped.name == 'ray_diffusion+guided'
