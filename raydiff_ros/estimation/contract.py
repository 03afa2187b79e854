"""The estimator contract: what every pose estimator takes and returns.

One protocol, one entry point: ``estimator.estimate(view_set: ViewSetInput) ->
EstimationResult``. The node, every console command and the evaluation harness call it the
same way; estimators are built by name through :mod:`raydiff_ros.estimation.registry`.

Frames. Cameras are OpenCV/ROS optical frames (x right, y down, z forward). A result holds
``reference_T_camera``: the pose of each camera in the *reference* frame, the optical frame of
view 0, so ``reference_T_camera[0]`` is the identity. Translations are in the estimator's own
unit (ray diffusion fixes poses only up to scale); the node fixes metric scale downstream.

Shapes: N views, S samples. Images are (H_i, W_i, 3) uint8 RGB, intrinsics (3, 3) in pixels of
those images, object boxes ``[x0, y0, x1, y1]`` in pixels.
"""

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from raydiff_ros.geometry.transforms import (
    invert_transforms,
    make_transforms,
    project_to_rotation,
    rotation_angle_deg,
)

MIN_VIEWS = 2
ROTATION_BLOCK_TOLERANCE = 1e-3
"""Largest deviation of a result's rotation blocks from SO(3) (|R R^T - I|) that is accepted
(and projected away: float32 network output); more is a malformed result."""

POSE_SOURCE_REFERENCE = 'reference'
"""Where view 0's pose came from: it is the reference frame itself."""
POSE_SOURCE_UNSPECIFIED = 'unspecified'
"""Pose source of an estimator that does not say."""


class EstimatorError(ValueError):
    """An estimator is unknown, misconfigured, or cannot be built (missing model, bad option)."""


class EstimationError(RuntimeError):
    """A view set could not be estimated: bad input, or a malformed, non-finite or degenerate
    result."""


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """The true cameras of a view set. Privileged: only reference estimators (ground truth,
    noisy oracle) may read it; the evaluation harness fills it in, the node never does.

    Attributes:
        R: (N, 3, 3) world-to-camera rotations (``camera_T_world``), any world frame.
        t: (N, 3) world-to-camera translations.
        K: (N, 3, 3) true intrinsics in pixels.
        scene_scale: size of the whole scene the views come from (the metric's unit).
    """

    R: np.ndarray
    t: np.ndarray
    K: np.ndarray
    scene_scale: float = 1.0


@dataclass(frozen=True, eq=False)
class ViewSetInput:
    """What an estimator gets for one view set of N >= 2 images.

    Attributes:
        images: N (H_i, W_i, 3) uint8 RGB images; any sequence (the evaluation harness passes
            one that reads each image from disk when it is indexed, so estimators that need
            no pixels cost no image I/O).
        K: (N, 3, 3) intrinsics in pixels of these images, or None when unknown. A (3, 3)
            matrix is taken for every view.
        boxes: optional (N, 4) object boxes ``[x0, y0, x1, y1]`` in pixels (estimators may
            crop to them).
        metadata: free-form description of the set (frame ids, stamps, scene name, ...), for
            logs and reports; estimators must not depend on it.
        ground_truth: privileged true cameras (see :class:`GroundTruth`); None in the node.

    Raises:
        EstimationError: fewer than 2 images, or intrinsics of the wrong shape, non-finite or
            with a non-positive focal length.
    """

    images: Sequence[np.ndarray]
    K: Optional[np.ndarray] = None
    boxes: Optional[np.ndarray] = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    ground_truth: Optional[GroundTruth] = None

    def __post_init__(self) -> None:
        num = len(self.images)
        if num < MIN_VIEWS:
            raise EstimationError(f'a view set needs at least {MIN_VIEWS} images, got {num}')
        if self.K is not None:
            K = np.asarray(self.K, dtype=np.float64)
            if K.shape == (3, 3):
                K = np.broadcast_to(K, (num, 3, 3))
            if K.shape != (num, 3, 3):
                raise EstimationError(f'K must be (3, 3) or ({num}, 3, 3), got {K.shape}')
            if not np.all(np.isfinite(K)):
                raise EstimationError('K contains NaN or infinite values')
            if np.any(K[:, 0, 0] <= 0) or np.any(K[:, 1, 1] <= 0):
                raise EstimationError('K has a zero or negative focal length')
            object.__setattr__(self, 'K', np.ascontiguousarray(K))
        if self.boxes is not None:
            boxes = np.asarray(self.boxes, dtype=np.float64)
            if boxes.shape != (num, 4):
                raise EstimationError(f'boxes must be ({num}, 4), got {boxes.shape}')
            object.__setattr__(self, 'boxes', boxes)

    @property
    def num_views(self) -> int:
        return len(self.images)

    def image_list(self) -> list[np.ndarray]:
        """The N images as a list (reads them, for a lazy sequence)."""
        return [self.images[k] for k in range(self.num_views)]


@dataclass(frozen=True, eq=False)
class EstimationResult:
    """The cameras an estimator found for one view set of N images.

    Attributes:
        reference_T_camera: (N, 4, 4) the point estimate: pose of each camera in view 0's
            optical frame (view 0 is the identity).
        samples_reference_T_camera: (S, N, 4, 4) every sample drawn (diffusion samples); one
            sample equal to the point estimate for estimators that draw none.
        K: optional (N, 3, 3) intrinsics in pixels: the given ones, or estimated.
        intrinsics_estimated: True when ``K`` was estimated rather than given.
        uncertainty: optional (N,) per-camera uncertainty, larger = less certain (unit of the
            estimator: ray diffusion gives the RMS rotation spread of its samples in degrees).
        timings_s: seconds per stage (e.g. preprocess, features, sampling, matching,
            refinement, total).
        pose_sources: N names of where each camera's pose came from (e.g. ``'reference'`` for
            view 0, ``'ray_diffusion'``, ``'essential_matrix'``, ``'fallback'``).

    Construction checks shapes and finiteness (``EstimationError``), re-expresses poses given
    in another gauge with view 0 as the reference (exact when view 0 is already the identity),
    and projects rotation blocks onto SO(3) (removes float32 rounding of a network output).
    """

    reference_T_camera: np.ndarray
    samples_reference_T_camera: Optional[np.ndarray] = None
    K: Optional[np.ndarray] = None
    intrinsics_estimated: bool = False
    uncertainty: Optional[np.ndarray] = None
    timings_s: dict = field(default_factory=dict)
    pose_sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        estimate = _checked_poses(self.reference_T_camera, 3, 'reference_T_camera')
        num = estimate.shape[0]
        samples = (estimate[None] if self.samples_reference_T_camera is None else
                   _checked_poses(self.samples_reference_T_camera, 4,
                                  'samples_reference_T_camera'))
        if samples.shape[1] != num or samples.shape[0] < 1:
            raise EstimationError(f'samples_reference_T_camera must be (S, {num}, 4, 4), got '
                                  f'{samples.shape}')
        object.__setattr__(self, 'reference_T_camera', _rebased(estimate[None])[0])
        object.__setattr__(self, 'samples_reference_T_camera', _rebased(samples))
        for name, shape in (('K', (num, 3, 3)), ('uncertainty', (num,))):
            value = getattr(self, name)
            if value is None:
                continue
            value = np.asarray(value, dtype=np.float64)
            if value.shape != shape:
                raise EstimationError(f'{name} must have shape {shape}, got {value.shape}')
            if not np.all(np.isfinite(value)):
                raise EstimationError(f'{name} contains non-finite values')
            object.__setattr__(self, name, value)
        sources = tuple(self.pose_sources) or (
            (POSE_SOURCE_REFERENCE,) + (POSE_SOURCE_UNSPECIFIED,) * (num - 1))
        if len(sources) != num:
            raise EstimationError(f'pose_sources must name {num} sources, got {len(sources)}')
        object.__setattr__(self, 'pose_sources', sources)
        object.__setattr__(self, 'timings_s', dict(self.timings_s))

    @classmethod
    def from_world_to_camera(cls, R: np.ndarray, t: np.ndarray,
                             **fields: Any) -> 'EstimationResult':
        """A result from world-to-camera rotations and translations in any world frame.

        Args:
            R: (N, 3, 3) or (S, N, 3, 3) ``camera_T_world`` rotations (several samples: the
                point estimate is sample 0).
            t: (N, 3) or (S, N, 3) translations.
            **fields: the other attributes (K, uncertainty, timings_s, pose_sources, ...).
        """
        world_T_camera = invert_transforms(make_transforms(R, t))
        if world_T_camera.ndim == 3:
            world_T_camera = world_T_camera[None]
        return cls(reference_T_camera=world_T_camera[0],
                   samples_reference_T_camera=world_T_camera, **fields)

    @property
    def num_views(self) -> int:
        return int(self.reference_T_camera.shape[0])

    @property
    def num_samples(self) -> int:
        return int(self.samples_reference_T_camera.shape[0])

    def world_to_camera(self) -> tuple[np.ndarray, np.ndarray]:
        """The point estimate as world-to-camera (R (N, 3, 3), t (N, 3)), world = view 0."""
        camera_T_reference = invert_transforms(self.reference_T_camera)
        return camera_T_reference[:, :3, :3], camera_T_reference[:, :3, 3]


@runtime_checkable
class PoseEstimator(Protocol):
    """A pose estimator: a ``name`` and ``estimate(view_set) -> EstimationResult``."""

    name: str

    def estimate(self, view_set: ViewSetInput) -> EstimationResult: ...


def _checked_poses(poses: np.ndarray, ndim: int, name: str) -> np.ndarray:
    """(..., N, 4, 4) float64 rigid poses with rotation blocks projected onto SO(3)."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != ndim or poses.shape[-2:] != (4, 4) or poses.shape[-3] < 1:
        raise EstimationError(f'{name} must have {ndim} axes ending in (N, 4, 4), got '
                              f'{poses.shape}')
    if not np.all(np.isfinite(poses)):
        raise EstimationError(f'{name} contains non-finite values')
    rotations = poses[..., :3, :3]
    gram = rotations @ np.swapaxes(rotations, -1, -2)
    if (np.abs(gram - np.eye(3)).max() > ROTATION_BLOCK_TOLERANCE
            or np.any(np.linalg.det(rotations) <= 0.0)
            or not np.allclose(poses[..., 3, :], (0.0, 0.0, 0.0, 1.0))):
        raise EstimationError(f'{name} is not a set of rigid transforms')
    return make_transforms(project_to_rotation(rotations), poses[..., :3, 3])


def _rebased(samples: np.ndarray) -> np.ndarray:
    """(S, N, 4, 4) poses in view 0's frame: ``inv(a_T_view0) @ a_T_camera`` per sample."""
    return invert_transforms(samples[:, :1]) @ samples


# ---------------------------------------------------------------------------------------------
# Sample statistics (shared by the sampling estimators and the console commands)


def medoid_index(samples: np.ndarray) -> int:
    """Index of the sample (S, N, 4, 4) with the smallest summed rotation distance to others."""
    rotations = np.asarray(samples)[..., :3, :3]
    distances = rotation_angle_deg(rotations[:, None], rotations[None, :]).sum(axis=-1)
    return int(np.argmin(distances.sum(axis=1)))


def sample_spread(samples: np.ndarray,
                  estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RMS rotation angle (degrees) and RMS centre distance of samples from an estimate.

    Args:
        samples: (S, N, 4, 4) ``reference_T_camera`` samples.
        estimate: (N, 4, 4) the point estimate.

    Returns:
        (N,) rotation spread in degrees and (N,) centre spread in the poses' unit (zero with
        one sample equal to the estimate).
    """
    samples = np.asarray(samples, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    rotation = np.sqrt(np.mean(rotation_angle_deg(
        samples[..., :3, :3], estimate[None, :, :3, :3]) ** 2, axis=0))
    center = np.sqrt(np.mean(np.sum(
        (samples[..., :3, 3] - estimate[None, :, :3, 3]) ** 2, axis=-1), axis=0))
    return rotation, center

