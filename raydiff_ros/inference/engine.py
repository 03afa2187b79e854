"""The pose estimation engine: 2..N images (+ optional K) in, cameras out.

``PoseEstimator`` loads a model once (our model folder, or a ``RayDiffusionModel``), warms it
up once, and then estimates view sets: crop and resize (:mod:`.preprocess`), backbone features
once per set, ``num_samples`` diffusion samples drawn in ONE batch, rays to cameras (Procrustes
with known intrinsics, the robot case; homography + QR when intrinsics are unknown), and the
result expressed in the first camera's optical frame.

Frames and units of the result: ``reference_T_camera[k]`` (4x4) is the pose of camera k's
optical frame (OpenCV/ROS: x right, y down, z forward) in camera 0's optical frame, so
``reference_T_camera[0]`` is the identity. Ray diffusion fixes poses only up to scale: every
sample is scaled so that the mean distance of cameras 1..N-1 from camera 0 is 1 (the
"reference unit"); metric scale is set downstream (known baseline, map alignment).

Uncertainty: the point estimate is the medoid sample (smallest summed rotation distance to the
other samples); ``rotation_spread_deg`` and ``center_spread`` are the RMS rotation angle and
centre distance of the samples from it, per camera (zero with one sample).

A caller may replace the sampler for one call (``estimate(..., sampler=...)``, a
:data:`RaySampler`), e.g. the Sampson-guided sampler of ``raydiff_ros.refinement``; such a call
runs under ``torch.no_grad`` instead of ``torch.inference_mode`` so the sampler may take
gradients.

Thread safety: ``estimate`` may be called from any thread; calls are serialised by a lock.
GPU memory is reused between calls through torch's caching allocator; nothing is kept alive
between calls except the model.
"""

from dataclasses import dataclass, field, replace
from pathlib import Path
import threading
import time
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch

from raydiff_ros.geometry.camera import Cameras
from raydiff_ros.geometry.rays import (
    HomographyFitConfig,
    rays_from_spatial,
    rays_to_cameras_homography,
    rays_to_cameras_procrustes,
)
from raydiff_ros.inference.preprocess import (
    CropConfig,
    ImageInputError,
    PreprocessedViews,
    preprocess_views,
)
from raydiff_ros.model.checkpoint import load_model
from raydiff_ros.model.diffusion import SampleResult
from raydiff_ros.model.network import RayDiffusionModel

MIN_VIEWS = 2
DEVICE_CHOICES = ('auto', 'cpu', 'cuda')
DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}
HOMOGRAPHY_METHODS = ('qr', 'ql_compat')
#: Below this mean distance of the other cameras from camera 0 the set has no usable baseline.
MIN_REFERENCE_BASELINE = 1e-9
WARMUP_IMAGE_SIZE = (64, 48)
WARMUP_GREY = 128

RaySampler = Callable[[RayDiffusionModel, torch.Tensor, Optional[torch.Tensor],
                       PreprocessedViews, int, torch.Generator], SampleResult]
"""sampler(model, features (N, F, P, P), ndc (N, 2, P, P) or None, views, num_samples,
generator) -> ``SampleResult`` with rays (num_samples, N, 6, P, P); called under the engine's
autocast. The default is ``model.predict_rays``."""


class EstimationError(RuntimeError):
    """A view set could not be estimated (bad input, or a non-finite / degenerate result)."""


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings.

    device: 'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:<index>'.
    dtype: network precision: 'auto' (bfloat16 on CUDA, float32 on CPU), 'float32',
        'bfloat16' or 'float16' (autocast; geometry always runs in float32/float64).
    num_samples: diffusion samples per view set, drawn in one batch (uncertainty needs >= 2).
    seed: seed of the per-call generator (same inputs + seed = same result).
    max_views: largest view set accepted (more than the model's 8 are chunked around image 0).
    homography: 'qr' (correct for any principal point) or 'ql_compat' (the official quirk).
    official_homography_fit: fit homographies exactly as the official code (parity tests).
    warmup: run one small estimate when the engine is created.
    """

    device: str = 'auto'
    dtype: str = 'auto'
    num_samples: int = 1
    seed: int = 0
    max_views: int = 32
    crop: CropConfig = field(default_factory=CropConfig)
    homography: str = 'qr'
    official_homography_fit: bool = False
    warmup: bool = True

    def __post_init__(self) -> None:
        base = self.device.split(':')[0]
        if base not in DEVICE_CHOICES:
            raise ValueError(f'device must be one of {DEVICE_CHOICES} (or cuda:N), got '
                             f'{self.device!r}')
        if self.dtype != 'auto' and self.dtype not in DTYPES:
            raise ValueError(f'dtype must be auto or one of {sorted(DTYPES)}, got {self.dtype!r}')
        if self.num_samples < 1:
            raise ValueError(f'num_samples must be >= 1, got {self.num_samples}')
        if self.max_views < MIN_VIEWS:
            raise ValueError(f'max_views must be >= {MIN_VIEWS}, got {self.max_views}')
        if self.homography not in HOMOGRAPHY_METHODS:
            raise ValueError(f'homography must be one of {HOMOGRAPHY_METHODS}, got '
                             f'{self.homography!r}')


@dataclass
class PoseEstimationResult:
    """Cameras of one view set (see the module docstring for frames and units).

    reference_T_camera: (N, 4, 4) float64, the point estimate (medoid sample).
    samples_reference_T_camera: (S, N, 4, 4) float64, every sample.
    K: (N, 3, 3) intrinsics in pixels: the given ones, or estimated (medoid sample).
    intrinsics_estimated: True when K was estimated by the model.
    rotation_spread_deg: (N,) RMS angle of the samples' rotations from the estimate.
    center_spread: (N,) RMS distance of the samples' centres from the estimate (reference
        units).
    timings_s: seconds per stage: preprocess, features, sampling, rays_to_cameras, total.
    """

    reference_T_camera: np.ndarray
    samples_reference_T_camera: np.ndarray
    K: np.ndarray
    intrinsics_estimated: bool
    rotation_spread_deg: np.ndarray
    center_spread: np.ndarray
    timings_s: dict

    @property
    def num_views(self) -> int:
        return int(self.reference_T_camera.shape[0])

    @property
    def camera_T_reference(self) -> np.ndarray:
        """(N, 4, 4) world-to-camera transforms with the world = camera 0's optical frame."""
        return np.linalg.inv(self.reference_T_camera)


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda if available else cpu; other names as given (checked)."""
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(name)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise EstimationError(f'device {name!r} requested but CUDA is not available')
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == 'auto':
        return torch.bfloat16 if device.type == 'cuda' else torch.float32
    return DTYPES[name]


def _check_intrinsics(K: np.ndarray, num_views: int) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape == (3, 3):
        K = np.broadcast_to(K, (num_views, 3, 3))
    if K.shape != (num_views, 3, 3):
        raise EstimationError(f'K must be (3, 3) or ({num_views}, 3, 3), got {K.shape}')
    if not np.all(np.isfinite(K)):
        raise EstimationError('K contains NaN or infinite values')
    if np.any(K[:, 0, 0] <= 0) or np.any(K[:, 1, 1] <= 0):
        raise EstimationError('K has a zero or negative focal length')
    return np.ascontiguousarray(K)


def rotation_angles_deg(R_a: np.ndarray, R_b: np.ndarray) -> np.ndarray:
    """Geodesic angle (degrees) between rotations (..., 3, 3) and (..., 3, 3)."""
    cos = (np.einsum('...ij,...ij->...', R_a, R_b) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def reference_poses(cameras: Cameras) -> np.ndarray:
    """(S, N, 4, 4) ``camera0_T_camera`` of cameras with batch shape (S, N), unit baseline.

    Raises EstimationError when a sample has no baseline (all centres coincide).
    """
    world_T_camera = cameras.world_T_camera.detach().double().cpu().numpy()
    camera0_T_world = np.linalg.inv(world_T_camera[:, :1])
    poses = camera0_T_world @ world_T_camera
    baseline = np.linalg.norm(poses[:, 1:, :3, 3], axis=-1).mean(axis=-1)
    if np.any(~np.isfinite(baseline)) or np.any(baseline < MIN_REFERENCE_BASELINE):
        raise EstimationError('degenerate estimate: the cameras have no baseline')
    poses[:, :, :3, 3] /= baseline[:, None, None]
    return poses


def medoid_index(samples: np.ndarray) -> int:
    """Index of the sample (S, N, 4, 4) with the smallest summed rotation distance to others."""
    rotations = samples[..., :3, :3]
    distances = rotation_angles_deg(rotations[:, None], rotations[None, :]).sum(axis=-1)
    return int(np.argmin(distances.sum(axis=1)))


class PoseEstimator:
    """Loads a ray-diffusion model once and estimates the cameras of view sets."""

    def __init__(self, model: Union[RayDiffusionModel, str, Path],
                 config: EngineConfig = EngineConfig()) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype, self.device)
        if isinstance(model, RayDiffusionModel):
            self.model = model.to(self.device).eval()
            self.model_name = 'in-memory'
        else:
            self.model = load_model(model, device=self.device)
            self.model_name = Path(model).name
        self.num_patches = self.model.num_patches
        # The crop is resized to what the backbone takes.
        self._crop = replace(config.crop, input_size=self.model.config.backbone.image_size)
        self._lock = threading.Lock()
        self._fit_config = (HomographyFitConfig.official() if config.official_homography_fit
                            else HomographyFitConfig())
        if config.warmup:
            self.warmup()

    def warmup(self) -> None:
        """One small estimate, so the first real call pays no one-off costs."""
        width, height = WARMUP_IMAGE_SIZE
        images = [np.full((height, width, 3), WARMUP_GREY, dtype=np.uint8)] * MIN_VIEWS
        try:
            self.estimate(images, num_samples=1)
        except EstimationError:
            pass  # a uniform image may give a degenerate estimate; the kernels ran anyway

    def _synchronize(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def estimate(self, images: Sequence[np.ndarray], K: Optional[np.ndarray] = None,
                 bboxes: Optional[np.ndarray] = None, num_samples: Optional[int] = None,
                 seed: Optional[int] = None,
                 sampler: Optional[RaySampler] = None) -> PoseEstimationResult:
        """Estimate the cameras of ``images`` (N of them, (H, W, 3) uint8 RGB, any sizes).

        K: (N, 3, 3) or (3, 3) intrinsics in pixels (known intrinsics: Procrustes), or None
        (intrinsics estimated by homography). bboxes: optional (N, 4) object boxes.
        sampler: replaces the model's sampler for this call (see :data:`RaySampler`).
        Raises EstimationError (bad input, non-finite or degenerate output).
        """
        num_views = len(images)
        if not MIN_VIEWS <= num_views <= self.config.max_views:
            raise EstimationError(f'a view set needs {MIN_VIEWS} to {self.config.max_views} '
                                  f'images, got {num_views}')
        K_known = None if K is None else _check_intrinsics(K, num_views)
        num_samples = self.config.num_samples if num_samples is None else num_samples
        if num_samples < 1:
            raise EstimationError(f'num_samples must be >= 1, got {num_samples}')
        seed = self.config.seed if seed is None else seed
        grad_mode = torch.inference_mode() if sampler is None else torch.no_grad()
        with self._lock, grad_mode:
            return self._estimate(images, K_known, bboxes, num_samples, seed, sampler)

    def _estimate(self, images, K_known, bboxes, num_samples, seed,
                  sampler) -> PoseEstimationResult:
        timings = {}
        start = time.perf_counter()
        try:
            views = preprocess_views(images, self._crop, bboxes, self.num_patches)
        except (ImageInputError, ValueError) as error:
            raise EstimationError(str(error)) from error
        timings['preprocess'] = time.perf_counter() - start

        autocast = torch.autocast(self.device.type, dtype=self.dtype,
                                  enabled=self.dtype != torch.float32)
        mark = time.perf_counter()
        with autocast:
            features = self.model.features(views.images.to(self.device)[None])[0].float()
        self._synchronize()
        timings['features'] = time.perf_counter() - mark

        mark = time.perf_counter()
        generator = torch.Generator(device=self.device).manual_seed(seed)
        ndc = views.ndc.to(self.device)
        with autocast:
            if sampler is None:
                sampled = self.model.predict_rays(features, ndc, num_samples=num_samples,
                                                  generator=generator)
            else:
                sampled = sampler(self.model, features, ndc, views, num_samples, generator)
        rays = sampled.rays.float()
        self._synchronize()
        timings['sampling'] = time.perf_counter() - mark
        if not torch.isfinite(rays).all():
            raise EstimationError('the model returned non-finite rays')

        mark = time.perf_counter()
        flat_rays = rays_from_spatial(rays)                       # (S, N, P*P, 6)
        batch = (num_samples, len(images))
        crop_params = views.crop_params.to(self.device).expand(*batch, 4)
        sizes = views.image_sizes.to(self.device).expand(*batch, 2)
        try:
            if K_known is not None:
                K_tensor = torch.from_numpy(K_known).to(self.device).expand(*batch, 3, 3)
                cameras = rays_to_cameras_procrustes(flat_rays, K_tensor, sizes, crop_params)
            else:
                cameras = rays_to_cameras_homography(
                    flat_rays, sizes, crop_params, fit_config=self._fit_config,
                    ql_compat=self.config.homography == 'ql_compat').cameras
            samples = reference_poses(cameras)
        except ValueError as error:  # geometry input / degeneracy errors
            raise EstimationError(f'rays to cameras failed: {error}') from error
        if not np.all(np.isfinite(samples)):
            raise EstimationError('the cameras recovered from the rays are not finite')
        best = medoid_index(samples)
        estimate = samples[best]
        rotation_spread = np.sqrt(np.mean(rotation_angles_deg(
            samples[..., :3, :3], estimate[None, :, :3, :3]) ** 2, axis=0))
        center_spread = np.sqrt(np.mean(np.sum(
            (samples[..., :3, 3] - estimate[None, :, :3, 3]) ** 2, axis=-1), axis=0))
        K_out = (K_known if K_known is not None
                 else cameras.K[best].detach().double().cpu().numpy())
        timings['rays_to_cameras'] = time.perf_counter() - mark
        timings['total'] = time.perf_counter() - start
        return PoseEstimationResult(
            reference_T_camera=estimate, samples_reference_T_camera=samples, K=K_out,
            intrinsics_estimated=K_known is None, rotation_spread_deg=rotation_spread,
            center_spread=center_spread, timings_s=timings)
