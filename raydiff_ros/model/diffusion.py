"""Diffusion schedule and the RayDiffusion sampler (x0 prediction, posterior mean, sigma = 0).

Rays are spatial tensors (B, N, 6, P, P): B independent samples (or scenes), N images, channels
[d_x, d_y, d_z, m_x, m_y, m_z] (direction, moment m = c x d), P x P patches. The sampler returns
rays only; turning rays into cameras is the geometry package's job.

Official sampler (``RayDiffusion`` ``inference_ddpm`` as called by its demo and evaluation):

1. x_T ~ N(0, I), drawn before anything else from the given generator (or the global RNG).
2. For t = T-1, ..., 0 (one "loop index" k = T-1-t per step):
   a. one N(0, I) draw of x_t's shape when t > 0. It is multiplied by sigma = 0 (the
      ``rescale_noise='zero'`` setting), but drawing it keeps the generator in step with the
      official code, so chunk permutations (below) match it for the same seed;
   b. x0_hat = network(features, x_t, t, ndc); with more images than one pass takes, images
      1..N-1 are randomly permuted, split into chunks of (max - 1) and each chunk is run with
      image 0 prepended; image 0's prediction is the mean over chunks;
   c. directions normalised, d <- d / |d|; moments with the official quirk
      m <- m - (d_hat . m) d_hat / |d| (the released code divides by the raw direction norm
      after overwriting d with d_hat; an exact projection would not divide). Set
      ``DiffusionConfig.moment_normalization`` to 'orthogonal' or 'none' for the alternatives;
   d. x_{t-1} = sqrt(abar_{t-1}) beta_t / (1 - abar_t) x0_hat
               + sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) x_t     (abar_{-1} = 1),
      then clamped to [-5, 5].
3. The result is x0_hat at t = 29 (loop index 70): the demo and the evaluation use it. Because
   sigma = 0, stopping there (71 network evaluations) gives the same rays as the full run.

A strided schedule (``sampling_stride`` s > 1) visits t = T-1, T-1-s, ... and steps from t to the
next visited t' with the posterior mean of q(x_t' | x_t, x0), using abar_t / abar_t' in place of
alpha_t; with s = 1 it is the official update.

The regression variant (:func:`regress_rays`) is a single forward at t = T (= 100, one past the
last training step, as the official code does) on N(0, I) rays, without normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from raydiff_ros.model.config import RAY_DIM, DiffusionConfig

DIRECTION = slice(0, 3)
MOMENT = slice(3, 6)
RAY_CHANNEL_DIM = 2
"""Channel axis of spatial rays (B, N, 6, P, P)."""
OFFICIAL_MAX_IMAGES_PER_PASS = 8
"""Images per network pass of the released model (its demo chunks larger sets)."""

Timestep = Union[int, torch.Tensor]
DenoiseFn = Callable[[torch.Tensor, torch.Tensor, Timestep, Optional[torch.Tensor]], torch.Tensor]
"""denoise(features (B, N, F, P, P), rays_noisy (B, N, 6, P, P), t, ndc (B, N, 2, P, P) or None)
-> x0 prediction (B, N, 6, P, P)."""


class NoiseSchedule(nn.Module):
    """Linear-beta DDPM schedule: betas, alphas = 1 - betas, alphas_cumprod (each (T,) float32).

    The buffers are computed from the config (not stored in checkpoints); the official values are
    reproduced bit for bit (float32 linspace and cumprod).
    """

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = config
        betas = torch.linspace(config.beta_start, config.beta_end, config.max_timesteps,
                               dtype=torch.float32, device='cpu')
        alphas = 1.0 - betas
        self.register_buffer('betas', betas, persistent=False)
        self.register_buffer('alphas', alphas, persistent=False)
        self.register_buffer('alphas_cumprod', torch.cumprod(alphas, dim=0), persistent=False)

    @property
    def max_timesteps(self) -> int:
        return self.config.max_timesteps

    def sampling_timesteps(self) -> List[int]:
        """Timesteps visited by the sampler, in loop order: T-1, T-1-stride, ..., >= 0."""
        return list(range(self.max_timesteps - 1, -1, -self.config.sampling_stride))

    def posterior_coefficients(self, t: int, t_prev: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Weights (w_x0, w_xt) of the posterior mean of x_{t_prev} given x_t and x0.

        t_prev = -1 means the clean end of the chain (abar = 1). For t_prev = t - 1 these are the
        official DDPM weights; otherwise alpha is replaced by abar_t / abar_{t_prev}.
        """
        if not -1 <= t_prev < t < self.max_timesteps:
            raise ValueError(f'need -1 <= t_prev < t < {self.max_timesteps}, got {t_prev}, {t}')
        abar_t = self.alphas_cumprod[t]
        abar_prev = self.alphas_cumprod[t_prev] if t_prev >= 0 else torch.ones_like(abar_t)
        if t_prev == t - 1:
            alpha_t, beta_t = self.alphas[t], self.betas[t]
        else:
            alpha_t = abar_t / abar_prev
            beta_t = 1 - alpha_t
        w_x0 = torch.sqrt(abar_prev) * beta_t / (1 - abar_t)
        w_xt = torch.sqrt(alpha_t) * (1 - abar_prev) / (1 - abar_t)
        return w_x0, w_xt


@dataclass
class SamplerSnapshot:
    """One sampler step: the input x_t, the (normalised) x0 prediction, and its timestep."""

    timestep: int
    x_t: torch.Tensor
    x0: torch.Tensor


@dataclass
class SampleResult:
    """Output of :func:`sample_rays`.

    rays: x0 prediction at ``return_timestep`` (B, N, 6, P, P), after normalisation.
    x_t: the sampler state after the last step run, i.e. the x_t' that step produced (after
        the t = 0 update when run to the end; x_28 when stopping at t = 29).
    trajectory: snapshots at the requested loop indices (loop index k visits
        ``NoiseSchedule.sampling_timesteps()[k]``; k = 99 - t for the official schedule).
    num_steps: sampler steps run (network passes per step: 1, or the number of chunks).
    """

    rays: torch.Tensor
    x_t: torch.Tensor
    trajectory: Dict[int, SamplerSnapshot] = field(default_factory=dict)
    num_steps: int = 0


def initial_noise(shape: Sequence[int], generator: Optional[torch.Generator] = None,
                  device: Union[str, torch.device, None] = None) -> torch.Tensor:
    """x_T ~ N(0, I) of ``shape`` drawn on the generator's device (the global CPU RNG when None).

    ``torch.manual_seed(s)`` followed by ``initial_noise(shape)`` and
    ``initial_noise(shape, torch.Generator().manual_seed(s))`` give the same tensor.
    """
    gen_device = generator.device if generator is not None else 'cpu'
    noise = torch.randn(tuple(shape), generator=generator, device=gen_device)
    return noise if device is None else noise.to(device)


def normalize_rays(x0: torch.Tensor, normalize_directions: bool = True,
                   moment_normalization: str = 'official') -> torch.Tensor:
    """Post-process an x0 ray prediction (B, N, 6, P, P) -> same shape (a new tensor).

    With |d| the raw direction norm and d_hat = d / |d|:

    * directions: d_hat when ``normalize_directions``, else d unchanged;
    * 'official' moments: m - (d' . m) d' / |d| with d' the (possibly normalised) direction,
      exactly the released code's arithmetic (not an orthogonal projection when |d| != 1);
    * 'orthogonal' moments: m - (d_hat . m) d_hat, so that d_hat . m = 0;
    * 'none': m unchanged.
    """
    _check_rays(x0, 'x0')
    d = x0[:, :, DIRECTION]
    m = x0[:, :, MOMENT]
    norm = torch.linalg.norm(d, dim=RAY_CHANNEL_DIM, keepdim=True)
    d_out = d / norm if normalize_directions else d
    if moment_normalization == 'official':
        m_out = m - (d_out * m).sum(dim=RAY_CHANNEL_DIM, keepdim=True) * d_out / norm
    elif moment_normalization == 'orthogonal':
        d_hat = d / norm
        m_out = m - (d_hat * m).sum(dim=RAY_CHANNEL_DIM, keepdim=True) * d_hat
    elif moment_normalization == 'none':
        m_out = m
    else:
        raise ValueError(f'unknown moment normalisation {moment_normalization!r}')
    return torch.cat((d_out, m_out), dim=RAY_CHANNEL_DIM)


def predict_x0(denoise: DenoiseFn, features: torch.Tensor, ndc: Optional[torch.Tensor],
               x_t: torch.Tensor, t: int, *, max_images_per_pass: int,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Raw x0 prediction (B, N, 6, P, P), chunked around image 0 when N > max_images_per_pass.

    Chunking (official): one ``randperm`` of images 1..N-1 from ``generator`` (global RNG when
    None), split into chunks of ``max_images_per_pass - 1``; each chunk is run with image 0
    first; image 0's prediction is averaged over the chunks. The same permutation is used for
    all B samples.
    """
    num_images = x_t.shape[1]
    if num_images <= max_images_per_pass:
        return denoise(features, x_t, t, ndc)
    if max_images_per_pass < 2:
        raise ValueError('max_images_per_pass must be at least 2 to chunk around image 0')
    order = torch.randperm(num_images - 1, generator=generator,
                           device=generator.device if generator is not None else 'cpu') + 1
    chunks = torch.split(order, max_images_per_pass - 1)
    x0 = torch.zeros_like(x_t)
    first = torch.zeros(1, dtype=order.dtype, device=order.device)
    for chunk in chunks:
        idx = torch.cat((first, chunk)).to(x_t.device)
        x0[:, idx] += denoise(features[:, idx], x_t[:, idx], t,
                              None if ndc is None else ndc[:, idx])
    x0[:, 0] /= len(chunks)
    return x0


def sampler_step(denoise: DenoiseFn, features: torch.Tensor, ndc: Optional[torch.Tensor],
                 x_t: torch.Tensor, t: int, t_prev: int, schedule: NoiseSchedule, *,
                 max_images_per_pass: int, generator: Optional[torch.Generator] = None,
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
    """One sampler step from x_t at timestep t to t_prev (-1 = clean end).

    Returns (x0_hat, x_prev): the normalised x0 prediction and
    clamp(w_x0 x0_hat + w_xt x_t, -clip, clip), both (B, N, 6, P, P).
    """
    cfg = schedule.config
    x0 = predict_x0(denoise, features, ndc, x_t, t, max_images_per_pass=max_images_per_pass,
                    generator=generator)
    x0 = normalize_rays(x0, cfg.normalize_directions, cfg.moment_normalization)
    w_x0, w_xt = schedule.posterior_coefficients(t, t_prev)
    x_prev = w_x0 * x0 + w_xt * x_t
    return x0, torch.clamp(x_prev, -cfg.clip_bound, cfg.clip_bound)


def sample_rays(denoise: DenoiseFn, features: torch.Tensor, ndc: Optional[torch.Tensor],
                schedule: NoiseSchedule, *, generator: Optional[torch.Generator] = None,
                x_T: Optional[torch.Tensor] = None, run_to_end: bool = False,
                record_loop_indices: Iterable[int] = (),
                max_images_per_pass: int = OFFICIAL_MAX_IMAGES_PER_PASS) -> SampleResult:
    """Run the ray sampler; returns the x0 prediction at ``return_timestep``.

    Args:
        denoise: the network, see :data:`DenoiseFn`.
        features: backbone features (B, N, F, P, P); B = independent samples drawn in one batch
            (expand one scene's features to draw several samples of it).
        ndc: NDC patch centres (B, N, 2, P, P), or None for a model without ``append_ndc``.
        schedule: noise schedule; its config also holds the sampler settings.
        generator: source of x_T, the unused per-step noise and chunk permutations (global RNG
            when None).
        x_T: initial rays (B, N, 6, P, P); drawn from ``generator`` when None.
        run_to_end: continue past ``return_timestep`` down to t = 0 (otherwise the loop stops
            after ``return_timestep`` or the last recorded loop index, whichever is later).
        record_loop_indices: loop indices whose (x_t, x0) are kept in ``trajectory``.
        max_images_per_pass: N above this triggers chunking around image 0.
    """
    cfg = schedule.config
    if cfg.regression:
        raise ValueError('this is a regression model: use regress_rays, not the sampler')
    shape = _check_inputs(features, ndc)
    if x_T is None:
        x_t = initial_noise(shape, generator, device=features.device)
    else:
        if tuple(x_T.shape) != shape:
            raise ValueError(f'x_T must have shape {shape}, got {tuple(x_T.shape)}')
        x_t = x_T.to(features)
    timesteps = schedule.sampling_timesteps()
    record = set(record_loop_indices)
    bad = sorted(k for k in record if not 0 <= k < len(timesteps))
    if bad:
        raise ValueError(f'record_loop_indices {bad} outside [0, {len(timesteps)})')
    last_k = len(timesteps) - 1 if run_to_end else max(
        [timesteps.index(cfg.return_timestep), *record])
    rays = None
    trajectory: Dict[int, SamplerSnapshot] = {}
    with torch.no_grad():
        for k, t in enumerate(timesteps[:last_k + 1]):
            if t > 0:
                initial_noise(shape, generator)  # sigma = 0: drawn only to keep the RNG in step
            t_prev = timesteps[k + 1] if k + 1 < len(timesteps) else -1
            x0, x_next = sampler_step(denoise, features, ndc, x_t, t, t_prev, schedule,
                                      max_images_per_pass=max_images_per_pass,
                                      generator=generator)
            if k in record:
                trajectory[k] = SamplerSnapshot(timestep=t, x_t=x_t, x0=x0)
            if t == cfg.return_timestep:
                rays = x0
            x_t = x_next
    return SampleResult(rays=rays, x_t=x_t, trajectory=trajectory, num_steps=last_k + 1)


def regress_rays(denoise: DenoiseFn, features: torch.Tensor, ndc: Optional[torch.Tensor],
                 schedule: NoiseSchedule, *, generator: Optional[torch.Generator] = None,
                 x_T: Optional[torch.Tensor] = None,
                 max_images_per_pass: int = OFFICIAL_MAX_IMAGES_PER_PASS) -> torch.Tensor:
    """Regression variant: one raw forward at t = max_timesteps on N(0, I) rays.

    features (B, N, F, P, P), ndc (B, N, 2, P, P) or None -> rays (B, N, 6, P, P), not normalised.
    """
    shape = _check_inputs(features, ndc)
    if x_T is None:
        x_T = initial_noise(shape, generator, device=features.device)
    elif tuple(x_T.shape) != shape:
        raise ValueError(f'x_T must have shape {shape}, got {tuple(x_T.shape)}')
    with torch.no_grad():
        return predict_x0(denoise, features, ndc, x_T.to(features), schedule.max_timesteps,
                          max_images_per_pass=max_images_per_pass, generator=generator)


def _check_rays(rays: torch.Tensor, name: str) -> None:
    if rays.ndim != 5 or rays.shape[RAY_CHANNEL_DIM] != RAY_DIM:
        raise ValueError(f'{name} must be (B, N, {RAY_DIM}, P, P), got {tuple(rays.shape)}')


def _check_inputs(features: torch.Tensor, ndc: Optional[torch.Tensor]) -> Tuple[int, ...]:
    """Validate features / ndc and return the ray shape (B, N, 6, P, P)."""
    if features.ndim != 5:
        raise ValueError(f'features must be (B, N, F, P, P), got {tuple(features.shape)}')
    B, N, _, P, Q = features.shape
    if ndc is not None and (ndc.ndim != 5 or ndc.shape[:2] != (B, N) or ndc.shape[3:] != (P, Q)):
        raise ValueError(f'ndc must be ({B}, {N}, 2, {P}, {Q}), got {tuple(ndc.shape)}')
    return (B, N, RAY_DIM, P, Q)
