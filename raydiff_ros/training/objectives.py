"""Training objectives of the ray-diffusion model (official ``train.py`` semantics).

Both variants regress the clean rays x0 (B, N, 6, P, P) with a mean squared error over every
element:

* diffusion: ``t ~ U{0, ..., T-1}`` per sample, ``eps ~ N(0, I)``,
  ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``, loss ``mean((f(x_t, t) - x0)^2)``;
* regression: ``t = T - 1`` for every sample (the official trainer's value; its inference runs
  the network at ``t = T``, as :func:`raydiff_ros.model.diffusion.regress_rays` does) on random
  rays ``eps ~ N(0, I)`` as input (``sqrt(abar_{T-1})`` is about 0.007 officially, so the
  official input is noise in all but name).

The network's raw output is compared (no direction normalisation), as officially.
"""

from typing import Optional

import torch

from raydiff_ros.model.diffusion import NoiseSchedule
from raydiff_ros.model.network import RayDiffusionModel

RAY_SHAPE_RANK = 5


def noisy_rays(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor,
               noise: torch.Tensor) -> torch.Tensor:
    """Forward diffusion ``sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``.

    Args:
        schedule: the noise schedule (``alphas_cumprod`` (T,)).
        x0: (B, N, 6, P, P) clean rays.
        t: (B,) integer timesteps in [0, T).
        noise: (B, N, 6, P, P) standard normal noise.

    Returns:
        (B, N, 6, P, P) noisy rays.
    """
    if x0.ndim != RAY_SHAPE_RANK or noise.shape != x0.shape or t.shape != x0.shape[:1]:
        raise ValueError(f'need x0 (B, N, 6, P, P), noise of the same shape and t (B,), got '
                         f'{tuple(x0.shape)}, {tuple(noise.shape)}, {tuple(t.shape)}')
    alpha_bar = schedule.alphas_cumprod.to(x0.device)[t].to(x0.dtype).reshape(-1, 1, 1, 1, 1)
    return torch.sqrt(alpha_bar) * x0 + torch.sqrt(1 - alpha_bar) * noise


def sample_timesteps(schedule: NoiseSchedule, batch_size: int, regression: bool,
                     generator: Optional[torch.Generator], device: torch.device) -> torch.Tensor:
    """(B,) training timesteps: U{0..T-1} (diffusion) or all T - 1 (regression)."""
    T = schedule.max_timesteps
    gen_device = generator.device if generator is not None else 'cpu'
    if regression:
        return torch.full((batch_size,), T - 1, dtype=torch.long, device=device)
    return torch.randint(0, T, (batch_size,), generator=generator, device=gen_device).to(device)


def ray_loss(model: RayDiffusionModel, features: torch.Tensor, rays: torch.Tensor,
             ndc: Optional[torch.Tensor], t: torch.Tensor, noise: torch.Tensor,
             regression: bool) -> torch.Tensor:
    """The x0 MSE of one batch with given timesteps and noise.

    Args:
        model: the network (only ``forward`` is used).
        features: (B, N, F, P, P) backbone features.
        rays: (B, N, 6, P, P) target (clean) rays.
        ndc: (B, N, 2, P, P) NDC patch centres, or None for a model without them.
        t: (B,) timesteps.
        noise: (B, N, 6, P, P) standard normal noise (the regression input itself).
        regression: feed ``noise`` as the input instead of the diffused rays.

    Returns:
        Scalar loss (float32).
    """
    x_t = noise if regression else noisy_rays(model.schedule, rays, t, noise)
    prediction = model(features, x_t, t, ndc)
    return torch.mean((prediction.float() - rays.float()) ** 2)
