"""Fixing the translation scale of a view-set estimate.

Ray diffusion recovers cameras up to a similarity: the translation unit of an estimate is
arbitrary (and differs between diffusion samples). Poses here are ``reference_T_camera``
(S, N, 4, 4) with the reference camera (view 0) at the origin, so scaling every translation by
one factor per sample rescales the scene about the reference camera and keeps every rotation.

Sources (``ScaleSource``; values equal ``ViewSetEstimate.SCALE_*``):

``none``
    Not metric. Each sample is normalised so that the distance between the centres of views
    0 and 1 is 1 (for a rig set: camera 0 to the next camera of the set). When that distance
    is degenerate (below ``min_baseline_fraction`` of the largest centre distance from the
    reference, e.g. a rotation-only pair) the largest distance from the reference is set to 1
    instead; when every centre coincides with the reference nothing is scaled. Translations are
    then in "baseline units" and covariances carry the unknown-scale inflation
    (``uncertainty``).
``known_baseline``
    Metric. The distance between the centres of two named cameras (indices in the node's
    camera list, ``baseline_camera_a`` / ``baseline_camera_b``) is ``baseline_m`` metres, e.g.
    the nominal rig baseline from the URDF. It applies only to rig view sets, where the two
    images are simultaneous and each camera appears once; for any other set the result falls
    back to ``none`` and says so in ``ScaledPoses.source``.
``map_alignment``
    Metric, set by ``relocalization`` (a similarity to known map poses); not chosen here.
"""

from dataclasses import dataclass
import enum
from typing import Sequence

import numpy as np

from raydiff_ros.parameter_fields import check_fields, parameter
from raydiff_ros.pipeline.view_sets import ViewSetMode

SCALE_SOURCE_NAMES = ('none', 'known_baseline')
"""Values of the ``scale_source`` parameter."""


class ScaleError(ValueError):
    """Invalid scale configuration, or poses whose scale cannot be fixed as asked."""


class ScaleSource(enum.IntEnum):
    """Where the translation unit came from (values of ``ViewSetEstimate.SCALE_*``)."""

    NONE = 0
    KNOWN_BASELINE = 1
    MAP_ALIGNMENT = 2

    @property
    def metric(self) -> bool:
        return self is not ScaleSource.NONE


@dataclass(frozen=True)
class ScaleConfig:
    """Scale parameters (ROS parameters of the same names).

    Each field's meaning, range and default are in its ``parameter(...)`` declaration. The
    baseline cameras are indices in the node's camera list; with ``known_baseline`` they must
    differ and ``baseline_m`` must be finite and > 0. The extent that
    ``min_baseline_fraction`` refers to is the largest centre distance from the reference.
    """

    scale_source: str = parameter(
        'none',
        'none: distance views 0-1 = 1 (not metric); known_baseline: metric from '
        'a known camera distance (rig sets only, else falls back to none)',
        choices=SCALE_SOURCE_NAMES,
    )
    baseline_camera_a: int = parameter(0, 'one end of the known baseline')
    baseline_camera_b: int = parameter(1, 'the other end')
    baseline_m: float = parameter(
        0.0, 'the known distance between the two camera centres, metres', minimum=0.0
    )
    min_baseline_fraction: float = parameter(
        1e-3,
        'a baseline shorter than this fraction of the sets extent is degenerate',
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
        exclusive_maximum=True,
    )

    def __post_init__(self) -> None:
        check_fields(self, ScaleError)
        if self.scale_source == 'known_baseline':
            if not (np.isfinite(self.baseline_m) and self.baseline_m > 0.0):
                raise ScaleError(
                    f'scale_source known_baseline needs baseline_m > 0, got {self.baseline_m}'
                )
            if self.baseline_camera_a == self.baseline_camera_b:
                raise ScaleError('baseline_camera_a and baseline_camera_b must differ')


@dataclass(frozen=True, eq=False)
class ScaledPoses:
    """Poses with a fixed scale.

    Attributes:
        reference_T_cameras: (S, N, 4, 4) poses with scaled translations.
        scale_factors: (S,) factor applied to each sample's translations.
        source: the scale source actually used.
    """

    reference_T_cameras: np.ndarray  # noqa: N815 (frame names)
    scale_factors: np.ndarray
    source: ScaleSource

    @property
    def metric(self) -> bool:
        return self.source.metric


def _check_poses(reference_T_cameras: np.ndarray) -> np.ndarray:
    poses = np.asarray(reference_T_cameras, dtype=np.float64)
    if poses.ndim != 4 or poses.shape[-2:] != (4, 4) or poses.shape[1] < 2:
        raise ScaleError(f'poses must have shape (S, N >= 2, 4, 4), got {poses.shape}')
    if not np.all(np.isfinite(poses)):
        raise ScaleError('poses contain non-finite values')
    return poses


def scale_translations(reference_T_cameras: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Multiply the translations of (S, N, 4, 4) poses by per-sample ``factors`` (S,)."""
    scaled = np.array(reference_T_cameras, dtype=np.float64)
    scaled[..., :3, 3] *= np.asarray(factors, dtype=np.float64)[:, None, None]
    return scaled


def unit_baseline_factors(
    reference_T_cameras: np.ndarray, min_baseline_fraction: float = 1e-3
) -> np.ndarray:
    """Per-sample factors making the distance between views 0 and 1 equal 1 (``none``).

    Falls back to the largest distance from view 0 when the 0-1 distance is degenerate, and to
    1 when every centre coincides with view 0 (see module docstring).

    Args:
        reference_T_cameras: (S, N, 4, 4) poses.
        min_baseline_fraction: degeneracy threshold (see ``ScaleConfig``).

    Returns:
        (S,) factors.
    """
    poses = _check_poses(reference_T_cameras)
    centers = poses[..., :3, 3]
    to_reference = np.linalg.norm(centers - centers[:, :1], axis=-1)  # (S, N)
    baseline = to_reference[:, 1]
    largest = to_reference.max(axis=1)
    factors = np.ones(poses.shape[0])
    usable = baseline > min_baseline_fraction * largest
    factors[usable] = 1.0 / baseline[usable]
    fallback = ~usable & (largest > 0.0)
    factors[fallback] = 1.0 / largest[fallback]
    return factors


def known_baseline_factors(
    reference_T_cameras: np.ndarray,
    index_a: int,
    index_b: int,
    baseline_m: float,
    min_baseline_fraction: float = 1e-3,
) -> np.ndarray:
    """Per-sample factors making the distance between views ``index_a`` and ``index_b``
    ``baseline_m`` metres.

    Raises:
        ScaleError: the two centres coincide (relative to the set's extent) in some sample.
    """
    poses = _check_poses(reference_T_cameras)
    centers = poses[..., :3, 3]
    distance = np.linalg.norm(centers[:, index_a] - centers[:, index_b], axis=-1)
    extent = np.linalg.norm(centers - centers[:, :1], axis=-1).max(axis=1)
    if np.any(distance <= min_baseline_fraction * extent) or np.any(distance <= 0.0):
        raise ScaleError(
            f'the estimated centres of views {index_a} and {index_b} coincide; '
            'the known baseline cannot fix the scale'
        )
    return baseline_m / distance


def fix_scale(
    reference_T_cameras: np.ndarray,
    camera_indices: Sequence[int],
    mode: ViewSetMode,
    config: ScaleConfig = ScaleConfig(),
) -> ScaledPoses:
    """Scale an estimate as ``config`` asks, falling back to ``none`` where it cannot apply.

    Args:
        reference_T_cameras: (S, N, 4, 4) ``reference_T_camera`` samples (view 0 = reference).
        camera_indices: the N camera indices of the views (``ViewSet.camera_indices``).
        mode: how the view set was formed (known baselines need a rig set).
        config: the scale parameters.

    Returns:
        The scaled poses, the factors and the source used.
    """
    poses = _check_poses(reference_T_cameras)
    camera_indices = [int(c) for c in camera_indices]
    if len(camera_indices) != poses.shape[1]:
        raise ScaleError(
            f'{len(camera_indices)} camera indices for {poses.shape[1]} views'
        )
    if config.scale_source == 'known_baseline' and mode == ViewSetMode.RIG:
        a, b = config.baseline_camera_a, config.baseline_camera_b
        if camera_indices.count(a) == 1 and camera_indices.count(b) == 1:
            factors = known_baseline_factors(
                poses, camera_indices.index(a), camera_indices.index(b), config.baseline_m,
                config.min_baseline_fraction,
            )
            return ScaledPoses(scale_translations(poses, factors), factors,
                               ScaleSource.KNOWN_BASELINE)
    factors = unit_baseline_factors(poses, config.min_baseline_fraction)
    return ScaledPoses(scale_translations(poses, factors), factors, ScaleSource.NONE)
