"""Helpers of the inference tests: tiny models, an oracle model, synthetic camera rigs."""

import numpy as np
from scipy.spatial.transform import Rotation
from tiny_models import random_model  # noqa: F401 (re-exported for the tests)
from tiny_models import tiny_config as _tiny_config
import torch

from raydiff_ros.geometry.camera import Cameras
from raydiff_ros.geometry.rays import cameras_to_rays, rays_to_spatial
from raydiff_ros.inference.preprocess import CropConfig, preprocess_views
from raydiff_ros.model.config import RayDiffusionConfig
from raydiff_ros.model.network import RayDiffusionModel

IMAGE_SIZE_WH = (160, 120)
FOCAL_PX = 150.0
INFERENCE_MAX_IMAGES = 8
SAMPLING_STRIDE = 10


def tiny_config(**diffusion) -> RayDiffusionConfig:
    """A one-block model with an 8-step sampler: the whole engine runs in milliseconds."""
    return _tiny_config(denoiser_depth=1, max_images=INFERENCE_MAX_IMAGES,
                        sampling_stride=SAMPLING_STRIDE, **diffusion)


class OracleModel(RayDiffusionModel):
    """A model whose denoiser always predicts the true rays of a known camera set.

    Everything else (backbone, sampler, crop handling, rays to cameras) is the real code, so an
    engine run must give back the true cameras.
    """

    def __init__(self, config: RayDiffusionConfig, true_rays: torch.Tensor) -> None:
        super().__init__(config)
        self.true_rays = true_rays            # (N, 6, P, P)

    def forward(self, features, rays_noisy, t, ndc=None):
        return self.true_rays.to(rays_noisy).expand_as(rays_noisy).clone()


def look_at_rig(num: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera (R (N, 3, 3), t (N, 3)) of cameras around the origin, looking at it."""
    rng = np.random.default_rng(seed)
    R = np.empty((num, 3, 3))
    t = np.empty((num, 3))
    for k in range(num):
        azimuth, elevation = rng.uniform(-0.8, 0.8), rng.uniform(-0.3, 0.3)
        center = 3.0 * np.array([np.sin(azimuth), np.sin(elevation), -np.cos(azimuth)])
        forward = -center / np.linalg.norm(center)
        right = np.cross([0.0, 1.0, 0.0], forward)
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        roll = Rotation.from_rotvec(forward * rng.uniform(-0.2, 0.2)).as_matrix()
        R[k] = np.stack([right, down, forward]) @ roll.T
        t[k] = -R[k] @ center
    return R, t


def rig_images(num: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    width, height = IMAGE_SIZE_WH
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(num)]


def rig_intrinsics(num: int) -> np.ndarray:
    width, height = IMAGE_SIZE_WH
    K = np.array([[FOCAL_PX, 0.0, width / 2 + 7.0], [0.0, FOCAL_PX * 1.02, height / 2 - 5.0],
                  [0.0, 0.0, 1.0]])
    return np.broadcast_to(K, (num, 3, 3)).copy()


def oracle_for(images, R, t, K, config: RayDiffusionConfig) -> OracleModel:
    """An OracleModel predicting the rays of cameras (R, t, K) on the engine's own crops."""
    crop = CropConfig(input_size=config.backbone.image_size)
    views = preprocess_views(images, crop, num_patches=config.denoiser.num_patches)
    cameras = Cameras(torch.from_numpy(R), torch.from_numpy(t), torch.from_numpy(K),
                      views.image_sizes)
    rays = cameras_to_rays(cameras, views.crop_params.double(),
                           num_patches=config.denoiser.num_patches)
    model = OracleModel(config, rays_to_spatial(rays).float())
    return model.eval()
