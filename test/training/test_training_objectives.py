"""Training objectives: forward diffusion, timesteps, and what the loss compares."""

import torch
from torch import nn

from raydiff_ros.model.config import DiffusionConfig
from raydiff_ros.model.diffusion import NoiseSchedule
from raydiff_ros.training.objectives import noisy_rays, ray_loss, sample_timesteps

SHAPE = (2, 3, 6, 4, 4)


class RecordingModel(nn.Module):
    """Stands in for the network: records its input and predicts a constant."""

    def __init__(self, prediction: float) -> None:
        super().__init__()
        self.schedule = NoiseSchedule(DiffusionConfig())
        self.prediction = prediction
        self.inputs = []

    def forward(self, features, rays_noisy, t, ndc=None):
        self.inputs.append((rays_noisy.clone(), t.clone()))
        return torch.full_like(rays_noisy, self.prediction)


def test_noisy_rays_hand_computed():
    schedule = NoiseSchedule(DiffusionConfig())
    x0, noise = torch.ones(SHAPE), torch.full(SHAPE, 2.0)
    t = torch.tensor([0, 99])
    out = noisy_rays(schedule, x0, t, noise)
    for b in range(2):
        abar = schedule.alphas_cumprod[t[b]]
        expected = torch.sqrt(abar) + 2 * torch.sqrt(1 - abar)
        torch.testing.assert_close(out[b], torch.full(SHAPE[1:], float(expected)))
    # t = 0 keeps almost all of the signal (beta_0 = 1e-4)
    assert abs(float(out[0, 0, 0, 0, 0]) - (0.99995 + 2 * 0.01)) < 1e-4


def test_timesteps_cover_the_schedule_or_are_t_minus_one():
    schedule = NoiseSchedule(DiffusionConfig())
    generator = torch.Generator().manual_seed(0)
    t = sample_timesteps(schedule, 4000, False, generator, torch.device('cpu'))
    assert int(t.min()) == 0 and int(t.max()) == 99 and t.dtype == torch.long
    assert 40 < float(t.float().mean()) < 59
    regression = sample_timesteps(schedule, 5, True, generator, torch.device('cpu'))
    assert regression.tolist() == [99] * 5


def test_loss_is_the_x0_mse_and_regression_feeds_noise():
    rays = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([5, 70])
    model = RecordingModel(prediction=0.5)
    loss = ray_loss(model, torch.zeros(2, 3, 8, 4, 4), rays, None, t, noise, regression=False)
    torch.testing.assert_close(loss, torch.mean((0.5 - rays) ** 2))
    torch.testing.assert_close(model.inputs[-1][0], noisy_rays(model.schedule, rays, t, noise))
    ray_loss(model, torch.zeros(2, 3, 8, 4, 4), rays, None, t, noise, regression=True)
    torch.testing.assert_close(model.inputs[-1][0], noise)
