"""The ray-model estimator: 2..N images (+ optional K) in, cameras out.

``RayDiffusionEngine`` loads a model once (our model folder, or a ``RayDiffusionModel``), warms
it up once, and then estimates view sets (the estimator contract of
:mod:`raydiff_ros.estimation`: ``estimate(ViewSetInput) -> EstimationResult``): crop and resize
(:mod:`.preprocess`), backbone features once per set, ``num_samples`` diffusion samples drawn in
ONE batch (one pass for a regression model), rays to cameras (Procrustes with known intrinsics,
the robot case; homography + QR when intrinsics are unknown), and the result expressed in the
first camera's optical frame. It is registered as ``ray_diffusion`` (any ray model) and
``ray_regression`` (a regression model; default ``models/default_regression``).

Frames and units of the result: ``reference_T_camera[k]`` (4x4) is the pose of camera k's
optical frame (OpenCV/ROS: x right, y down, z forward) in camera 0's optical frame, so
``reference_T_camera[0]`` is the identity. Ray diffusion fixes poses only up to scale: every
sample is scaled so that the mean distance of cameras 1..N-1 from camera 0 is 1 (the
"reference unit"); metric scale is set downstream (known baseline, map alignment).

Uncertainty: the point estimate is the medoid sample (smallest summed rotation distance to the
other samples, :func:`~raydiff_ros.estimation.medoid_index`); the result's ``uncertainty`` is
the RMS rotation angle of the samples from it per camera, in degrees (zero with one sample;
:func:`~raydiff_ros.estimation.sample_spread` also gives the centre spread).

A caller may replace the sampler for one call (``estimate(view_set, sampler=...)``, a
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
from typing import Callable, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from raydiff_ros.estimation.contract import (
    MIN_VIEWS,
    POSE_SOURCE_REFERENCE,
    EstimationError,
    EstimationResult,
    EstimatorError,
    ViewSetInput,
    medoid_index,
    sample_spread,
)
from raydiff_ros.estimation.registry import EstimatorOptions, typed_options
from raydiff_ros.geometry.camera import Cameras
from raydiff_ros.geometry.rays import (
    HomographyFitConfig,
    rays_from_spatial,
    rays_to_cameras_homography,
    rays_to_cameras_procrustes,
)
from raydiff_ros.geometry.transforms import (
    invert_transforms,
    make_transforms,
    project_to_rotation,
)
from raydiff_ros.inference.preprocess import (
    CropConfig,
    PreprocessedViews,
    check_view_count,
    preprocess_view_set,
)
from raydiff_ros.model.checkpoint import load_model
from raydiff_ros.model.default_models import DEFAULT_REGRESSION_MODEL_NAME, resolve_model_dir
from raydiff_ros.model.diffusion import SampleResult
from raydiff_ros.model.network import RayDiffusionModel

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


def place_model(model: Union[nn.Module, str, Path], model_class: type,
                load: Callable[..., nn.Module], device: torch.device) -> Tuple[nn.Module, str]:
    """(model on ``device`` in eval mode, its name) of an estimator's ``model`` argument: a
    ``model_class`` instance in memory ('in-memory') or a model folder read by
    ``load(folder, device=device)`` (the folder's name)."""
    if isinstance(model, model_class):
        return model.to(device).eval(), 'in-memory'
    return load(model, device=device), Path(model).name


def run_warmup(estimate: Callable[[ViewSetInput], object]) -> None:
    """One small estimate (MIN_VIEWS uniform grey images), so the first real call pays no
    one-off costs; its EstimationError (coinciding cameras of identical images) is ignored:
    the kernels ran anyway."""
    width, height = WARMUP_IMAGE_SIZE
    images = [np.full((height, width, 3), WARMUP_GREY, dtype=np.uint8)] * MIN_VIEWS
    try:
        estimate(ViewSetInput(images))
    except EstimationError:
        pass


def reference_poses(cameras: Cameras) -> np.ndarray:
    """(S, N, 4, 4) ``camera0_T_camera`` of cameras with batch shape (S, N), unit baseline.

    The rotations recovered from rays (float32) are projected onto SO(3) first, so that the
    poses are rigid and camera 0 is the identity.

    Raises EstimationError when a sample has no baseline (all centres coincide).
    """
    world_T_camera = cameras.world_T_camera.detach().double().cpu().numpy()
    world_T_camera = make_transforms(project_to_rotation(world_T_camera[..., :3, :3]),
                                     world_T_camera[..., :3, 3])
    poses = invert_transforms(world_T_camera[:, :1]) @ world_T_camera
    baseline = np.linalg.norm(poses[:, 1:, :3, 3], axis=-1).mean(axis=-1)
    if np.any(~np.isfinite(baseline)) or np.any(baseline < MIN_REFERENCE_BASELINE):
        raise EstimationError('degenerate estimate: the cameras have no baseline')
    poses[:, :, :3, 3] /= baseline[:, None, None]
    return poses


class RayDiffusionEngine:
    """Loads a ray model once and estimates the cameras of view sets (a ``PoseEstimator``).

    Args:
        model: a model folder, or a ``RayDiffusionModel`` in memory.
        config: device, precision, samples, seed, crop and warm-up.
    """

    name = 'ray_diffusion'

    def __init__(self, model: Union[RayDiffusionModel, str, Path],
                 config: EngineConfig = EngineConfig()) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype, self.device)
        self.model, self.model_name = place_model(model, RayDiffusionModel, load_model,
                                                  self.device)
        self.num_patches = self.model.num_patches
        self.regression = bool(self.model.config.diffusion.regression)
        # The crop is resized to what the backbone takes.
        self._crop = replace(config.crop, input_size=self.model.config.backbone.image_size)
        self._lock = threading.Lock()
        self._fit_config = (HomographyFitConfig.official() if config.official_homography_fit
                            else HomographyFitConfig())
        if config.warmup:
            self.warmup()

    def warmup(self) -> None:
        """One small estimate, so the first real call pays no one-off costs."""
        run_warmup(lambda view_set: self.estimate(view_set, num_samples=1))

    def _synchronize(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def estimate(self, view_set: ViewSetInput, *, num_samples: Optional[int] = None,
                 seed: Optional[int] = None,
                 sampler: Optional[RaySampler] = None) -> EstimationResult:
        """Estimate the cameras of the view set's images ((H, W, 3) uint8 RGB, any sizes).

        With the view set's K (known intrinsics) the cameras come from Procrustes, without it
        from a homography fit (intrinsics estimated). Its object boxes, when given, are the
        crops. ``num_samples`` and ``seed`` override the engine's for this call; ``sampler``
        replaces the model's sampler (see :data:`RaySampler`).

        Raises:
            EstimationError: bad input, or a non-finite or degenerate output.
        """
        check_view_count(view_set.num_views, self.config.max_views)
        num_samples = self.config.num_samples if num_samples is None else num_samples
        if num_samples < 1:
            raise EstimationError(f'num_samples must be >= 1, got {num_samples}')
        seed = self.config.seed if seed is None else seed
        grad_mode = torch.inference_mode() if sampler is None else torch.no_grad()
        with self._lock, grad_mode:
            return self._estimate(view_set.image_list(), view_set.K, view_set.boxes,
                                  num_samples, seed, sampler)

    def _estimate(self, images: list[np.ndarray], K_known: Optional[np.ndarray],
                  boxes: Optional[np.ndarray], num_samples: int, seed: int,
                  sampler: Optional[RaySampler]) -> EstimationResult:
        timings = {}
        start = time.perf_counter()
        views = preprocess_view_set(images, self._crop, boxes, self.num_patches)
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
        rotation_spread, _ = sample_spread(samples, samples[best])
        K_out = (K_known if K_known is not None
                 else cameras.K[best].detach().double().cpu().numpy())
        timings['rays_to_cameras'] = time.perf_counter() - mark
        timings['total'] = time.perf_counter() - start
        return EstimationResult(
            reference_T_camera=samples[best], samples_reference_T_camera=samples, K=K_out,
            intrinsics_estimated=K_known is None, uncertainty=rotation_spread,
            timings_s=timings,
            pose_sources=(POSE_SOURCE_REFERENCE,) + (self.name,) * (len(images) - 1))


def _engine(options: EstimatorOptions, model_dir: Path, name: str) -> RayDiffusionEngine:
    typed_options((), options.extra, name)  # refused, never silently ignored
    config = EngineConfig(device=options.device, dtype=options.dtype,
                          num_samples=options.num_samples, seed=options.seed,
                          warmup=options.warmup)
    return RayDiffusionEngine(model_dir, config)


def make_ray_diffusion(options: EstimatorOptions) -> RayDiffusionEngine:
    """Registry factory of ``ray_diffusion``: the model of ``options.model_dir`` (diffusion or
    regression), else the shipped default model."""
    return _engine(options, resolve_model_dir(options.model_dir), 'ray_diffusion')


def make_ray_regression(options: EstimatorOptions) -> RayDiffusionEngine:
    """Registry factory of ``ray_regression``: the regression model of ``options.model_dir``,
    else the shipped default regression model.

    Raises:
        EstimatorError: the model is a diffusion model.
    """
    model_dir = resolve_model_dir(options.model_dir, DEFAULT_REGRESSION_MODEL_NAME)
    engine = _engine(options, model_dir, 'ray_regression')
    if not engine.regression:
        raise EstimatorError(f'{model_dir} is a diffusion model; ray_regression needs a '
                             'regression model (use ray_diffusion)')
    engine.name = 'ray_regression'
    return engine
