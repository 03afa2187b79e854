"""Typed configuration of ``raydiff-train`` (a YAML file; see ``config/train/*.yaml``).

Sections (every key optional except ``output_dir`` and ``data.train``):

``model``
    ``preset`` (``small`` / ``official``, :mod:`raydiff_ros.model.config`), ``overrides``
    (``{backbone: {...}, denoiser: {...}, diffusion: {...}}`` field replacements),
    ``init_from`` (a model folder in our format, e.g. an imported official checkpoint: its
    config is the base instead of the preset and its weights initialise the model; the
    fine-tuning path), ``backbone_from`` (a model folder whose backbone weights, e.g. the
    DINOv2 weights inside an imported official checkpoint, initialise the backbone of a model
    otherwise trained from scratch), ``train_backbone`` (False: the backbone is frozen, as
    officially).
``variant``
    ``diffusion`` (x0-prediction MSE at t ~ U{0..T-1}) or ``regression`` (t = T - 1, random
    input rays); sets the model's ``diffusion.regression``. ``camera_token``: the
    camera-ray-token model (:mod:`raydiff_ros.model.camera_token`) on the preset's backbone
    and transformer size, overrides of sections backbone / denoiser / camera_token.
    ``pose_diffusion``: the camera-parameter diffusion model
    (:mod:`raydiff_ros.model.pose_diffusion`) on the backbone and feature grid of the ray
    preset ``model.preset`` (so a ray run's feature cache is reused); ``model.overrides``
    sections ``backbone``, ``denoiser`` (the pose denoiser) and ``diffusion``; no
    ``init_from`` / ``backbone_from``.
``data``
    ``train`` (shard files or folders), ``val`` (held-out shards; if empty, the last
    ``holdout_sets`` training view sets are held out), ``views_per_sample`` (views normalised
    together), ``min_views`` / ``max_views`` (N per batch, uniform), ``crop_mode``,
    ``first_camera_frame``, ``num_workers`` (DataLoader processes), ``feature_cache`` (a
    file: train on backbone features computed once per view of fixed, unjittered crops; needs
    a frozen backbone; see :mod:`.feature_cache`), ``cached_crops_per_view`` (C >= 1, default
    1: crops cached per view with ``feature_cache``; 1 is the fixed, unjittered crop alone,
    C > 1 adds C - 1 deterministically jittered crops (the image dataset's crop jitter), of
    which every sample picks one per view at random; the cache is C times larger and takes
    C times longer to build).
``optim``
    ``iterations``, ``batch_size``, ``lr``, ``weight_decay``, ``warmup_iterations``,
    ``schedule`` (after the linear warm-up: ``constant`` at ``lr``, or ``cosine`` from ``lr``
    down to ``lr * final_lr_fraction`` at the last iteration), ``final_lr_fraction``,
    ``grad_clip_norm`` (0 = off), ``amp`` (``auto``: bfloat16 autocast on CUDA, off on CPU;
    ``off``, ``bf16``, ``fp16`` (with loss scaling)).
``validation``
    ``interval`` (iterations), ``num_sets``, ``num_views``, ``num_samples`` (diffusion samples
    per set), ``loss_timesteps`` (fixed t of the validation loss).
top level
    ``output_dir``, ``seed``, ``device`` (``auto``/``cpu``/``cuda``/``cuda:N``),
    ``log_interval``, ``checkpoint_interval``, ``keep_checkpoints``.

Relative paths are resolved against the current working directory.
"""

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
import typing
from typing import Any, Mapping, Union

import yaml

from raydiff_ros.data.normalization import FIRST_CAMERA_FRAMES
from raydiff_ros.data.training_samples import CROP_MODES, MIN_VIEWS
from raydiff_ros.parameter_fields import SCALAR_TYPES, scalar_value

VARIANTS = ('diffusion', 'regression', 'camera_token', 'pose_diffusion')
POSE_VARIANT = 'pose_diffusion'
AMP_MODES = ('auto', 'off', 'bf16', 'fp16')
LR_SCHEDULES = ('constant', 'cosine')
MODEL_SECTIONS = ('backbone', 'denoiser', 'diffusion', 'camera_token')


class TrainConfigError(ValueError):
    """The training configuration is invalid (the message names the key)."""


@dataclass(frozen=True)
class ModelSection:
    preset: str = 'small'
    overrides: dict = field(default_factory=dict)
    init_from: str = ''
    backbone_from: str = ''
    train_backbone: bool = False


@dataclass(frozen=True)
class DataSection:
    train: tuple = ()
    val: tuple = ()
    holdout_sets: int = 0
    views_per_sample: int = 8
    min_views: int = 2
    max_views: int = 8
    crop_mode: str = 'auto'
    first_camera_frame: str = 'pytorch3d'
    num_workers: int = 0
    feature_cache: str = ''
    cached_crops_per_view: int = 1


@dataclass(frozen=True)
class OptimSection:
    iterations: int = 1000
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_iterations: int = 0
    schedule: str = 'constant'
    final_lr_fraction: float = 0.0
    grad_clip_norm: float = 0.0
    amp: str = 'auto'


@dataclass(frozen=True)
class ValidationSection:
    interval: int = 500
    num_sets: int = 8
    num_views: int = 4
    num_samples: int = 1
    loss_timesteps: tuple = (10, 50, 90)


@dataclass(frozen=True)
class TrainConfig:
    output_dir: str = ''
    seed: int = 0
    device: str = 'auto'
    variant: str = 'diffusion'
    log_interval: int = 10
    checkpoint_interval: int = 500
    keep_checkpoints: int = 2
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    validation: ValidationSection = field(default_factory=ValidationSection)

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> dict:
        """Plain nested dictionary (tuples as lists), YAML-safe."""
        return _plain(asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise TrainConfigError(message)


def _validate(cfg: TrainConfig) -> None:
    _require(bool(cfg.output_dir), 'output_dir is required')
    _require(cfg.variant in VARIANTS, f'variant must be one of {VARIANTS}, got {cfg.variant!r}')
    _require(cfg.log_interval >= 1 and cfg.checkpoint_interval >= 1,
             'log_interval and checkpoint_interval must be positive')
    _require(cfg.keep_checkpoints >= 1, 'keep_checkpoints must be at least 1')
    data, optim, val = cfg.data, cfg.optim, cfg.validation
    _require(len(data.train) > 0, 'data.train needs at least one shard file or folder')
    _require(MIN_VIEWS <= data.min_views <= data.max_views <= data.views_per_sample,
             f'need {MIN_VIEWS} <= data.min_views <= data.max_views <= data.views_per_sample')
    _require(data.crop_mode in CROP_MODES, f'data.crop_mode must be one of {CROP_MODES}')
    _require(data.first_camera_frame in FIRST_CAMERA_FRAMES,
             f'data.first_camera_frame must be one of {FIRST_CAMERA_FRAMES}')
    _require(data.holdout_sets >= 0 and data.num_workers >= 0,
             'data.holdout_sets and data.num_workers must be non-negative')
    _require(optim.iterations >= 1 and optim.batch_size >= 1,
             'optim.iterations and optim.batch_size must be positive')
    _require(optim.lr > 0 and optim.weight_decay >= 0 and optim.warmup_iterations >= 0
             and optim.grad_clip_norm >= 0, 'optim: lr > 0, other values >= 0')
    _require(optim.schedule in LR_SCHEDULES,
             f'optim.schedule must be one of {LR_SCHEDULES}, got {optim.schedule!r}')
    _require(0.0 <= optim.final_lr_fraction <= 1.0,
             'optim.final_lr_fraction must be in [0, 1]')
    _require(optim.amp in AMP_MODES, f'optim.amp must be one of {AMP_MODES}')
    _require(val.interval >= 1 and val.num_sets >= 0 and val.num_samples >= 1,
             'validation.interval and num_samples must be positive, num_sets >= 0')
    _require(val.num_views >= MIN_VIEWS, f'validation.num_views must be at least {MIN_VIEWS}')
    unknown = sorted(set(cfg.model.overrides) - set(MODEL_SECTIONS))
    _require(not unknown, f'model.overrides has unknown section(s) {unknown}; known: '
             f'{MODEL_SECTIONS}')
    _require(data.cached_crops_per_view >= 1,
             f'data.cached_crops_per_view must be at least 1, got {data.cached_crops_per_view}')
    _require(data.cached_crops_per_view == 1 or bool(data.feature_cache),
             'data.cached_crops_per_view > 1 needs data.feature_cache (it sets the crops of the '
             'feature cache; without one, crops are jittered on the fly)')
    _require(not (data.feature_cache and cfg.model.train_backbone),
             'data.feature_cache needs a frozen backbone (model.train_backbone: false)')
    _require(cfg.model.preset != '' or cfg.model.init_from != '',
             'model needs a preset or init_from')
    _require(not (cfg.model.init_from and cfg.model.backbone_from),
             'model.init_from already sets the backbone: drop model.backbone_from')
    camera_token = cfg.variant == 'camera_token'
    _require(camera_token or 'camera_token' not in cfg.model.overrides,
             'model.overrides.camera_token needs variant camera_token')
    _require(not camera_token or not (cfg.model.init_from or 'diffusion' in cfg.model.overrides),
             'variant camera_token takes a model.preset (no init_from) and no diffusion overrides')
    _require(cfg.variant != POSE_VARIANT or not (cfg.model.init_from or cfg.model.backbone_from),
             'variant pose_diffusion takes model.preset only (no init_from, backbone_from)')


def _coerce(value: Any, annotation: Any, path: str) -> Any:
    if is_dataclass(annotation):
        return _from_dict(annotation, value, path)
    if annotation in SCALAR_TYPES:
        return scalar_value(value, annotation, path, TrainConfigError)
    if annotation is tuple:
        items = [value] if isinstance(value, (str, int, float)) else value
        _require(isinstance(items, (list, tuple)), f'{path} must be a list, got {value!r}')
        return tuple(items)
    if annotation is dict:
        _require(isinstance(value, Mapping), f'{path} must be a mapping, got {value!r}')
        return dict(value)
    raise TrainConfigError(f'{path}: unsupported type {annotation}')  # pragma: no cover


def _from_dict(cls: type, data: Any, path: str) -> Any:
    _require(isinstance(data, Mapping), f'{path or "config"} must be a mapping, got {data!r}')
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    _require(not unknown, f'unknown key(s) in {path or "config"}: {unknown}')
    values = {name: _coerce(value, hints[name], f'{path}.{name}' if path else name)
              for name, value in data.items()}
    if cls is TrainConfig:
        return TrainConfig(**values)
    return replace(cls(), **values)


def config_from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """Build a :class:`TrainConfig` from a nested mapping (unknown keys and bad types raise)."""
    return _from_dict(TrainConfig, data, '')


def load_train_config(path: Union[str, Path]) -> TrainConfig:
    """Read a YAML training configuration."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise TrainConfigError(f'cannot read {path}: {error}') from error
    except yaml.YAMLError as error:
        raise TrainConfigError(f'{path} is not valid YAML: {error}') from error
    return config_from_dict(data if data is not None else {})


def save_train_config(config: TrainConfig, path: Union[str, Path]) -> None:
    """Write ``config`` as YAML."""
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
