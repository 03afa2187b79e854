"""The camera-ray-token estimator (``camera_ray_token``): poses from one forward pass.

:class:`CameraTokenEstimator` loads a :class:`~raydiff_ros.model.camera_token.CameraTokenModel`
once and estimates view sets through the estimator contract: crop and resize as the ray
models (:mod:`.preprocess`), backbone features, one forward pass (no sampling, no rays to
cameras: the camera tokens' heads give ``camera_T_normalized`` rotations and translations
directly), and the result re-expressed in view 0's optical frame (OpenCV/ROS axes).

Frames and units of the result: ``reference_T_camera[k]`` (4x4) is camera k's optical frame in
camera 0's, ``reference_T_camera[0]`` the identity; translations are scaled so that the mean
distance of cameras 1..N-1 from camera 0 is 1 (the ray models' "reference unit"; metric scale
is fixed downstream). Intrinsics are not used by the network: a given ``K`` is passed through,
none is estimated. One sample (S = 1); ``uncertainty`` is not reported.

Thread safety: ``estimate`` may be called from any thread; calls are serialised by a lock.
"""

from dataclasses import replace
from pathlib import Path
import threading
import time
from typing import Optional, Union

import numpy as np
import torch

from raydiff_ros.estimation.contract import (
    POSE_SOURCE_REFERENCE,
    EstimationError,
    EstimationResult,
    ViewSetInput,
)
from raydiff_ros.estimation.registry import EstimatorOptions, typed_options
from raydiff_ros.geometry.transforms import invert_transforms, make_transforms
from raydiff_ros.inference.engine import (
    MIN_REFERENCE_BASELINE,
    EngineConfig,
    place_model,
    resolve_device,
    resolve_dtype,
    run_warmup,
)
from raydiff_ros.inference.preprocess import check_view_count, preprocess_view_set
from raydiff_ros.model.camera_token import CameraTokenModel, load_camera_token_model
from raydiff_ros.model.default_models import CAMERA_RAY_TOKEN_MODEL_NAME, resolve_model_dir

ESTIMATOR_NAME = 'camera_ray_token'


def reference_poses_from_world_to_camera(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``camera_T_world`` rotations R (N, 3, 3) and translations t (N, 3), any world ->
    ``reference_T_camera`` (N, 4, 4) with view 0 the reference and unit mean baseline.

    Raises:
        EstimationError: non-finite input, or all centres coincide (no baseline).
    """
    if not (np.all(np.isfinite(R)) and np.all(np.isfinite(t))):
        raise EstimationError('the model returned non-finite poses')
    world_T_camera = invert_transforms(make_transforms(R, t))
    poses = invert_transforms(world_T_camera[:1]) @ world_T_camera
    baseline = float(np.linalg.norm(poses[1:, :3, 3], axis=-1).mean())
    if not np.isfinite(baseline) or baseline < MIN_REFERENCE_BASELINE:
        raise EstimationError('degenerate estimate: the cameras have no baseline')
    poses[:, :3, 3] /= baseline
    return poses


class CameraTokenEstimator:
    """Loads a camera-token model once and estimates view sets (a ``PoseEstimator``).

    Args:
        model: a model folder (``config.yaml`` with a ``camera_token`` section +
            ``model.safetensors``), or a :class:`CameraTokenModel` in memory.
        config: device, precision, seed (unused: nothing is random), largest view set, crop
            and warm-up; ``num_samples`` is ignored (one forward pass, one result).
    """

    name = ESTIMATOR_NAME

    def __init__(self, model: Union[CameraTokenModel, str, Path],
                 config: Optional[EngineConfig] = None) -> None:
        config = EngineConfig() if config is None else config
        self.config = config
        self.device = resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype, self.device)
        self.model, self.model_name = place_model(model, CameraTokenModel,
                                                  load_camera_token_model, self.device)
        self._crop = replace(config.crop, input_size=self.model.config.backbone.image_size)
        self._lock = threading.Lock()
        if config.warmup:
            self.warmup()

    def warmup(self) -> None:
        """One small estimate, so the first real call pays no one-off costs."""
        run_warmup(self.estimate)

    def estimate(self, view_set: ViewSetInput) -> EstimationResult:
        """Estimate the cameras of the view set's images ((H, W, 3) uint8 RGB, any sizes);
        its object boxes, when given, are the crops.

        Raises:
            EstimationError: bad input (too many views, bad images or boxes), or a non-finite
                or degenerate output.
        """
        check_view_count(view_set.num_views, self.config.max_views)
        with self._lock, torch.inference_mode():
            return self._estimate(view_set)

    def _estimate(self, view_set: ViewSetInput) -> EstimationResult:
        timings = {}
        start = time.perf_counter()
        views = preprocess_view_set(view_set.image_list(), self._crop, view_set.boxes,
                                    self.model.num_patches)
        timings['preprocess'] = time.perf_counter() - start
        mark = time.perf_counter()
        with torch.autocast(self.device.type, dtype=self.dtype,
                            enabled=self.dtype != torch.float32):
            features = self.model.features(views.images.to(self.device)[None]).float()
            output = self.model(features, views.ndc.to(self.device)[None])
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
        timings['network'] = time.perf_counter() - mark
        R = output.rotation[0].double().cpu().numpy()       # (N, 3, 3) camera_T_normalized
        t = output.translation[0].double().cpu().numpy()    # (N, 3)
        poses = reference_poses_from_world_to_camera(R, t)  # (N, 4, 4) reference_T_camera
        timings['total'] = time.perf_counter() - start
        return EstimationResult(
            reference_T_camera=poses, K=view_set.K, intrinsics_estimated=False,
            timings_s=timings,
            pose_sources=(POSE_SOURCE_REFERENCE,) + (self.name,) * (view_set.num_views - 1))


def make_camera_ray_token(options: EstimatorOptions) -> CameraTokenEstimator:
    """Registry factory of ``camera_ray_token``: the camera-token model of
    ``options.model_dir``, else the shipped ``models/camera_ray_token``.

    Raises:
        EstimatorError: options this estimator does not take.
        ModelNotFoundError: no model folder and none shipped.
    """
    model_dir = resolve_model_dir(options.model_dir, CAMERA_RAY_TOKEN_MODEL_NAME)
    typed_options((), options.extra, ESTIMATOR_NAME)
    config = EngineConfig(device=options.device, dtype=options.dtype, seed=options.seed,
                          warmup=options.warmup)
    return CameraTokenEstimator(model_dir, config)
