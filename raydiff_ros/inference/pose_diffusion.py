"""Camera-parameter diffusion estimation (PoseDiffusion, Wang et al., ICCV 2023).

:class:`PoseDiffusionEstimator` runs a :class:`~raydiff_ros.model.pose_diffusion.
PoseDiffusionModel` on view sets: crop and resize as the ray engine (:mod:`.preprocess`),
backbone features once, ``num_samples`` samples of the camera encodings in one batch, and, when
a matcher is given, guidance is on and the intrinsics are known, the x0 predictions of the last
``guidance_steps`` sampler steps moved down the robust Sampson error of the matcher's verified
correspondences (:class:`~raydiff_ros.model.pose_diffusion.SampsonGuidance`). The registered
``pose_diffusion`` factory, which builds the matchers of the features package, is
:mod:`raydiff_ros.refinement.pose_diffusion_estimator`; training validation uses this class
without a matcher.

Focal length: with known K and ``fix_focal`` (default) the focal entry of every x0 is replaced
by the known focal (in crop NDC units), so the other parameters are sampled given it, and the
result's K is the given K. Without K the focal is sampled, and the result's K has that focal
with the principal point at the crop centre (``intrinsics_estimated``). Guidance needs K.

Result: ``reference_T_camera`` (N, 4, 4) = pose of each camera's optical frame (OpenCV/ROS axes)
in camera 0's optical frame, scaled so that cameras 1..N-1 are at mean distance 1 from camera 0;
``samples_reference_T_camera`` (S, N, 4, 4); the point estimate is the medoid sample and
``uncertainty`` (N,) the RMS rotation spread of the samples in degrees (as ``ray_diffusion``).
"""

from dataclasses import dataclass, replace
import logging
import math
from pathlib import Path
import threading
import time
from typing import Callable, Optional, Union

import numpy as np
import torch

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
from raydiff_ros.geometry.camera import Cameras
from raydiff_ros.geometry.camera_encoding import decode_cameras, focal_pixels_from_ndc
from raydiff_ros.inference.engine import (
    place_model,
    reference_poses,
    resolve_device,
    resolve_dtype,
    run_warmup,
)
from raydiff_ros.inference.preprocess import CropConfig, check_view_count, preprocess_view_set
from raydiff_ros.model.pose_diffusion import (
    Correspondences,
    PoseDiffusionModel,
    PoseGuidanceConfig,
    SampsonGuidance,
    focal_ndc,
    load_pose_model,
    sample_cameras,
)

LOGGER = logging.getLogger(__name__)
NAME = 'pose_diffusion'
GUIDED_SUFFIX = '+guided'

CorrespondenceMatcher = Callable[[list[np.ndarray], np.ndarray], Correspondences]
"""matcher(N (H, W, 3) uint8 images, K (N, 3, 3)) -> verified correspondences in full-image
pixels; may raise ``EstimatorError`` (e.g. a matcher whose weights are missing)."""


@dataclass(frozen=True)
class PoseDiffusionOptions:
    """Options of ``pose_diffusion`` (``EstimatorOptions.extra``, ``--option KEY=VALUE``).

    Attributes:
        guidance: geometry-guided sampling on (needs K and enough verified matches).
        guidance_steps: sampler steps, counted from the end, whose x0 is guided.
        guidance_iterations: gradient steps per guided sampler step.
        guidance_step: largest change of an encoding entry per gradient step.
        robust_scale_px: Cauchy scale of the Sampson loss (pixels).
        min_matches: fewer verified matches in all -> no guidance for that set.
        fix_focal: with known K, hold the focal entries at the known focal.
        eta: sampler noise (0: deterministic posterior mean, 1: DDPM).
        max_views: largest view set accepted.
    """

    guidance: bool = True
    guidance_steps: int = 3
    guidance_iterations: int = 10
    guidance_step: float = 0.05
    robust_scale_px: float = 2.0
    min_matches: int = 30
    fix_focal: bool = True
    eta: float = 0.0
    max_views: int = 32

    def __post_init__(self) -> None:
        counts = {'guidance_steps': (self.guidance_steps, 0),
                  'guidance_iterations': (self.guidance_iterations, 1),
                  'min_matches': (self.min_matches, 1),
                  'max_views': (self.max_views, MIN_VIEWS)}
        for name, (value, low) in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise EstimatorError(f'pose_diffusion: {name} must be an integer >= {low}, got '
                                     f'{value!r}')
        for name in ('guidance_step', 'robust_scale_px'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or value <= 0:
                raise EstimatorError(f'pose_diffusion: {name} must be a positive number, got '
                                     f'{value!r}')
        if isinstance(self.eta, bool) or not isinstance(self.eta, (int, float)) \
                or not 0 <= self.eta <= 1:
            raise EstimatorError(f'pose_diffusion: eta must be in [0, 1], got {self.eta!r}')
        for name in ('guidance', 'fix_focal'):
            if not isinstance(getattr(self, name), bool):
                raise EstimatorError(f'pose_diffusion: {name} must be true or false')

    def guidance_config(self) -> PoseGuidanceConfig:
        return PoseGuidanceConfig(last_steps=self.guidance_steps,
                                  iterations=self.guidance_iterations,
                                  step=float(self.guidance_step),
                                  robust_scale_px=float(self.robust_scale_px))


@dataclass(frozen=True)
class PoseGuidanceReport:
    """What the last estimate's guidance did.

    Attributes:
        guided: False when no guidance ran (see ``reason``).
        reason: why not ('' when guided).
        num_matches: verified matches found (0 when matching did not run).
        losses: mean Sampson loss before each guidance gradient step, in order.
        matching_seconds, guidance_seconds: wall times.
    """

    guided: bool
    reason: str = ''
    num_matches: int = 0
    losses: tuple[float, ...] = ()
    matching_seconds: float = 0.0
    guidance_seconds: float = 0.0


class _TimedGuidance(SampsonGuidance):
    seconds: float = 0.0

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        try:
            return super().__call__(x0)
        finally:
            self.seconds += time.perf_counter() - start


class PoseDiffusionEstimator:
    """Loads a pose-diffusion model once and estimates view sets (a ``PoseEstimator``).

    Args:
        model: a model folder, or a :class:`PoseDiffusionModel` in memory.
        options: guidance and sampler options.
        device, dtype, num_samples, seed: as ``EstimatorOptions``.
        matcher: verified correspondences of a view set (None: no guidance).
        matcher_error: why there is no matcher (reported when guidance is asked for).
        warmup: run one small estimate now.

    Raises:
        EstimatorError: the model cannot be loaded or an option is bad.
    """

    name = NAME

    def __init__(self, model: Union[PoseDiffusionModel, str, Path],
                 options: Optional[PoseDiffusionOptions] = None, *, device: str = 'auto',
                 dtype: str = 'auto', num_samples: int = 1, seed: int = 0,
                 matcher: Optional[CorrespondenceMatcher] = None, matcher_error: str = '',
                 warmup: bool = False) -> None:
        self.options = options or PoseDiffusionOptions()
        try:
            self.device = resolve_device(device)
        except (EstimationError, RuntimeError) as error:
            raise EstimatorError(f'pose_diffusion: {error}') from error
        self.dtype = resolve_dtype(dtype, self.device)
        if num_samples < 1:
            raise EstimatorError(f'num_samples must be >= 1, got {num_samples}')
        self.num_samples, self.seed = num_samples, seed
        try:
            self.model, self.model_name = place_model(model, PoseDiffusionModel,
                                                      load_pose_model, self.device)
        except (ValueError, OSError) as error:
            raise EstimatorError(f'pose_diffusion: cannot load {model}: {error}') from error
        self._crop = CropConfig(input_size=self.model.config.backbone.image_size)
        self._lock = threading.Lock()
        self._matcher = matcher
        self._matcher_error = matcher_error or 'no matcher given'
        self.last_report = PoseGuidanceReport(guided=False, reason='no estimate yet')
        if warmup:
            self.warmup()

    def warmup(self) -> None:
        """One small unguided estimate, so the first real call pays no one-off costs."""
        run_warmup(self.estimate)

    def estimate(self, view_set: ViewSetInput) -> EstimationResult:
        """Cameras of a view set: N (H_i, W_i, 3) uint8 images, K (N, 3, 3) or None.

        Raises:
            EstimationError: bad input, or a non-finite or degenerate output.
        """
        check_view_count(view_set.num_views, self.options.max_views)
        with self._lock, torch.no_grad():
            return self._estimate(view_set.image_list(), view_set.K, view_set.boxes)

    def _matches(self, images: list[np.ndarray], K: Optional[np.ndarray]
                 ) -> tuple[Optional[Correspondences], PoseGuidanceReport]:
        if not self.options.guidance or self.options.guidance_steps == 0:
            return None, PoseGuidanceReport(False, 'guidance off')
        if K is None:
            return None, PoseGuidanceReport(False, 'intrinsics unknown: guidance needs K')
        if self._matcher is None:
            return None, PoseGuidanceReport(False, self._matcher_error)
        start = time.perf_counter()
        try:
            correspondences = self._matcher(images, K)
        except EstimatorError as error:
            LOGGER.warning('pose_diffusion: matcher unavailable (%s): guidance off', error)
            self._matcher, self._matcher_error = None, f'matcher unavailable: {error}'
            return None, PoseGuidanceReport(False, self._matcher_error)
        seconds = time.perf_counter() - start
        count = correspondences.num_matches
        if count < self.options.min_matches:
            return None, PoseGuidanceReport(False, f'{count} verified matches < min_matches '
                                            f'{self.options.min_matches}', count,
                                            matching_seconds=seconds)
        return correspondences, PoseGuidanceReport(True, '', count, matching_seconds=seconds)

    def _estimate(self, images: list[np.ndarray], K_known: Optional[np.ndarray],
                  boxes: Optional[np.ndarray]) -> EstimationResult:
        timings = {}
        start = time.perf_counter()
        views = preprocess_view_set(images, self._crop, boxes, self.model.num_patches)
        timings['preprocess'] = time.perf_counter() - start
        mark = time.perf_counter()
        with torch.autocast(self.device.type, dtype=self.dtype,
                            enabled=self.dtype != torch.float32):
            features = self.model.features(views.images.to(self.device)[None])[0].float()
        timings['features'] = time.perf_counter() - mark

        correspondences, report = self._matches(images, K_known)
        num, samples = len(images), self.num_samples
        crop_params = views.crop_params.to(self.device).double()
        sizes = views.image_sizes.to(self.device).double()
        side = crop_params[:, 2] * sizes.min(dim=-1).values / 2          # (N,) crop side, px
        known_log_focal = guide = None
        if K_known is not None:
            K_tensor = torch.from_numpy(K_known).to(self.device)
            if self.options.fix_focal:
                known_log_focal = torch.log(focal_ndc(K_tensor, crop_params, sizes)).float()
            if correspondences is not None:
                guide = _TimedGuidance(K_tensor, correspondences, self.model.rotation,
                                       self.options.guidance_config())
        mark = time.perf_counter()
        generator = torch.Generator(device=self.device).manual_seed(self.seed)
        sampled = sample_cameras(
            self.model, features.unsqueeze(0).expand(samples, *features.shape),
            generator=generator, known_log_focal=known_log_focal, guide=guide,
            guided_last_steps=self.options.guidance_steps, eta=float(self.options.eta))
        timings['sampling'] = time.perf_counter() - mark
        encodings = sampled.cameras.double()
        if not torch.isfinite(encodings).all():
            raise EstimationError('the model returned non-finite cameras')
        R, t, f_ndc = decode_cameras(encodings, self.model.rotation)   # (S, N, ...)
        if K_known is not None:
            K_out = K_known
            K_cameras = torch.from_numpy(K_known).to(R).expand(samples, num, 3, 3)
        else:
            f_px = focal_pixels_from_ndc(f_ndc, side)                    # (S, N)
            centre = ((views.crop_boxes[:, :2] + views.crop_boxes[:, 2:]).to(R) / 2)
            K_cameras = torch.zeros(samples, num, 3, 3, dtype=R.dtype, device=R.device)
            K_cameras[..., 0, 0] = K_cameras[..., 1, 1] = f_px
            K_cameras[..., :2, 2] = centre
            K_cameras[..., 2, 2] = 1.0
        try:
            cameras = Cameras(R, t, K_cameras, sizes.expand(samples, num, 2))
            poses = reference_poses(cameras)
        except ValueError as error:
            raise EstimationError(f'degenerate cameras: {error}') from error
        best = medoid_index(poses)
        spread, _ = sample_spread(poses, poses[best])
        if K_known is None:
            K_out = K_cameras[best].cpu().numpy()
        if guide is not None:
            report = replace(report, losses=tuple(guide.losses), guidance_seconds=guide.seconds)
            timings.update(matching=report.matching_seconds, guidance=report.guidance_seconds)
        self.last_report = report
        timings['total'] = time.perf_counter() - start
        source = NAME + (GUIDED_SUFFIX if report.guided else '')
        return EstimationResult(
            reference_T_camera=poses[best], samples_reference_T_camera=poses, K=K_out,
            intrinsics_estimated=K_known is None, uncertainty=spread, timings_s=timings,
            pose_sources=(POSE_SOURCE_REFERENCE,) + (source,) * (num - 1))
