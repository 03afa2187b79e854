"""Weight initialisation for training a model from scratch.

Denoiser (DiT recipe, Peebles & Xie 2023): Xavier-uniform linear weights with zero biases,
N(0, 0.02^2) timestep-MLP weights, and zero adaLN modulations and output layer (adaLN-Zero:
every block starts as the identity and the first prediction is 0).

Backbone (only used when no pretrained DINOv2 weights are loaded): truncated-normal(0.02)
linear, patch-embedding and positional weights, zero biases, unit LayerNorms and LayerScale
``gamma = LAYERSCALE_INIT``.
"""

from typing import Union

import torch
from torch import nn

from raydiff_ros.model.camera_token import CameraTokenModel
from raydiff_ros.model.network import RayDiffusionModel
from raydiff_ros.model.pose_diffusion import PoseDiffusionModel

TIMESTEP_INIT_STD = 0.02
BACKBONE_INIT_STD = 0.02
LAYERSCALE_INIT = 0.1


@torch.no_grad()
def initialize_denoiser(model: RayDiffusionModel) -> None:
    """DiT adaLN-Zero initialisation of ``model.denoiser`` (in place)."""
    denoiser = model.denoiser
    for module in denoiser.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    for layer in denoiser.t_embedder.mlp:
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, std=TIMESTEP_INIT_STD)
    for block in denoiser.blocks:
        nn.init.zeros_(block.adaLN_modulation[-1].weight)
        nn.init.zeros_(block.adaLN_modulation[-1].bias)
    final = denoiser.final_layer
    for layer in (final.adaLN_modulation[-1], final.linear):
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)


@torch.no_grad()
def initialize_backbone(model: Union[RayDiffusionModel, PoseDiffusionModel]) -> None:
    """Random ViT initialisation of ``model.backbone`` (in place)."""
    backbone = model.backbone
    for module in backbone.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(module.weight, std=BACKBONE_INIT_STD)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    nn.init.trunc_normal_(backbone.pos_embed, std=BACKBONE_INIT_STD)
    nn.init.trunc_normal_(backbone.cls_token, std=BACKBONE_INIT_STD)
    for name, parameter in backbone.named_parameters():
        if name.endswith('gamma'):
            nn.init.constant_(parameter, LAYERSCALE_INIT)


def initialize_model(model: Union[RayDiffusionModel, CameraTokenModel]) -> None:
    """Initialise a freshly built model for training: the denoiser (or the camera-token
    transformer, its own ``initialize``) from scratch; the backbone from scratch (DINOv2 ViT)
    or with its packaged pretrained weights (EfficientNet-Lite0)."""
    if model.config.backbone.weights_in_checkpoint:
        initialize_backbone(model)
    else:
        model.backbone.load_pretrained()
    if isinstance(model, CameraTokenModel):
        model.transformer.initialize()
    else:
        initialize_denoiser(model)


def initialize_pose_model(model: PoseDiffusionModel) -> None:
    """A fresh pose-diffusion model for training: the backbone as in :func:`initialize_model`;
    the pose denoiser keeps its constructor's initialisation (adaLN-Zero blocks)."""
    if model.config.backbone.weights_in_checkpoint:
        initialize_backbone(model)
    else:
        model.backbone.load_pretrained()
