"""Tiny camera-token models for fast tests."""

from tiny_models import TINY_FEATURE_DIM, TINY_IMAGE_SIZE, TINY_PATCHES, randomize

from raydiff_ros.model.camera_token import CameraTokenModel, CameraTokenModelConfig
from raydiff_ros.model.config import BackboneConfig, DenoiserConfig


def tiny_camera_token_config(depth: int = 1, max_images: int = 8) -> CameraTokenModelConfig:
    """A 56 x 56 DINOv2-shaped backbone of one block and a transformer of width 32."""
    return CameraTokenModelConfig(
        backbone=BackboneConfig(image_size=TINY_IMAGE_SIZE, embed_dim=TINY_FEATURE_DIM,
                                depth=1, num_heads=2, pos_embed_grid=5),
        denoiser=DenoiserConfig(depth=depth, hidden_size=32, num_heads=2,
                                num_patches=TINY_PATCHES, max_num_images=max_images,
                                feature_dim=TINY_FEATURE_DIM))


def random_camera_token_model(config: CameraTokenModelConfig,
                              seed: int = 0) -> CameraTokenModel:
    """Every parameter N(0, INIT_STD^2) from ``seed`` (varied outputs per view), eval mode."""
    return randomize(CameraTokenModel(config), seed)
