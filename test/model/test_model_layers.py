"""Building blocks against hand-computed values: embeddings, tables, schedule, normalisation."""

from __future__ import annotations

import math

import pytest
import torch

from raydiff_ros.model.config import BackboneConfig, DenoiserConfig, DiffusionConfig
from raydiff_ros.model.diffusion import NoiseSchedule, normalize_rays
from raydiff_ros.model.dinov2 import DinoV2Backbone, pos_embed_scale_factor
from raydiff_ros.model.dit import RayDiT, modulate, sinusoid_table, timestep_embedding


def test_timestep_embedding_is_cos_then_sin():
    emb = timestep_embedding(torch.tensor([0, 1, 57]), 256, 10000.0)
    assert emb.shape == (3, 256)
    assert torch.equal(emb[0], torch.cat((torch.ones(128), torch.zeros(128))))
    # k = 0 has frequency 1; k = 64 has frequency 10000^(-1/2) = 0.01.
    assert emb[1, 0].item() == pytest.approx(math.cos(1.0), abs=1e-6)
    assert emb[1, 128].item() == pytest.approx(math.sin(1.0), abs=1e-6)
    assert emb[2, 64].item() == pytest.approx(math.cos(0.57), abs=1e-6)
    assert emb[2, 128 + 64].item() == pytest.approx(math.sin(0.57), abs=1e-6)


def test_sinusoid_table_interleaves_sin_and_cos():
    table = sinusoid_table(10, 8, 100.0)
    assert table.shape == (10, 8) and table.dtype == torch.float32
    assert torch.equal(table[0], torch.tensor([0.0, 1, 0, 1, 0, 1, 0, 1]))
    # angle(p, k) = p / 100^(2 floor(k/2) / 8): columns 2, 3 use p / 100^(1/4) = p / sqrt(10).
    p = 3
    assert table[p, 0].item() == pytest.approx(math.sin(3.0), abs=1e-7)
    assert table[p, 1].item() == pytest.approx(math.cos(3.0), abs=1e-7)
    assert table[p, 2].item() == pytest.approx(math.sin(3 / math.sqrt(10)), abs=1e-7)
    assert table[p, 7].item() == pytest.approx(math.cos(3 / 100 ** 0.75), abs=1e-7)
    # Rows do not depend on the table length (tables for more images extend shorter ones).
    assert torch.equal(sinusoid_table(4, 8, 100.0), table[:4])


def test_image_table_is_rebuilt_for_more_images_than_stored():
    config = DenoiserConfig(depth=1, hidden_size=16, num_heads=2, num_patches=2,
                            max_num_images=3, feature_dim=8)
    dit = RayDiT(config)
    longer = dit.image_positions(7)
    assert longer.shape == (7, 16)
    assert torch.equal(longer[:3], dit.image_pos_table)
    assert torch.equal(longer, sinusoid_table(7, 16, config.image_index_base))
    out = dit(torch.randn(1, 7, config.in_channels, 2, 2), 3)
    assert out.shape == (1, 7, 6, 2, 2)


def test_modulate_broadcasts_over_tokens():
    x = torch.ones(2, 3, 4)
    shift = torch.tensor([[1.0] * 4, [0.0] * 4])
    scale = torch.tensor([[1.0] * 4, [-1.0] * 4])
    out = modulate(x, shift, scale)
    assert torch.equal(out[0], torch.full((3, 4), 3.0))
    assert torch.equal(out[1], torch.zeros(3, 4))


CUBIC_A = -0.75  # PyTorch's bicubic kernel coefficient


def cubic_weight(d: float) -> float:
    """Keys cubic-convolution kernel with a = -0.75."""
    d = abs(d)
    if d <= 1:
        return (CUBIC_A + 2) * d ** 3 - (CUBIC_A + 3) * d ** 2 + 1
    if d < 2:
        return CUBIC_A * d ** 3 - 5 * CUBIC_A * d ** 2 + 8 * CUBIC_A * d - 4 * CUBIC_A
    return 0.0


def bicubic_1d(values, src: float) -> float:
    """Cubic interpolation of ``values`` at source coordinate ``src`` (border-clamped taps)."""
    base = math.floor(src)
    taps = range(base - 1, base + 3)
    return sum(values[min(max(i, 0), len(values) - 1)] * cubic_weight(src - i) for i in taps)


def test_pos_embed_resampling_uses_scale_factor_semantics():
    """A table varying along columns only, resampled 37 -> 16: output column j samples source
    column (j + 0.5) * 37 / 16.1 - 0.5 (scale-factor semantics), not (j + 0.5) * 37 / 16 - 0.5
    (output-size semantics)."""
    config = BackboneConfig(embed_dim=6, depth=1, num_heads=1)
    assert pos_embed_scale_factor(config, 16) == pytest.approx(16.1 / 37)
    backbone = DinoV2Backbone(config)
    grid = config.pos_embed_grid
    column_values = [math.sin(0.3 * c) + 0.05 * c for c in range(grid)]
    with torch.no_grad():
        backbone.pos_embed[0, 1:] = torch.tensor(column_values).repeat(grid)[:, None]
        backbone.pos_embed[0, 0] = -7.0
    table = backbone.interpolated_pos_embed(16, 16)
    assert table.shape == (1, 1 + 256, 6)
    assert torch.all(table[0, 0] == -7.0)  # class-token row untouched
    patches = table[0, 1:, 0].reshape(16, 16)
    for j in range(16):
        expected = bicubic_1d(column_values, (j + 0.5) * grid / 16.1 - 0.5)
        size_semantics = bicubic_1d(column_values, (j + 0.5) * grid / 16 - 0.5)
        assert patches[5, j].item() == pytest.approx(expected, abs=1e-5), j
        if 0 < j < 15:
            assert abs(patches[5, j].item() - size_semantics) > 1e-3, j
    assert torch.allclose(patches, patches[:1].expand(16, 16))  # rows stay identical
    # The stored grid is used as is.
    assert backbone.interpolated_pos_embed(grid, grid) is backbone.pos_embed


def test_backbone_output_shape_and_validation():
    config = BackboneConfig(image_size=28, embed_dim=8, depth=1, num_heads=2, pos_embed_grid=3)
    backbone = DinoV2Backbone(config)
    assert backbone(torch.zeros(2, 3, 28, 42)).shape == (2, 8, 2, 3)
    with pytest.raises(ValueError, match='multiple of the patch size'):
        backbone(torch.zeros(1, 3, 30, 28))
    with pytest.raises(ValueError, match='images must be'):
        backbone(torch.zeros(3, 28, 28))


def test_linear_schedule_values():
    schedule = NoiseSchedule(DiffusionConfig())
    assert schedule.betas[0].item() == pytest.approx(1e-4)
    assert schedule.betas[-1].item() == pytest.approx(0.2)
    assert torch.equal(schedule.alphas, 1 - schedule.betas)
    # Values quoted in the reference notes (alphas_cumprod at t = 0, 10, 29, 50, 70, 99).
    for t, value in ((0, 0.9999), (10, 0.8932), (29, 0.4068), (50, 0.0691), (70, 0.00508),
                     (99, 2.14e-5)):
        assert schedule.alphas_cumprod[t].item() == pytest.approx(value, rel=2e-3), t
    assert schedule.sampling_timesteps() == list(range(99, -1, -1))


def test_posterior_coefficients_official_step():
    schedule = NoiseSchedule(DiffusionConfig())
    betas = [1e-4 + (0.2 - 1e-4) * i / 99 for i in range(100)]
    abar, running = [], 1.0
    for beta in betas:
        running *= 1 - beta
        abar.append(running)
    t = 50
    w_x0, w_xt = schedule.posterior_coefficients(t, t - 1)
    assert w_x0.item() == pytest.approx(math.sqrt(abar[t - 1]) * betas[t] / (1 - abar[t]),
                                        rel=1e-5)
    assert w_xt.item() == pytest.approx(
        math.sqrt(1 - betas[t]) * (1 - abar[t - 1]) / (1 - abar[t]), rel=1e-5)
    # Last step: abar_{-1} = 1, so x_{-1} = x0 (w_x0 = beta_0 / (1 - alpha_0) = 1 up to the
    # float32 rounding of 1 - (1 - 1e-4), as in the official code).
    w_x0, w_xt = schedule.posterior_coefficients(0, -1)
    assert w_x0.item() == pytest.approx(1.0, abs=5e-4)
    assert w_xt.item() == 0.0
    with pytest.raises(ValueError):
        schedule.posterior_coefficients(5, 5)


@pytest.mark.parametrize('t,t_prev', [(99, 89), (40, 29), (9, -1), (60, 59)])
def test_posterior_mean_keeps_a_noise_free_chain_on_track(t, t_prev):
    """With x_t = sqrt(abar_t) x0 the posterior mean is sqrt(abar_{t'}) x0, for any stride."""
    schedule = NoiseSchedule(DiffusionConfig())
    x0 = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    abar = schedule.alphas_cumprod.double()
    w_x0, w_xt = schedule.posterior_coefficients(t, t_prev)
    mean = w_x0.double() * x0 + w_xt.double() * torch.sqrt(abar[t]) * x0
    target = torch.sqrt(abar[t_prev]) * x0 if t_prev >= 0 else x0
    assert torch.allclose(mean, target, rtol=1e-5, atol=1e-6)


def rays_with(direction, moment):
    """One ray as a (1, 1, 6, 1, 1) spatial tensor."""
    return torch.tensor(list(direction) + list(moment)).reshape(1, 1, 6, 1, 1)


def test_normalize_rays_official_moment_quirk():
    # d = (0, 0, 2): |d| = 2, d_hat = (0, 0, 1); m = (1, 0, 3), d_hat . m = 3.
    rays = rays_with((0.0, 0.0, 2.0), (1.0, 0.0, 3.0))
    official = normalize_rays(rays, True, 'official').flatten().tolist()
    orthogonal = normalize_rays(rays, True, 'orthogonal').flatten().tolist()
    untouched = normalize_rays(rays, True, 'none').flatten().tolist()
    assert official == [0.0, 0.0, 1.0, 1.0, 0.0, 1.5]  # m - 3 * d_hat / 2
    assert orthogonal == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    assert untouched == [0.0, 0.0, 1.0, 1.0, 0.0, 3.0]
    # Without direction normalisation the official formula uses the raw d: m - (d.m) d / |d|.
    raw = normalize_rays(rays, False, 'official').flatten().tolist()
    assert raw == [0.0, 0.0, 2.0, 1.0, 0.0, -3.0]
    assert torch.equal(rays, rays_with((0.0, 0.0, 2.0), (1.0, 0.0, 3.0)))  # input untouched
    with pytest.raises(ValueError, match='rays|x0'):
        normalize_rays(torch.zeros(1, 1, 5, 1, 1))
