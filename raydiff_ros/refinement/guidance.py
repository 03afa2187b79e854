"""Sampson-error guidance of the ray sampler's last steps (the PoseDiffusion idea on rays).

Given an x0 ray prediction (B, N, 6, P, P), the cameras are recovered as in the
known-intrinsics path of the geometry package (``rays_to_cameras_procrustes``: least-squares
ray intersection for the centres, Procrustes for the rotations) but in a form whose gradient is
finite: the geometry functions use ``eigh`` and ``svd``, whose gradients divide by differences
of eigenvalues / singular values, and those coincide for a symmetric patch grid with a centred
principal point (NaN gradients). Here the centre solves the 3x3 normal equations with
``torch.linalg.solve`` and the rotation is the orthogonal polar factor of the correlation
matrix by Newton's iteration ``X <- (X + X^-T) / 2`` (the Procrustes rotation when the factor
is proper). The robust (Cauchy) Sampson
error of verified matches under those cameras (``geometry.epipolar``, unit baselines) is
summed over the batch, and x0 moves down its gradient: ``x0 - step * grad``.
:func:`sample_rays_guided` runs the sampler and applies this correction to x0 in its last
``last_steps`` steps before x0 enters the posterior mean.
"""

from dataclasses import dataclass, field
import time
from typing import Optional

import numpy as np
import torch

from raydiff_ros.features.matching import PairMatches
from raydiff_ros.geometry import crop
from raydiff_ros.geometry.epipolar import homogeneous_sampson_residuals
from raydiff_ros.geometry.rays import camera_directions, points_on_rays, rays_from_spatial
from raydiff_ros.model.diffusion import (
    OFFICIAL_MAX_IMAGES_PER_PASS,
    NoiseSchedule,
    SampleResult,
    initial_noise,
    normalize_rays,
    predict_x0,
)

POLAR_ITERATIONS = 12
"""Newton steps of the polar decomposition (quadratic convergence from a scaled start)."""


def differentiable_cameras(rays: torch.Tensor, K: torch.Tensor, image_size: torch.Tensor,
                           crop_params: Optional[torch.Tensor]
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """World-to-camera R (..., N, 3, 3), t (..., N, 3) from rays with known intrinsics.

    Args:
        rays: (..., N, P*P, 6) Plücker rays (world frame), flat layout.
        K: (N, 3, 3) pixel intrinsics.
        image_size: (N, 2) (W, H).
        crop_params: (N, 4) crop parameters of the patch grid, or None (full square).
    """
    directions = rays[..., :3] / rays[..., :3].norm(dim=-1, keepdim=True)
    points = points_on_rays(rays)
    identity = torch.eye(3, dtype=rays.dtype, device=rays.device)
    projectors = identity - directions[..., :, None] * directions[..., None, :]
    normal = projectors.sum(dim=-3)
    right = (projectors @ points[..., None]).sum(dim=-3)
    centers = torch.linalg.solve(normal, right)[..., 0]
    pixels = crop.pixel_grid(crop_params, image_size, int(round(rays.shape[-2] ** 0.5)),
                             flatten=True).to(rays.dtype)
    camera = camera_directions(K, pixels)
    camera = camera / camera.norm(dim=-1, keepdim=True)
    correlation = camera.transpose(-1, -2) @ directions  # sum camera_i world_i^T
    rotation = correlation / correlation.norm(dim=(-2, -1), keepdim=True)
    for _ in range(POLAR_ITERATIONS):
        rotation = 0.5 * (rotation + torch.linalg.inv(rotation).transpose(-1, -2))
    return rotation, -(rotation @ centers[..., None])[..., 0]


@dataclass(frozen=True)
class GuidanceConfig:
    """Settings of the Sampson guidance.

    Attributes:
        step: gradient step on x0 (x0 units per unit of loss gradient).
        robust_scale_px: Cauchy scale c (pixels) of the loss
            ``sum c^2 / 2 log(1 + (r / c)^2)``, normalised by the number of matches.
        last_steps: sampler steps (counted from the end) whose x0 is corrected.
        iterations: gradient steps on x0 in each corrected sampler step.
    """

    step: float = 0.1
    robust_scale_px: float = 2.0
    last_steps: int = 10
    iterations: int = 1

    def __post_init__(self) -> None:
        if self.step <= 0 or self.robust_scale_px <= 0 or self.last_steps < 0:
            raise ValueError('step and robust_scale_px must be positive, last_steps >= 0')
        if self.iterations < 1:
            raise ValueError(f'iterations must be >= 1, got {self.iterations}')


@dataclass(frozen=True, eq=False)
class GuidanceProblem:
    """Everything fixed during guidance of one view set of N images.

    Attributes:
        K: (N, 3, 3) pixel intrinsics of the full images.
        image_size: (N, 2) (W, H) of the full images.
        crop_params: (N, 4) crop parameters of the rays' patch grid, or None (full square).
        matches: verified correspondences in full-image pixels (``match_view_set``).
    """

    K: torch.Tensor
    image_size: torch.Tensor
    crop_params: Optional[torch.Tensor]
    matches: list[PairMatches]

    def correspondences(self, dtype: torch.dtype,
                        device: Optional[torch.device] = None) -> tuple:
        """(pair_i (M,), pair_j (M,), x_i (M, 3), x_j (M, 3)) homogeneous pixels on
        ``device`` (CPU when None)."""
        sizes = [p.num_matches for p in self.matches]
        pair_i = torch.from_numpy(np.repeat([p.i for p in self.matches], sizes).astype(np.int64))
        pair_j = torch.from_numpy(np.repeat([p.j for p in self.matches], sizes).astype(np.int64))

        def homogeneous(points: list) -> torch.Tensor:
            stacked = torch.from_numpy(np.concatenate(points + [np.zeros((0, 2))]))
            return torch.cat([stacked, torch.ones(len(stacked), 1, dtype=stacked.dtype)],
                             dim=1).to(dtype)

        tensors = (pair_i, pair_j, homogeneous([p.points_i for p in self.matches]),
                   homogeneous([p.points_j for p in self.matches]))
        return tuple(tensor.to(device) for tensor in tensors)


def sampson_loss(x0: torch.Tensor, problem: GuidanceProblem,
                 config: GuidanceConfig) -> torch.Tensor:
    """Mean robust Sampson loss of the cameras recovered from rays, summed over the batch.

    Args:
        x0: (B, N, 6, P, P) rays in the model's spatial layout (world frame).
        problem: intrinsics, crops and matches of the view set.
        config: robust scale.

    Returns:
        Scalar tensor, differentiable with respect to x0.
    """
    if x0.dim() != 5 or x0.shape[2] != 6 or x0.shape[1] != problem.K.shape[0]:
        raise ValueError(f'x0 must have shape (B, {problem.K.shape[0]}, 6, P, P), got '
                         f'{tuple(x0.shape)}')
    if not problem.matches:
        return x0.sum() * 0.0
    rays = rays_from_spatial(x0)
    K = problem.K.to(x0)
    crop_params = None if problem.crop_params is None else problem.crop_params.to(x0.device)
    R, t = differentiable_cameras(rays, K, problem.image_size.to(x0.device), crop_params)
    pair_i, pair_j, x_i, x_j = problem.correspondences(x0.dtype, x0.device)
    K_inv = torch.linalg.inv(K)
    scale = config.robust_scale_px
    total = x0.new_zeros(())
    for sample in range(x0.shape[0]):
        residuals = homogeneous_sampson_residuals(R[sample], t[sample], K_inv, pair_i, pair_j,
                                                  x_i, x_j)
        total = total + 0.5 * scale ** 2 * torch.log1p((residuals / scale).square()).mean()
    return total


def guide_x0(x0: torch.Tensor, problem: GuidanceProblem,
             config: Optional[GuidanceConfig] = None) -> tuple[torch.Tensor, float]:
    """One guidance step: ``x0 - step * d loss / d x0`` (no gradient flows out).

    Args:
        x0: (B, N, 6, P, P) rays.
        problem: intrinsics, crops and matches.
        config: step and robust scale.

    Returns:
        The corrected (B, N, 6, P, P) rays and the loss before the step.
    """
    config = config or GuidanceConfig()
    with torch.enable_grad():
        variable = x0.detach().clone().requires_grad_(True)
        loss = sampson_loss(variable, problem, config)
        if not loss.requires_grad:
            return x0, float(loss)
        (gradient,) = torch.autograd.grad(loss, variable)
    return (x0 - config.step * gradient).detach(), float(loss.detach())


@dataclass
class GuidedSampleResult(SampleResult):
    """``SampleResult`` of :func:`sample_rays_guided` with what the guidance did.

    Attributes:
        guidance_seconds: wall time of the guidance steps (loss, gradient, update) alone.
        losses: Sampson loss (see :func:`sampson_loss`) before each gradient step, in order.
    """

    guidance_seconds: float = 0.0
    losses: list[float] = field(default_factory=list)


def sample_rays_guided(denoise, features: torch.Tensor, ndc: Optional[torch.Tensor],
                       schedule: NoiseSchedule, problem: GuidanceProblem,
                       config: Optional[GuidanceConfig] = None, *,
                       generator: Optional[torch.Generator] = None,
                       max_images_per_pass: int = OFFICIAL_MAX_IMAGES_PER_PASS
                       ) -> GuidedSampleResult:
    """The ray sampler (as ``diffusion.sample_rays``, down to the schedule's
    ``return_timestep``) with Sampson guidance of x0 in its last ``config.last_steps`` steps
    (``config.iterations`` gradient steps each).

    Args:
        denoise, features, ndc, schedule, generator, max_images_per_pass: as for
            ``diffusion.sample_rays``; features (B, N, F, P, P).
        problem: intrinsics, crops and matches of the N images.
        config: guidance settings.

    Returns:
        ``GuidedSampleResult`` whose ``rays`` are the guided x0 (B, N, 6, P, P) at
        ``return_timestep`` (no trajectory is recorded). The guidance runs in float32 at least
        and outside any autocast region (mixed-precision sampling keeps exact geometry).
    """
    config = config or GuidanceConfig()
    cfg = schedule.config
    if cfg.regression:
        raise ValueError('this is a regression model: guidance needs the sampler')
    batch, num = features.shape[:2]
    shape = (batch, num, 6) + tuple(features.shape[-2:])
    x_t = initial_noise(shape, generator, device=features.device)
    timesteps = schedule.sampling_timesteps()
    last_k = timesteps.index(cfg.return_timestep)
    first_guided = last_k + 1 - config.last_steps
    x0 = None
    guidance_seconds = 0.0
    losses = []
    for k, t in enumerate(timesteps[:last_k + 1]):
        if t > 0:
            initial_noise(shape, generator)  # keep the RNG in step with sample_rays
        t_prev = timesteps[k + 1] if k + 1 < len(timesteps) else -1
        with torch.no_grad():
            x0 = predict_x0(denoise, features, ndc, x_t, t,
                            max_images_per_pass=max_images_per_pass, generator=generator)
            x0 = normalize_rays(x0, cfg.normalize_directions, cfg.moment_normalization)
        if k >= first_guided:
            start = time.perf_counter()
            guided = x0.to(torch.promote_types(x0.dtype, torch.float32))
            with torch.autocast(x0.device.type, enabled=False):
                for _ in range(config.iterations):
                    guided, loss = guide_x0(guided, problem, config)
                    losses.append(loss)
            x0 = guided.to(x0.dtype)
            guidance_seconds += time.perf_counter() - start
        w_x0, w_xt = schedule.posterior_coefficients(t, t_prev)
        x_t = torch.clamp(w_x0 * x0 + w_xt * x_t, -cfg.clip_bound, cfg.clip_bound)
    return GuidedSampleResult(rays=x0, x_t=x_t, trajectory={}, num_steps=last_k + 1,
                              guidance_seconds=guidance_seconds, losses=losses)
