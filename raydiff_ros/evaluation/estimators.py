"""Pluggable pose estimators for the evaluation harness, and a registry of them by name.

An estimator is any object with a ``name`` (str) and ``estimate(view_set) -> PoseEstimate``
(``PoseEstimator`` protocol). The ``ViewSet`` carries the images and their metadata; see
``raydiff_ros.evaluation.view_set`` for what an estimator may use. Estimators that work from
pixels subclass ``ImagePoseEstimator`` and implement
``estimate_from_images(images, K) -> PoseEstimate`` with ``images`` a list of N (H, W, 3)
uint8 RGB arrays and ``K`` (N, 3, 3) in pixels or ``None``; they never see the ground truth.

Estimates are world-to-camera ``R`` (N, 3, 3), ``t`` (N, 3) in OpenCV/ROS axes in any world
frame and at any scale (the metrics remove the gauge), optionally with estimated intrinsics and
a per-camera uncertainty.

Built-in estimators (registered names):

* ``ground_truth``: returns the true poses (a check of the harness: must score 100 %).
* ``random``: the chance floor: independent uniformly random (Haar) rotations and random
  centres, seeded.
* ``noisy_oracle``: the true poses, each rotation perturbed by a fixed angle about a random
  axis and each centre moved by Gaussian noise proportional to the scene scale (for checking
  thresholds).

Later estimators register themselves with ``register_estimator(name, factory)``; a factory is
called as ``factory(seed=seed, **options)`` and returns an estimator.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Optional, Protocol, runtime_checkable

import numpy as np

from raydiff_ros.evaluation.view_set import ViewSet
from raydiff_ros.geometry.metrics import camera_centers

DEFAULT_SEED = 0
RANDOM_CENTER_STD = 1.0
"""Standard deviation of the random floor's camera centres (arbitrary units: the metrics are
invariant to the world frame and scale of a prediction)."""


class EstimatorError(ValueError):
    """An estimator is unknown, misconfigured, or returned a malformed estimate."""


@dataclass(frozen=True, eq=False)
class PoseEstimate:
    """Cameras estimated for one view set of N images.

    Attributes:
        R: (N, 3, 3) world-to-camera rotations (OpenCV axes), any world frame.
        t: (N, 3) world-to-camera translations (any scale).
        K: optional (N, 3, 3) estimated intrinsics in pixels.
        uncertainty: optional (N,) per-camera uncertainty (larger = less certain).
    """

    R: np.ndarray
    t: np.ndarray
    K: Optional[np.ndarray] = None
    uncertainty: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        R = np.asarray(self.R, dtype=np.float64)
        if R.ndim != 3 or R.shape[1:] != (3, 3):
            raise EstimatorError(f'estimate R must have shape (N, 3, 3), got {R.shape}')
        num = R.shape[0]
        expected = {'R': (num, 3, 3), 't': (num, 3), 'K': (num, 3, 3), 'uncertainty': (num,)}
        for key, shape in expected.items():
            value = getattr(self, key)
            if value is None:
                continue
            value = np.asarray(value, dtype=np.float64)
            if value.shape != shape:
                raise EstimatorError(f'estimate {key} must have shape {shape}, got {value.shape}')
            if not np.all(np.isfinite(value)):
                raise EstimatorError(f'estimate {key} contains non-finite values')
            object.__setattr__(self, key, value)

    @property
    def num_views(self) -> int:
        return int(self.R.shape[0])


@runtime_checkable
class PoseEstimator(Protocol):
    """What the harness calls: a name and ``estimate(view_set) -> PoseEstimate``."""

    name: str

    def estimate(self, view_set: ViewSet) -> PoseEstimate: ...


class ImagePoseEstimator(ABC):
    """Base class of estimators that may use only pixels and (when known) intrinsics."""

    name: str = 'image_estimator'

    def estimate(self, view_set: ViewSet) -> PoseEstimate:
        return self.estimate_from_images(view_set.images(), view_set.K)

    @abstractmethod
    def estimate_from_images(
        self, images: list[np.ndarray], K: Optional[np.ndarray]
    ) -> PoseEstimate:
        """Estimate cameras from N (H, W, 3) uint8 RGB images and optional (N, 3, 3) K."""


# ---------------------------------------------------------------------------------------------
# Random rotations


def random_rotations(rng: np.random.Generator, num: int) -> np.ndarray:
    """``num`` independent uniformly distributed (Haar) rotations, (num, 3, 3).

    A 4-D standard normal vector, normalised, is a uniform unit quaternion, and unit
    quaternions cover SO(3) twice with uniform measure, so their rotations are Haar-uniform.
    """
    quaternions = rng.standard_normal((num, 4))
    quaternions /= np.linalg.norm(quaternions, axis=-1, keepdims=True)
    w, x, y, z = quaternions.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def axis_angle_rotations(axes: np.ndarray, angles_rad: np.ndarray) -> np.ndarray:
    """Rotations by ``angles_rad`` (N,) about unit ``axes`` (N, 3) (Rodrigues): (N, 3, 3)."""
    axes = np.asarray(axes, dtype=np.float64)
    axes = axes / np.linalg.norm(axes, axis=-1, keepdims=True)
    angles = np.asarray(angles_rad, dtype=np.float64)[:, None, None]
    x, y, z = axes.T
    zeros = np.zeros_like(x)
    cross = np.stack(
        [np.stack([zeros, -z, y], -1), np.stack([z, zeros, -x], -1), np.stack([-y, x, zeros], -1)],
        axis=-2,
    )
    return np.eye(3) + np.sin(angles) * cross + (1.0 - np.cos(angles)) * (cross @ cross)


def _translations_from_centers(R: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """World-to-camera translations (N, 3) ``t = -R C`` of cameras R (N, 3, 3) at C (N, 3)."""
    return -np.einsum('nij,nj->ni', R, centers)


# ---------------------------------------------------------------------------------------------
# Built-in estimators


class GroundTruthEstimator:
    """Returns the true poses and intrinsics (reads the privileged ground truth)."""

    name = 'ground_truth'

    def estimate(self, view_set: ViewSet) -> PoseEstimate:
        return PoseEstimate(
            R=view_set.ground_truth_R, t=view_set.ground_truth_t, K=view_set.ground_truth_K
        )


class RandomPoseEstimator:
    """Chance floor: Haar-random rotations and Gaussian random centres (uses only N).

    Draws come from one ``numpy.random.Generator`` seeded at construction, so a run over the
    same view sets in the same order is reproducible.
    """

    name = 'random'

    def __init__(self, seed: int = DEFAULT_SEED, center_std: float = RANDOM_CENTER_STD) -> None:
        if center_std <= 0.0:
            raise EstimatorError(f'center_std must be positive, got {center_std}')
        self._rng = np.random.default_rng(seed)
        self._center_std = float(center_std)

    def estimate(self, view_set: ViewSet) -> PoseEstimate:
        num = view_set.num_views
        R = random_rotations(self._rng, num)
        centers = self._rng.normal(scale=self._center_std, size=(num, 3))
        return PoseEstimate(R=R, t=_translations_from_centers(R, centers))


class NoisyOracleEstimator:
    """True poses with controlled noise (reads the privileged ground truth).

    Each camera's rotation is pre-multiplied (in the camera frame) by a rotation of exactly
    ``rotation_noise_deg`` about a uniformly random axis, so each relative rotation error is at
    most twice that angle. Each centre moves by isotropic Gaussian noise with standard deviation
    ``center_noise * dataset.scene_scale`` per axis.
    """

    name = 'noisy_oracle'

    def __init__(
        self,
        seed: int = DEFAULT_SEED,
        rotation_noise_deg: float = 5.0,
        center_noise: float = 0.02,
    ) -> None:
        if rotation_noise_deg < 0.0 or center_noise < 0.0:
            raise EstimatorError('noise levels must be non-negative')
        self._rng = np.random.default_rng(seed)
        self._rotation_noise_rad = float(np.radians(rotation_noise_deg))
        self._center_noise = float(center_noise)

    def estimate(self, view_set: ViewSet) -> PoseEstimate:
        num = view_set.num_views
        gt_R = view_set.ground_truth_R
        gt_centers = camera_centers(gt_R, view_set.ground_truth_t)
        axes = self._rng.standard_normal((num, 3))
        noise = axis_angle_rotations(axes, np.full(num, self._rotation_noise_rad))
        R = noise @ gt_R
        sigma = self._center_noise * view_set.dataset.scene_scale
        centers = gt_centers + self._rng.normal(scale=sigma, size=(num, 3))
        return PoseEstimate(
            R=R, t=_translations_from_centers(R, centers), K=view_set.ground_truth_K
        )


# ---------------------------------------------------------------------------------------------
# Registry

EstimatorFactory = Callable[..., PoseEstimator]
_REGISTRY: dict[str, EstimatorFactory] = {}


def register_estimator(name: str, factory: EstimatorFactory, overwrite: bool = False) -> None:
    """Register ``factory`` under ``name``; it is called as ``factory(seed=..., **options)``."""
    if not name or not name.replace('_', '').replace('-', '').isalnum():
        raise EstimatorError(f'estimator names are letters, digits, "_" and "-"; got {name!r}')
    if name in _REGISTRY and not overwrite:
        raise EstimatorError(f'an estimator named {name!r} is already registered')
    _REGISTRY[name] = factory


def available_estimators() -> tuple[str, ...]:
    """Registered estimator names, sorted."""
    return tuple(sorted(_REGISTRY))


def create_estimator(name: str, seed: int = DEFAULT_SEED, **options) -> PoseEstimator:
    """Build the estimator registered as ``name`` with a seed and its own options."""
    if name not in _REGISTRY:
        raise EstimatorError(
            f'unknown estimator {name!r}; available: {", ".join(available_estimators())}'
        )
    estimator = _REGISTRY[name](seed=seed, **options)
    if not isinstance(estimator, PoseEstimator):
        raise EstimatorError(f'factory of {name!r} did not return a PoseEstimator')
    return estimator


def _ground_truth_factory(seed: int = DEFAULT_SEED) -> GroundTruthEstimator:
    del seed  # deterministic
    return GroundTruthEstimator()


register_estimator(GroundTruthEstimator.name, _ground_truth_factory)
register_estimator(RandomPoseEstimator.name, RandomPoseEstimator)
register_estimator(NoisyOracleEstimator.name, NoisyOracleEstimator)


def _ray_diffusion_factory(seed: int = DEFAULT_SEED, **options) -> PoseEstimator:
    """The model (imported lazily: torch is only needed when this estimator is chosen)."""
    from raydiff_ros.inference.adapters import make_ray_diffusion_estimator
    return make_ray_diffusion_estimator(seed=seed, **options)


register_estimator('ray_diffusion', _ray_diffusion_factory)


def _classical_sift_factory(seed: int = DEFAULT_SEED, **options) -> PoseEstimator:
    """SIFT + essential matrix baseline (OpenCV imported only when chosen)."""
    from raydiff_ros.evaluation.classical import ClassicalSiftEstimator
    return ClassicalSiftEstimator(seed=seed, **options)


register_estimator('classical_sift', _classical_sift_factory)
