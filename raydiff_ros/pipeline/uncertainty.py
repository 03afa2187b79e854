"""Mean pose and 6x6 covariance from the spread of S pose samples (diffusion samples).

For S samples ``target_T_source_s = [R_s, t_s]`` (4x4):

* mean rotation: the chordal L2 mean, the rotation nearest ``mean_s R_s`` (SVD); mean
  translation: ``mean_s t_s``;
* deviations: ``dt_s = t_s - t_mean`` (target frame) and ``dr_s = log(R_s R_mean^T)``, the
  rotation vector that rotates the mean onto the sample about the TARGET frame's fixed axes
  (``R_s = exp(dr_s) R_mean``);
* covariance, in ROS ``geometry_msgs/PoseWithCovariance`` order (x, y, z, rx, ry, rz):
  ``covariance_scale * sum_s d_s d_s^T / (S - 1)`` with ``d_s = (dt_s, dr_s)`` (zero for S = 1);
* unknown scale: when the translation unit is arbitrary (scale source ``none``), the length
  of the mean translation is itself uncertain; we model the scale as uncertain with relative
  standard deviation ``unknown_scale_relative_std`` and add the rank-1 term
  ``unknown_scale_relative_std^2 * t_mean t_mean^T`` to the translation block (inflation along
  the translation direction, zero for the reference camera itself);
* floors: the covariance is raised to at least ``F = diag(floors)`` in every direction
  (``translation_variance_floor`` for x, y, z in translation units squared,
  ``rotation_variance_floor`` for rx, ry, rz in rad^2): the eigenvalues of
  ``F^-1/2 C F^-1/2`` below 1 are raised to 1. A covariance already above its floors is kept
  as it is; a single sample (or identical samples) gives exactly ``F``; the result is always
  positive definite: never a zero or singular covariance, which consumers such as AMCL
  mistake for certainty and pose-graph back-ends (GTSAM and the like) cannot invert. (Raising
  the diagonal alone is not enough: two samples and the unknown-scale term give a translation
  block of rank two with its diagonal above the floors.)
"""

from dataclasses import dataclass

import numpy as np

from raydiff_ros.geometry.transforms import (
    check_transforms,
    chordal_mean_rotation,
    invert_transforms,
    make_transforms,
    rotation_log,
)
from raydiff_ros.parameter_fields import check_fields, parameter

POSE_DOF = 6


class UncertaintyError(ValueError):
    """Invalid samples or configuration for pose statistics."""


@dataclass(frozen=True)
class UncertaintyConfig:
    """Covariance parameters (ROS parameters of the same names).

    Each field's meaning, range and default are in its ``parameter(...)`` declaration. Raise
    ``covariance_scale`` when the diffusion samples prove over-confident against ground truth;
    ``unknown_scale_relative_std`` is explained in the module docstring.
    """

    translation_variance_floor: float = parameter(
        1e-4,
        'smallest x/y/z variance (units^2; (1 cm)^2 when metric)',
        minimum=0.0,
        exclusive_minimum=True,
    )
    rotation_variance_floor: float = parameter(
        3e-4,
        'smallest rx/ry/rz variance, rad^2 (about (1 deg)^2)',
        minimum=0.0,
        exclusive_minimum=True,
    )
    covariance_scale: float = parameter(
        1.0, 'factor on the sample covariance', minimum=0.0, exclusive_minimum=True
    )
    unknown_scale_relative_std: float = parameter(
        0.5,
        'relative std of the scale when not metric: adds std^2 t t^T to the translation block',
        minimum=0.0,
    )

    def __post_init__(self) -> None:
        check_fields(self, UncertaintyError)

    @property
    def variance_floors(self) -> np.ndarray:
        """(6,) floors in ROS order."""
        return np.array([self.translation_variance_floor] * 3 + [self.rotation_variance_floor] * 3)


@dataclass(frozen=True, eq=False)
class PoseStatistics:
    """Mean and covariance of S samples of one pose ``target_T_source``.

    Attributes:
        mean: (4, 4) mean ``target_T_source``.
        covariance: (6, 6) covariance, order (x, y, z, rx, ry, rz), translation in the target
            frame, rotation vectors about the target frame's axes.
        num_samples: S.
    """

    mean: np.ndarray
    covariance: np.ndarray
    num_samples: int


def mean_pose(samples: np.ndarray) -> np.ndarray:
    """Mean (4, 4) of (S, 4, 4) pose samples: chordal-mean rotation, arithmetic translation."""
    samples = check_transforms(samples, 'pose samples')
    if samples.ndim != 3:
        raise UncertaintyError(f'pose samples must have shape (S, 4, 4), got {samples.shape}')
    return make_transforms(
        chordal_mean_rotation(samples[:, :3, :3]), samples[:, :3, 3].mean(axis=0)
    )


def pose_deviations(samples: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """(S, 6) deviations ``(t_s - t_mean, log(R_s R_mean^T))`` of (S, 4, 4) samples."""
    dt = samples[:, :3, 3] - mean[:3, 3]
    dr = rotation_log(samples[:, :3, :3] @ mean[:3, :3].T)
    return np.concatenate([dt, dr], axis=1)


def sample_covariance(samples: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Unbiased (6, 6) covariance of the deviations of (S, 4, 4) samples; zeros when S = 1."""
    deviations = pose_deviations(samples, mean)
    if deviations.shape[0] < 2:
        return np.zeros((POSE_DOF, POSE_DOF))
    return deviations.T @ deviations / (deviations.shape[0] - 1)


def apply_variance_floors(covariance: np.ndarray, floors: np.ndarray) -> np.ndarray:
    """Raise symmetric positive semi-definite (6, 6) ``covariance`` to at least
    ``diag(floors)`` (floors (6,), all > 0) in every direction (module docstring): unchanged
    when it already is, positive definite always, its diagonal at least ``floors``."""
    covariance = np.array(covariance, dtype=np.float64)
    root = np.sqrt(np.asarray(floors, dtype=np.float64))
    whitened = covariance / np.outer(root, root)                   # F^-1/2 C F^-1/2
    values, vectors = np.linalg.eigh(0.5 * (whitened + whitened.T))
    if values.min() >= 1.0:
        return covariance
    raised = (vectors * np.maximum(values, 1.0)) @ vectors.T
    raised = 0.5 * (raised + raised.T) * np.outer(root, root)
    diagonal = np.diag_indices(POSE_DOF)
    raised[diagonal] = np.maximum(raised[diagonal], floors)     # exact despite rounding
    return raised


def pose_statistics(
    samples: np.ndarray, config: UncertaintyConfig = UncertaintyConfig(), scale_known: bool = True
) -> PoseStatistics:
    """Mean and covariance of S samples (S, 4, 4) of one ``target_T_source`` (module docstring).

    Args:
        samples: (S, 4, 4) rigid transforms, S >= 1.
        config: floors, scale and unknown-scale inflation.
        scale_known: False adds the unknown-scale inflation to the translation block.
    """
    samples = check_transforms(samples, 'pose samples')
    if samples.ndim != 3 or samples.shape[0] < 1:
        raise UncertaintyError(f'pose samples must have shape (S, 4, 4), got {samples.shape}')
    mean = mean_pose(samples)
    covariance = config.covariance_scale * sample_covariance(samples, mean)
    if not scale_known:
        translation = mean[:3, 3]
        covariance[:3, :3] += config.unknown_scale_relative_std**2 * np.outer(
            translation, translation
        )
    covariance = apply_variance_floors(covariance, config.variance_floors)
    return PoseStatistics(mean=mean, covariance=covariance, num_samples=samples.shape[0])


def camera_statistics(
    reference_T_cameras: np.ndarray,
    config: UncertaintyConfig = UncertaintyConfig(),
    scale_known: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean pose and covariance of every camera w.r.t. the reference camera.

    Args:
        reference_T_cameras: (S, N, 4, 4) samples of each camera's pose in the reference frame
            (``EstimationResult.samples_reference_T_camera``, after ``scale.fix_scale``).
        config: covariance parameters.
        scale_known: whether the translations are metric.

    Returns:
        ``(means, covariances)``: (N, 4, 4) ``reference_T_camera`` and (N, 6, 6) covariances
        in the reference frame, ROS order.
    """
    reference_T_cameras = np.asarray(reference_T_cameras, dtype=np.float64)
    if reference_T_cameras.ndim != 4:
        raise UncertaintyError(
            f'reference_T_cameras must have shape (S, N, 4, 4), got {reference_T_cameras.shape}'
        )
    stats = [
        pose_statistics(reference_T_cameras[:, i], config, scale_known)
        for i in range(reference_T_cameras.shape[1])
    ]
    return np.stack([s.mean for s in stats]), np.stack([s.covariance for s in stats])


def edge_statistics(
    reference_T_cameras: np.ndarray,
    index_from: int,
    index_to: int,
    config: UncertaintyConfig = UncertaintyConfig(),
    scale_known: bool = True,
) -> PoseStatistics:
    """Statistics of ``from_T_to = inv(reference_T_from) @ reference_T_to`` over the samples.

    Args:
        reference_T_cameras: (S, N, 4, 4) pose samples in a common frame.
        index_from: view index of the ``from`` camera.
        index_to: view index of the ``to`` camera.

    Returns:
        Mean ``from_T_to`` and covariance in the ``from`` frame (ROS order).
    """
    reference_T_cameras = np.asarray(reference_T_cameras, dtype=np.float64)
    samples = invert_transforms(reference_T_cameras[:, index_from]) @ reference_T_cameras[
        :, index_to
    ]
    return pose_statistics(samples, config, scale_known)
