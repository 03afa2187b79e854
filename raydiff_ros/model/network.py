"""The whole ray-diffusion model: backbone (DINOv2 or EfficientNet-Lite0) + DiT denoiser +
noise schedule.

Equivalent to the released ``RayDiffuser``: ``features(images)`` computes the backbone feature
maps once per image set, ``forward(features, rays_noisy, t, ndc)`` is one denoiser evaluation,
and ``predict_rays`` runs the sampler (or the one-step regression model) on those features.

State-dict layout (our format): ``backbone.*`` (DINOv2 names), ``denoiser.*`` (DiT names). The
schedule and the two sinusoid tables are rebuilt from the config and never stored.
"""

from __future__ import annotations

from typing import Iterable, Optional, Union

import torch
from torch import nn

from raydiff_ros.model.config import NDC_DIM, RAY_DIM, BackboneConfig, RayDiffusionConfig
from raydiff_ros.model.diffusion import (
    NoiseSchedule,
    SampleResult,
    initial_noise,
    regress_rays,
    sample_rays,
)
from raydiff_ros.model.dinov2 import DinoV2Backbone
from raydiff_ros.model.dit import RayDiT
from raydiff_ros.model.efficientnet import EfficientNetFeatures

FEATURE_RESIZE_MODE = 'bilinear'


def build_backbone(config: BackboneConfig) -> nn.Module:
    """The image backbone a config names: DINOv2 or the packaged EfficientNet-Lite0 (shared by
    the ray, camera-token and pose-diffusion models; their ``backbone`` submodule)."""
    return DinoV2Backbone(config) if config.kind == 'dinov2' else EfficientNetFeatures()


def backbone_features(backbone: nn.Module, images: torch.Tensor,
                      num_patches: int) -> torch.Tensor:
    """Backbone feature maps for image sets.

    images (B, N, 3, H, W) in [-1, 1] (H, W multiples of the patch size; 224 x 224 for the
    official model) -> features (B, N, F, P, P), P = ``num_patches``, e.g. (B, N, 384, 16, 16).
    A token grid other than P x P is resized bilinearly to P x P (the official ``autoresize``).
    """
    if images.ndim != 5:
        raise ValueError(f'images must be (B, N, 3, H, W), got {tuple(images.shape)}')
    B, N = images.shape[:2]
    feats = backbone(images.reshape(B * N, *images.shape[2:]))
    P = num_patches
    if feats.shape[-2:] != (P, P):
        feats = nn.functional.interpolate(feats, size=(P, P), mode=FEATURE_RESIZE_MODE,
                                          align_corners=False)
    return feats.reshape(B, N, *feats.shape[1:])


class RayDiffusionModel(nn.Module):
    """Backbone + denoiser + schedule, built from a :class:`RayDiffusionConfig`."""

    def __init__(self, config: RayDiffusionConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone)
        self.denoiser = RayDiT(config.denoiser)
        self.schedule = NoiseSchedule(config.diffusion)

    @property
    def num_patches(self) -> int:
        return self.config.denoiser.num_patches

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone feature maps for image sets.

        images (B, N, 3, H, W) in [-1, 1] (H, W multiples of the patch size; 224 x 224 for the
        official model) -> features (B, N, F, P, P), e.g. (B, N, 384, 16, 16). A token grid other
        than P x P is resized bilinearly to P x P (the official ``autoresize``).
        """
        return backbone_features(self.backbone, images, self.num_patches)

    def forward(self, features: torch.Tensor, rays_noisy: torch.Tensor,
                t: Union[int, torch.Tensor], ndc: Optional[torch.Tensor] = None) -> torch.Tensor:
        """One denoiser pass: x0 prediction (B, N, 6, P, P), raw (not normalised).

        features (B, N, F, P, P); rays_noisy (B, N, 6, P, P) channels [d, m]; t an int or B (or
        1) integer timesteps; ndc (B, N, 2, P, P) NDC patch centres (x', y'), required when the
        config appends them, ignored otherwise.
        """
        B, N = features.shape[:2]
        P = self.num_patches
        expected = {'features': (B, N, self.config.denoiser.feature_dim, P, P),
                    'rays_noisy': (B, N, RAY_DIM, P, P)}
        parts = [features, rays_noisy]
        if self.config.denoiser.append_ndc:
            if ndc is None:
                raise ValueError('this model appends NDC coordinates: ndc is required')
            expected['ndc'] = (B, N, NDC_DIM, P, P)
            parts.append(ndc)
        for (name, shape), tensor in zip(expected.items(), parts, strict=True):
            if tuple(tensor.shape) != shape:
                raise ValueError(f'{name} must have shape {shape}, got {tuple(tensor.shape)}')
        return self.denoiser(torch.cat(parts, dim=2), t)

    def predict_rays(self, features: torch.Tensor, ndc: Optional[torch.Tensor], *,
                     num_samples: int = 1, generator: Optional[torch.Generator] = None,
                     x_T: Optional[torch.Tensor] = None, run_to_end: bool = False,
                     record_loop_indices: Iterable[int] = ()) -> SampleResult:
        """Sample rays for ONE image set, ``num_samples`` samples in one batch.

        features (N, F, P, P) (e.g. ``self.features(images[None])[0]``), ndc (N, 2, P, P) ->
        ``SampleResult`` whose ``rays`` are (num_samples, N, 6, P, P). x_T, when given, is
        (num_samples, N, 6, P, P). A regression config runs its single forward instead (the
        result then has an empty trajectory and ``x_t`` = the random input).
        """
        if features.ndim != 4:
            raise ValueError(f'features must be (N, F, P, P), got {tuple(features.shape)}')
        if num_samples < 1:
            raise ValueError(f'num_samples must be positive, got {num_samples}')
        batch_features = features.unsqueeze(0).expand(num_samples, *features.shape)
        batch_ndc = None if ndc is None else ndc.unsqueeze(0).expand(num_samples, *ndc.shape)
        max_per_pass = self.config.denoiser.max_num_images
        if self.config.diffusion.regression:
            if x_T is None:
                shape = (num_samples, features.shape[0], RAY_DIM, *features.shape[2:])
                x_T = initial_noise(shape, generator, device=features.device)
            rays = regress_rays(self, batch_features, batch_ndc, self.schedule,
                                generator=generator, x_T=x_T, max_images_per_pass=max_per_pass)
            return SampleResult(rays=rays, x_t=x_T, num_steps=1)
        return sample_rays(self, batch_features, batch_ndc, self.schedule, generator=generator,
                           x_T=x_T, run_to_end=run_to_end,
                           record_loop_indices=record_loop_indices,
                           max_images_per_pass=max_per_pass)
