"""The sampler run end to end on a tiny random model, and the chunking of many images."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from raydiff_ros.model.config import DiffusionConfig
from raydiff_ros.model.diffusion import (
    NoiseSchedule,
    predict_x0,
    regress_rays,
    sample_rays,
)

NUM_IMAGES = 3
NUM_SAMPLES = 3
OFFICIAL_RETURN_LOOP_INDEX = 70  # t = 29
OFFICIAL_STEPS_TO_T29 = 71

pytestmark = pytest.mark.usefixtures('single_thread')


def sample(model, features, ndc, **kwargs):
    """Sampler on one image set expanded to a batch of samples (model.predict_rays)."""
    return model.predict_rays(features, ndc, **kwargs)


def test_shapes_unit_directions_and_stop_at_t29(tiny_model, make_inputs):
    features, ndc = make_inputs(tiny_model.config, NUM_IMAGES)
    result = sample(tiny_model, features, ndc, num_samples=NUM_SAMPLES,
                    generator=torch.Generator().manual_seed(0))
    P = tiny_model.config.denoiser.num_patches
    assert result.rays.shape == (NUM_SAMPLES, NUM_IMAGES, 6, P, P)
    assert result.x_t.shape == result.rays.shape
    assert result.num_steps == OFFICIAL_STEPS_TO_T29
    norms = torch.linalg.norm(result.rays[:, :, :3], dim=2)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
    assert result.trajectory == {}


def test_same_seed_same_rays_other_seed_other_rays(tiny_model, make_inputs):
    features, ndc = make_inputs(tiny_model.config, NUM_IMAGES)
    runs = [sample(tiny_model, features, ndc, generator=torch.Generator().manual_seed(seed)).rays
            for seed in (5, 5, 6)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.allclose(runs[0], runs[2], atol=1e-3)


def test_global_rng_equals_generator_with_same_seed(tiny_model, make_inputs):
    features, ndc = make_inputs(tiny_model.config, NUM_IMAGES)
    torch.manual_seed(11)
    from_global = sample(tiny_model, features, ndc).rays
    from_generator = sample(tiny_model, features, ndc,
                            generator=torch.Generator().manual_seed(11)).rays
    assert torch.equal(from_global, from_generator)


def test_stopping_at_t29_equals_the_t29_snapshot_of_a_full_run(tiny_model, make_inputs):
    features, ndc = make_inputs(tiny_model.config, NUM_IMAGES)
    stopped = sample(tiny_model, features, ndc, generator=torch.Generator().manual_seed(3))
    full = sample(tiny_model, features, ndc, generator=torch.Generator().manual_seed(3),
                  run_to_end=True,
                  record_loop_indices=(0, OFFICIAL_RETURN_LOOP_INDEX,
                                       OFFICIAL_RETURN_LOOP_INDEX + 1, 99))
    assert full.num_steps == 100
    assert full.trajectory[OFFICIAL_RETURN_LOOP_INDEX].timestep == 29
    assert torch.equal(full.trajectory[OFFICIAL_RETURN_LOOP_INDEX].x0, stopped.rays)
    assert torch.equal(full.rays, stopped.rays)
    # The stopped run's state is x_28, the input of loop index 71 in the full run.
    assert torch.equal(stopped.x_t, full.trajectory[OFFICIAL_RETURN_LOOP_INDEX + 1].x_t)
    # The full run continues past t = 29 and ends at a different state.
    assert not torch.allclose(full.x_t, stopped.x_t)
    assert full.trajectory[99].timestep == 0


def test_recorded_loop_index_past_t29_extends_the_run(tiny_model, make_inputs):
    features, ndc = make_inputs(tiny_model.config, NUM_IMAGES)
    result = sample(tiny_model, features, ndc, generator=torch.Generator().manual_seed(3),
                    record_loop_indices=(80,))
    assert result.num_steps == 81
    assert set(result.trajectory) == {80}
    with pytest.raises(ValueError, match='record_loop_indices'):
        sample(tiny_model, features, ndc, record_loop_indices=(100,))


def test_batched_samples_equal_separate_runs_with_the_same_noise(tiny_model, make_inputs):
    features, ndc = make_inputs(tiny_model.config, NUM_IMAGES)
    P = tiny_model.config.denoiser.num_patches
    x_T = torch.randn((NUM_SAMPLES, NUM_IMAGES, 6, P, P),
                      generator=torch.Generator().manual_seed(9))
    batched = sample(tiny_model, features, ndc, num_samples=NUM_SAMPLES, x_T=x_T).rays
    for k in range(NUM_SAMPLES):
        alone = sample(tiny_model, features, ndc, num_samples=1, x_T=x_T[k:k + 1]).rays
        assert torch.allclose(batched[k:k + 1], alone, atol=1e-5), k
    # One generator draw of the whole batch is the same as passing that noise explicitly.
    drawn = sample(tiny_model, features, ndc, num_samples=NUM_SAMPLES,
                   generator=torch.Generator().manual_seed(9)).rays
    assert torch.equal(drawn, batched)


class ChunkRecorder:
    """Stub network: x0 = x_t + 10 * (chunk number) + image's position in the chunk.

    Lets a test see which chunk produced which output and average of image 0.
    """

    def __init__(self) -> None:
        self.chunks = []

    def __call__(self, features, x_t, t, ndc):
        chunk_number = len(self.chunks)
        self.chunks.append(features[0, :, 0, 0, 0].round().long().tolist())
        positions = torch.arange(x_t.shape[1], dtype=x_t.dtype).reshape(1, -1, 1, 1, 1)
        return x_t + 10.0 * chunk_number + positions


@pytest.mark.parametrize('num_images,max_per_pass,expected_chunks', [
    (10, 8, 2), (15, 8, 2), (16, 8, 3), (6, 3, 3), (8, 8, 1)])
def test_chunking_around_image_zero(num_images, max_per_pass, expected_chunks):
    P = 2
    # Feature channel 0 carries the image index, so the stub can report each chunk's images.
    features = torch.arange(num_images, dtype=torch.float32).reshape(1, -1, 1, 1, 1)
    features = features.expand(2, num_images, 3, P, P)
    x_t = torch.randn((2, num_images, 6, P, P), generator=torch.Generator().manual_seed(0))
    recorder = ChunkRecorder()
    x0 = predict_x0(recorder, features, None, x_t, 5, max_images_per_pass=max_per_pass,
                    generator=torch.Generator().manual_seed(4))
    assert len(recorder.chunks) == expected_chunks
    if expected_chunks == 1:
        assert recorder.chunks == [list(range(num_images))]  # no permutation when it fits
        return
    # Official permutation: randperm of images 1..N-1, chunks of (max - 1), image 0 first.
    order = (torch.randperm(num_images - 1, generator=torch.Generator().manual_seed(4)) + 1)
    expected = [[0] + chunk.tolist() for chunk in torch.split(order, max_per_pass - 1)]
    assert recorder.chunks == expected
    for chunk_number, chunk in enumerate(expected):
        for position, image in enumerate(chunk[1:], start=1):
            assert torch.equal(x0[:, image], x_t[:, image] + 10.0 * chunk_number + position)
    image0_mean = x_t[:, 0] + 10.0 * (expected_chunks - 1) / 2
    assert torch.allclose(x0[:, 0], image0_mean, atol=1e-5)


def test_sampler_with_more_images_than_one_pass(make_tiny_config, make_random_model,
                                                make_inputs):
    config = make_tiny_config()
    model = make_random_model(config)
    max_images = config.denoiser.max_num_images
    num_images = 2 * max_images + 1  # chunks of (max - 1) others: 3 passes
    features, ndc = make_inputs(config, num_images)
    passes = []

    def counting_model(feats, x_t, t, ndc_chunk):
        passes.append(feats.shape[1])
        return model(feats, x_t, t, ndc_chunk)

    schedule = NoiseSchedule(dataclasses.replace(config.diffusion, return_timestep=97))
    result = sample_rays(counting_model, features[None], ndc[None], schedule,
                         generator=torch.Generator().manual_seed(0),
                         max_images_per_pass=max_images)
    assert result.rays.shape[1] == num_images
    assert result.num_steps == 3
    assert len(passes) == 3 * 3
    assert max(passes) <= max_images
    assert torch.isfinite(result.rays).all()
    # Same seed, same permutations: the run is reproducible.
    again = sample_rays(model, features[None], ndc[None], schedule,
                        generator=torch.Generator().manual_seed(0),
                        max_images_per_pass=max_images)
    assert torch.equal(again.rays, result.rays)


def test_regression_is_one_raw_forward_at_max_timesteps(make_tiny_config, make_random_model,
                                                        make_inputs):
    config = make_tiny_config(regression=True)
    model = make_random_model(config)
    features, ndc = make_inputs(config, NUM_IMAGES)
    result = model.predict_rays(features, ndc, num_samples=2,
                                generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        direct = model(features.expand(2, *features.shape), result.x_t,
                       config.diffusion.max_timesteps, ndc.expand(2, *ndc.shape))
    assert result.num_steps == 1
    assert torch.equal(result.rays, direct)
    assert torch.equal(result.x_t, torch.randn(result.x_t.shape,
                                               generator=torch.Generator().manual_seed(1)))
    # Raw output: directions are not normalised.
    norms = torch.linalg.norm(result.rays[:, :, :3], dim=2)
    assert not torch.allclose(norms, torch.ones_like(norms), atol=1e-3)
    with pytest.raises(ValueError, match='regression'):
        sample_rays(model, features[None], ndc[None], model.schedule)
    calls = []
    regress_rays(lambda *a: calls.append(a[2]) or a[1], features[None], ndc[None],
                 model.schedule)
    assert calls == [config.diffusion.max_timesteps]


def test_strided_schedule_visits_the_grid_and_returns_t29(make_tiny_config, make_random_model,
                                                          make_inputs):
    config = make_tiny_config(sampling_stride=10)
    model = make_random_model(config)
    assert model.schedule.sampling_timesteps() == list(range(99, -1, -10))
    features, ndc = make_inputs(config, NUM_IMAGES)
    seen = []

    def recording_model(feats, x_t, t, ndc_):
        seen.append(t)
        return model(feats, x_t, t, ndc_)

    result = sample_rays(recording_model, features[None], ndc[None], model.schedule,
                         generator=torch.Generator().manual_seed(0))
    assert seen == [99, 89, 79, 69, 59, 49, 39, 29]
    assert result.num_steps == 8
    with pytest.raises(ValueError, match='sampling grid'):
        DiffusionConfig(sampling_stride=10, return_timestep=30)


def test_input_validation(tiny_model, make_inputs):
    features, ndc = make_inputs(tiny_model.config, NUM_IMAGES)
    with pytest.raises(ValueError, match='ndc is required'):
        tiny_model(features[None], torch.zeros(1, NUM_IMAGES, 6, 4, 4), 5, None)
    with pytest.raises(ValueError, match='rays_noisy must have shape'):
        tiny_model(features[None], torch.zeros(1, NUM_IMAGES, 5, 4, 4), 5, ndc[None])
    with pytest.raises(ValueError, match='x_T must have shape'):
        tiny_model.predict_rays(features, ndc, x_T=torch.zeros(2, NUM_IMAGES, 6, 4, 4))
    with pytest.raises(TypeError, match='integers'):
        tiny_model(features[None], torch.zeros(1, NUM_IMAGES, 6, 4, 4), torch.tensor(0.5),
                   ndc[None])
    with pytest.raises(ValueError, match='timesteps for a batch'):
        tiny_model(features[None], torch.zeros(1, NUM_IMAGES, 6, 4, 4), torch.tensor([1, 2]),
                   ndc[None])


def test_model_without_ndc_ignores_it(make_tiny_config, make_random_model, make_inputs):
    base = make_tiny_config()
    config = dataclasses.replace(base, denoiser=dataclasses.replace(base.denoiser,
                                                                    append_ndc=False))
    model = make_random_model(config)
    assert model.denoiser.x_embedder.in_features == config.denoiser.feature_dim + 6
    features, _ = make_inputs(config, NUM_IMAGES)
    result = model.predict_rays(features, None, generator=torch.Generator().manual_seed(0))
    assert result.rays.shape == (1, NUM_IMAGES, 6, 4, 4)
