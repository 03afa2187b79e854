"""Reference estimators: the ceiling, the floor and a controlled error between them.

* ``ground_truth`` returns the true cameras (a check of the harness: must score 100 %).
* ``random``: the chance floor: independent uniformly random (Haar) rotations and random
  centres, seeded; uses only the number of views.
* ``noisy_oracle``: the true cameras, each rotation perturbed by a fixed angle about a random
  axis and each centre moved by Gaussian noise proportional to the scene scale (for checking
  thresholds).

``ground_truth`` and ``noisy_oracle`` read the privileged ``ViewSetInput.ground_truth``; they
serve the evaluation harness and tests, never the node.
"""

import numpy as np

from raydiff_ros.estimation.contract import (
    POSE_SOURCE_REFERENCE,
    EstimationError,
    EstimationResult,
    EstimatorError,
    GroundTruth,
    ViewSetInput,
)
from raydiff_ros.estimation.registry import EstimatorOptions
from raydiff_ros.geometry.transforms import (
    axis_angle_rotations,
    camera_centers,
    random_rotations,
    translations_from_centers,
)

RANDOM_CENTER_STD = 1.0
"""Standard deviation of the random floor's camera centres (arbitrary units: the metrics are
invariant to the world frame and scale of a prediction)."""


def _ground_truth(view_set: ViewSetInput, name: str) -> GroundTruth:
    if view_set.ground_truth is None:
        raise EstimationError(f'{name} reads the ground truth, which this view set lacks')
    return view_set.ground_truth


def _sources(num: int, source: str) -> tuple[str, ...]:
    return (POSE_SOURCE_REFERENCE,) + (source,) * (num - 1)


class GroundTruthEstimator:
    """Returns the true poses and intrinsics."""

    name = 'ground_truth'

    def estimate(self, view_set: ViewSetInput) -> EstimationResult:
        truth = _ground_truth(view_set, self.name)
        return EstimationResult.from_world_to_camera(
            truth.R, truth.t, K=truth.K, pose_sources=_sources(view_set.num_views, self.name))


class RandomPoseEstimator:
    """Chance floor: Haar-random rotations and Gaussian random centres (uses only N).

    Draws come from one ``numpy.random.Generator`` seeded at construction, so a run over the
    same view sets in the same order is reproducible.
    """

    name = 'random'

    def __init__(self, seed: int = 0, center_std: float = RANDOM_CENTER_STD) -> None:
        if center_std <= 0.0:
            raise EstimatorError(f'center_std must be positive, got {center_std}')
        self._rng = np.random.default_rng(seed)
        self._center_std = float(center_std)

    def estimate(self, view_set: ViewSetInput) -> EstimationResult:
        num = view_set.num_views
        R = random_rotations(self._rng, num)
        centers = self._rng.normal(scale=self._center_std, size=(num, 3))
        return EstimationResult.from_world_to_camera(
            R, translations_from_centers(R, centers), pose_sources=_sources(num, self.name))


class NoisyOracleEstimator:
    """True poses with controlled noise.

    Each camera's rotation is pre-multiplied (in the camera frame) by a rotation of exactly
    ``rotation_noise_deg`` about a uniformly random axis, so each relative rotation error is at
    most twice that angle. Each centre moves by isotropic Gaussian noise with standard deviation
    ``center_noise * scene_scale`` per axis.
    """

    name = 'noisy_oracle'

    def __init__(self, seed: int = 0, rotation_noise_deg: float = 5.0,
                 center_noise: float = 0.02) -> None:
        if rotation_noise_deg < 0.0 or center_noise < 0.0:
            raise EstimatorError('noise levels must be non-negative')
        self._rng = np.random.default_rng(seed)
        self._rotation_noise_rad = float(np.radians(rotation_noise_deg))
        self._center_noise = float(center_noise)

    def estimate(self, view_set: ViewSetInput) -> EstimationResult:
        truth = _ground_truth(view_set, self.name)
        num = view_set.num_views
        axes = self._rng.standard_normal((num, 3))
        R = axis_angle_rotations(axes, np.full(num, self._rotation_noise_rad)) @ truth.R
        sigma = self._center_noise * truth.scene_scale
        centers = camera_centers(truth.R, truth.t) + self._rng.normal(scale=sigma,
                                                                       size=(num, 3))
        return EstimationResult.from_world_to_camera(
            R, translations_from_centers(R, centers), K=truth.K,
            pose_sources=_sources(num, self.name))


def make_ground_truth(options: EstimatorOptions) -> GroundTruthEstimator:
    """Registry factory of ``ground_truth`` (deterministic: no option is used)."""
    return GroundTruthEstimator()


def make_random(options: EstimatorOptions) -> RandomPoseEstimator:
    """Registry factory of ``random`` (``options.seed``; extra: ``center_std``)."""
    return RandomPoseEstimator(seed=options.seed, **options.extra)


def make_noisy_oracle(options: EstimatorOptions) -> NoisyOracleEstimator:
    """Registry factory of ``noisy_oracle`` (``options.seed``; extra: the noise levels)."""
    return NoisyOracleEstimator(seed=options.seed, **options.extra)
