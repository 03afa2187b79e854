"""Camera-ray-token model (Kim and Ha, Electronics 2025): poses from learned camera tokens.

The ray transformer of :mod:`raydiff_ros.model.dit` (DiT blocks with adaLN), used without
diffusion timesteps like the ray *regression* variant, gets one extra token per image: a
learned **camera token** (one vector for view 0, the reference, one shared by the other
views) plus the mean of its own image's embedded patch tokens, and the image-index sinusoid of
:mod:`.dit`. Every token attends to every other, so a camera token sees its own image's patch
tokens and all other images. The pooled patches make each camera token its image's from the
first step: without them every camera token of views 1..N-1 starts as the same vector, sees
the same average of all images through the initially uniform attention, and training on
``config/train/camera_token_cpu.yaml`` collapsed to one rotation for every view (relative
rotations all 0, validation rotation error constant at 78.9 deg over 6000 iterations; see
models/README.md). Outputs of one forward pass (no sampling):

* rotation: a head on the camera token gives 6 numbers, two 3-vectors turned into a rotation
  matrix by Gram-Schmidt (the continuous "6D" parameterisation of Zhou et al. 2019): the
  output is a rotation for any input, nothing to bound or clip. The two vectors are the first
  two columns of R.
* translation: a head on the camera token gives ``t`` (3,) directly.
* rays: the DiT final layer on the patch tokens gives Plücker rays (B, N, 6, P, P), trained
  with the regression ray loss as an auxiliary objective.

``R`` and ``t`` are ``camera_T_normalized``: world-to-camera in OpenCV axes, the world being
the normalised training frame of the ray models (:mod:`raydiff_ros.data.normalization`:
origin at the optical axes' intersection, camera 0 at distance 1 from it, camera 0's rotation
fixed by ``first_camera_frame``).

Token input: ``[backbone feature (F), NDC patch centre (2, optional)]`` per patch; no ray
channels (there is nothing to denoise). The DiT's timestep embedding is replaced by one
learned conditioning vector.

Configuration: :class:`CameraTokenModelConfig` = the ray models' :class:`BackboneConfig` and
:class:`DenoiserConfig` (the transformer's size; its timestep fields are unused) and a
:class:`CameraTokenConfig` section (the objective's weights). Checkpoints use the project's
format (``config.yaml`` + ``model.safetensors``, :mod:`.checkpoint`), the config having a
``camera_token`` section instead of ``diffusion``, so each loader refuses the other's folders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
from torch import nn
import yaml

from raydiff_ros.geometry.camera_encoding import matrix_to_rotation_6d, rotation_6d_to_matrix
from raydiff_ros.model.checkpoint import (
    CheckpointError,
    StateDictMismatchError,
    load_model_folder,
    model_from_state,
    stored_state,
    stored_state_shapes,
    write_model_files,
)
from raydiff_ros.model.config import (
    NDC_DIM,
    RAY_DIM,
    BackboneConfig,
    BackboneDenoiserSections,
    ConfigError,
    DenoiserConfig,
    _dataclass_from_dict,
    preset,
)
from raydiff_ros.model.dit import DiTBlock, FinalLayer, sinusoid_table
from raydiff_ros.model.network import backbone_features, build_backbone

PathLike = Union[str, 'os.PathLike[str]']

# The 6D rotation parameterisation is the geometry layer's, same convention (the first two
# columns of R, concatenated; decoded by Gram-Schmidt), under the camera-token names.
rotation_from_6d = rotation_6d_to_matrix
rotation_to_6d = matrix_to_rotation_6d

SECTION = 'camera_token'
"""Name of the config section that marks a camera-token model folder."""
ROTATION_6D_DIM = 6
TRANSLATION_DIM = 3
NUM_CAMERA_TOKENS = 2
"""Learned camera tokens: row 0 for view 0 (the reference), row 1 for every other view."""
IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CAMERA_TOKEN_INIT_STD = 0.02


# --------------------------------------------------------------------------------------------
# configuration

@dataclass(frozen=True)
class CameraTokenConfig:
    """Weights of the training objective ``w_R L_R + w_t L_t + w_ray L_ray`` (stored with the
    model so a checkpoint says how it was trained; see :func:`camera_token_losses`)."""

    rotation_weight: float = 1.0
    translation_weight: float = 1.0
    ray_weight: float = 1.0
    """Auxiliary ray loss (the regression ray MSE); 0 turns it off."""

    def __post_init__(self) -> None:
        for name in ('rotation_weight', 'translation_weight', 'ray_weight'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0.0 <= float(value) < float('inf'):
                raise ConfigError(f'camera_token.{name} must be finite and >= 0, got {value!r}')
        if self.rotation_weight + self.translation_weight <= 0:
            raise ConfigError('camera_token: rotation_weight + translation_weight must be > 0')


@dataclass(frozen=True)
class CameraTokenModelConfig(BackboneDenoiserSections):
    """Whole camera-token model: backbone -> ray transformer with camera tokens -> heads."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    camera_token: CameraTokenConfig = field(default_factory=CameraTokenConfig)


_SECTIONS = {'backbone': BackboneConfig, 'denoiser': DenoiserConfig, SECTION: CameraTokenConfig}


def camera_token_config_from_dict(data: Mapping[str, Any]) -> CameraTokenModelConfig:
    """Build a :class:`CameraTokenModelConfig` from a nested mapping; the ``camera_token``
    section is required (it tells this model from a ray model), the others default."""
    if not isinstance(data, Mapping):
        raise ConfigError(f'model config must be a mapping, got {type(data).__name__}')
    if SECTION not in data:
        raise ConfigError(f'not a camera-token model config: no {SECTION!r} section (found '
                          f'{sorted(map(str, data))}; a ray model is loaded by ray_diffusion)')
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f'unknown camera-token model config section(s): {unknown}')
    return CameraTokenModelConfig(**{name: _dataclass_from_dict(cls, data[name], name)
                                     for name, cls in _SECTIONS.items() if name in data})


def camera_token_preset(name: str, **sections: Mapping[str, Any]) -> CameraTokenModelConfig:
    """The backbone and transformer size of the ray preset ``name`` (``lite``, ``dinov2_cpu``,
    ...) with default camera-token heads, then field overrides per section."""
    base = preset(name)
    merged = CameraTokenModelConfig(base.backbone, base.denoiser).to_dict()
    for section, values in sections.items():
        if section not in merged:
            raise ConfigError(f'unknown camera-token model config section {section!r}; known: '
                              f'{sorted(merged)}')
        merged[section].update(values)
    return camera_token_config_from_dict(merged)


# --------------------------------------------------------------------------------------------
# network

@dataclass
class CameraTokenOutput:
    """One forward pass for B sets of N views.

    rotation: (B, N, 3, 3) and translation (B, N, 3): ``camera_T_normalized``;
    rotation_6d: (B, N, 6) the raw head output; rays: (B, N, 6, P, P) auxiliary rays.
    """

    rotation: torch.Tensor
    translation: torch.Tensor
    rotation_6d: torch.Tensor
    rays: torch.Tensor


class CameraRayTransformer(nn.Module):
    """The DiT of :mod:`.dit` over ``N * (1 + P*P)`` tokens (image-major; per image its
    camera token, then its patches row-major), a learned constant in place of the timestep
    conditioning, a ray head on patch tokens and pose heads on camera tokens."""

    def __init__(self, config: CameraTokenModelConfig) -> None:
        super().__init__()
        den = config.denoiser
        dim = den.hidden_size
        self.config = config
        self.in_channels = den.feature_dim + (NDC_DIM if den.append_ndc else 0)
        self.x_embedder = nn.Linear(self.in_channels, dim)
        self.register_buffer('image_pos_table', sinusoid_table(
            den.max_num_images, dim, den.image_index_base), persistent=False)
        self.register_buffer('token_pos_table', sinusoid_table(
            den.tokens_per_image, dim, den.patch_index_base), persistent=False)
        self.camera_tokens = nn.Parameter(torch.zeros(NUM_CAMERA_TOKENS, dim))
        self.condition = nn.Parameter(torch.zeros(dim))
        self.blocks = nn.ModuleList(DiTBlock(den) for _ in range(den.depth))
        self.final_layer = FinalLayer(den)
        self.camera_norm = nn.LayerNorm(dim, eps=den.layer_norm_eps)
        self.rotation_head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(),
                                           nn.Linear(dim, ROTATION_6D_DIM))
        self.translation_head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(),
                                              nn.Linear(dim, TRANSLATION_DIM))

    @torch.no_grad()
    def initialize(self) -> None:
        """Training start: Xavier linears with zero biases, adaLN-Zero blocks and ray layer
        (identity blocks, rays 0), camera tokens N(0, 0.02^2), identity rotation and zero
        translation from the heads."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        for layer in (self.final_layer.adaLN_modulation[-1], self.final_layer.linear,
                      self.rotation_head[-1], self.translation_head[-1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.rotation_head[-1].bias.copy_(torch.tensor(IDENTITY_6D))
        nn.init.normal_(self.camera_tokens, std=CAMERA_TOKEN_INIT_STD)
        nn.init.zeros_(self.condition)

    def image_positions(self, num_images: int) -> torch.Tensor:
        """Image-index table (num_images, H); rebuilt when num_images exceeds the stored rows."""
        if num_images <= self.image_pos_table.shape[0]:
            return self.image_pos_table[:num_images]
        den = self.config.denoiser
        return sinusoid_table(num_images, den.hidden_size,
                              den.image_index_base).to(self.image_pos_table)

    def forward(self, tokens: torch.Tensor) -> CameraTokenOutput:
        """tokens (B, N, C_in, P, P), channels [feature, ndc] -> :class:`CameraTokenOutput`."""
        P = self.config.denoiser.num_patches
        if tokens.ndim != 5 or tokens.shape[2:] != (self.in_channels, P, P):
            raise ValueError(f'tokens must be (B, N, {self.in_channels}, {P}, {P}), got '
                             f'{tuple(tokens.shape)}')
        B, N = tokens.shape[:2]
        dim = self.config.denoiser.hidden_size
        patches = self.x_embedder(tokens.permute(0, 1, 3, 4, 2).reshape(B, N, P * P, -1))
        which = torch.ones(N, dtype=torch.long, device=tokens.device)
        which[0] = 0
        pooled = patches.mean(dim=2, keepdim=True)                         # (B, N, 1, H)
        cameras = self.camera_tokens[which].to(patches.dtype)[None, :, None] + pooled
        patches = patches + self.token_pos_table[None, None]
        x = torch.cat((cameras, patches), dim=2) + self.image_positions(N)[None, :, None]
        x = x.reshape(B, N * (1 + P * P), dim)
        c = self.condition.to(x.dtype)[None].expand(B, dim)
        for block in self.blocks:
            x = block(x, c)
        x = x.reshape(B, N, 1 + P * P, dim)
        camera = self.camera_norm(x[:, :, 0])
        rotation_6d = self.rotation_head(camera).float()
        rays = self.final_layer(x[:, :, 1:].reshape(B, N * P * P, dim), c)
        return CameraTokenOutput(
            rotation=rotation_from_6d(rotation_6d), rotation_6d=rotation_6d,
            translation=self.translation_head(camera).float(),
            rays=rays.reshape(B, N, P, P, RAY_DIM).permute(0, 1, 4, 2, 3))


class CameraTokenModel(nn.Module):
    """Backbone + :class:`CameraRayTransformer`, built from a :class:`CameraTokenModelConfig`.

    State-dict layout: ``backbone.*`` (as the ray models; not stored for a packaged
    backbone) and ``transformer.*``.
    """

    def __init__(self, config: CameraTokenModelConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = build_backbone(config.backbone)
        self.transformer = CameraRayTransformer(config)

    @property
    def num_patches(self) -> int:
        return self.config.denoiser.num_patches

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, N, 3, S, S) in [-1, 1] -> features (B, N, F, P, P) (resized bilinearly to
        P x P as the ray models do)."""
        return backbone_features(self.backbone, images, self.num_patches)

    def forward(self, features: torch.Tensor,
                ndc: Optional[torch.Tensor] = None) -> CameraTokenOutput:
        """features (B, N, F, P, P), ndc (B, N, 2, P, P) (required when the config appends
        NDC coordinates) -> :class:`CameraTokenOutput`."""
        B, N = features.shape[:2]
        P = self.num_patches
        den = self.config.denoiser
        if features.ndim != 5 or tuple(features.shape) != (B, N, den.feature_dim, P, P):
            raise ValueError(f'features must be (B, N, {den.feature_dim}, {P}, {P}), got '
                             f'{tuple(features.shape)}')
        parts = [features]
        if den.append_ndc:
            if ndc is None or tuple(ndc.shape) != (B, N, NDC_DIM, P, P):
                raise ValueError(f'ndc must be (B, N, 2, {P}, {P}) for this model, got '
                                 f'{None if ndc is None else tuple(ndc.shape)}')
            parts.append(ndc.to(features.dtype))
        return self.transformer(torch.cat(parts, dim=2))


# --------------------------------------------------------------------------------------------
# objective (pure, batched)

def camera_token_losses(output: CameraTokenOutput, R: torch.Tensor, t: torch.Tensor,
                        rays: Optional[torch.Tensor],
                        config: CameraTokenConfig) -> Dict[str, torch.Tensor]:
    """The training objective of one batch.

    Args:
        output: the model's output for B sets of N views.
        R: (B, N, 3, 3) and t: (B, N, 3) true ``camera_T_normalized``.
        rays: (B, N, 6, P, P) target rays, or None (then no ray term).
        config: the weights.

    Returns:
        scalars (float32): ``rotation`` = mean squared Frobenius distance |R_pred - R|^2
        (= 4 (1 - cos angle)), ``translation`` = mean squared distance |t_pred - t|^2,
        ``rays`` = mean squared error per element (the regression ray loss), and ``total``
        = the weighted sum.
    """
    if R.shape != output.rotation.shape or t.shape != output.translation.shape:
        raise ValueError(f'need R {tuple(output.rotation.shape)} and t '
                         f'{tuple(output.translation.shape)}, got {tuple(R.shape)} and '
                         f'{tuple(t.shape)}')
    rotation = ((output.rotation - R.float()) ** 2).sum(dim=(-2, -1)).mean()
    translation = ((output.translation - t.float()) ** 2).sum(dim=-1).mean()
    losses = {'rotation': rotation, 'translation': translation}
    total = config.rotation_weight * rotation + config.translation_weight * translation
    if rays is not None:
        losses['rays'] = torch.mean((output.rays.float() - rays.float()) ** 2)
        total = total + config.ray_weight * losses['rays']
    losses['total'] = total
    return losses


# --------------------------------------------------------------------------------------------
# checkpoints (the project format of :mod:`.checkpoint`)

def expected_state_shapes(config: CameraTokenModelConfig) -> Dict[str, Tuple[int, ...]]:
    """Key -> shape of every stored tensor of the model ``config`` describes."""
    return stored_state_shapes(lambda: CameraTokenModel(config))


def _validate_state(state: Mapping[str, torch.Tensor], config: CameraTokenModelConfig,
                    source: str) -> None:
    expected = expected_state_shapes(config)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f'{key} (shape {tuple(state[key].shape)}, dtype {state[key].dtype}; expected '
             f'{expected[key]}, floating point)' for key in sorted(set(expected) & set(state))
             if tuple(state[key].shape) != expected[key] or not state[key].is_floating_point()]
    if missing or unexpected or wrong:
        raise StateDictMismatchError(source, missing, unexpected, wrong)


def save_camera_token_model(model: CameraTokenModel, out_dir: PathLike,
                            overwrite: bool = False) -> None:
    """Write ``config.yaml`` and ``model.safetensors`` (float32, format metadata and SHA-256
    as :func:`raydiff_ros.model.checkpoint.save_model_dir`) into ``out_dir``."""
    state = stored_state(model)
    _validate_state(state, model.config, 'state dict to save')
    write_model_files(out_dir, state, model.config, overwrite=overwrite)


def load_camera_token_state(model_dir: PathLike, verify: bool = True,
                            ) -> Tuple[CameraTokenModelConfig, Dict[str, torch.Tensor]]:
    """(config, state dict) of a camera-token model folder, validated (CheckpointError)."""
    return load_model_folder(model_dir, _read_camera_token_config, _validate_state,
                             verify=verify)


def _read_camera_token_config(config_path: Path) -> CameraTokenModelConfig:
    try:
        data = yaml.safe_load(config_path.read_text())
        return camera_token_config_from_dict(data if data is not None else {})
    except (ConfigError, yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f'{config_path} is not a valid camera-token model config: '
                              f'{exc}') from exc


def load_camera_token_model(model_dir: PathLike, device: Union[str, torch.device] = 'cpu',
                            verify: bool = True) -> CameraTokenModel:
    """Build a :class:`CameraTokenModel` from a model folder (in eval mode)."""
    config, state = load_camera_token_state(model_dir, verify=verify)
    return model_from_state(lambda: CameraTokenModel(config), state, device)
