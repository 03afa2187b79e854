"""Relocalization: the map pose of a lost keyframe from a joint estimate with mapped keyframes.

A relocalization view set holds the query (the newest keyframe, whose map pose is unknown) and
n >= 2 stored keyframes with known map poses ``map_T_camera_i``. The estimator returns S
samples of ``reference_T_camera`` for all views, in an arbitrary unit. For each sample:

1. **Alignment.** The similarity ``map_T_reference`` (scale s, rotation Q, translation u) that
   maps the estimated centres of the stored cameras onto their map positions is the Umeyama
   least-squares fit (``geometry.alignment.umeyama_alignment``); it also fixes the metric
   scale. When the stored map positions are (nearly) collinear, which is always the case for
   n = 2 (second singular value of the centred positions below
   ``relocalization_collinearity_ratio`` times the first), the rotation about that line is
   not observable from positions. Then Q is taken from the camera orientations instead, as the
   chordal mean of ``R_map,i R_est,i^T``, minimally corrected so that it maps the estimated line
   direction onto the map line direction; s and u are the least-squares fit given Q.
2. **Query pose.** ``map_T_query = [Q R_q, s Q t_q + u]`` for ``reference_T_query = [R_q, t_q]``.

Across samples, the mean query pose is the chordal / arithmetic mean. Its covariance (ROS
order x, y, z, rx, ry, rz; translation in the map frame, metres; rotation vectors about the map
axes, rad) is the sum of

* the sample spread: ``relocalization_covariance_scale`` times the sample covariance;
* the alignment residual, per axis: translation ``sum_i |res_i|^2 / max(3n - 7, 1)`` with
  ``res_i = m_i - (s Q c_i + u)`` (3n equations, 7 similarity parameters) and rotation
  ``sum_i |log(R_map,i (Q R_est,i)^T)|^2 / max(3n - 3, 1)``, averaged over samples;
* the lever arm of that rotation residual: ``d^2`` times the rotation residual variance on
  each translation axis, d being the distance of the query from the centroid of the stored
  positions;

then every diagonal variance is raised to at least ``relocalization_translation_variance_floor``
/ ``relocalization_rotation_variance_floor``. The floors default to (10 cm)^2 and about
(3 deg)^2: a learned sparse-view estimate is a seed for a SLAM system's own matching, not a
survey.

Refusals (``RelocalizationError``): fewer than 2 stored poses (3 or more, not collinear, are
preferred; ``ViewSetConfig.relocalization_min_known_poses`` asks for 3 by default), stored map
positions spanning less than ``relocalization_min_map_extent_m``, coincident estimated
centres, a non-positive fitted scale, an RMS position residual larger than
``relocalization_max_relative_residual`` times the RMS spread of the stored positions, or an
RMS orientation residual above ``relocalization_max_rotation_residual_deg`` (the estimate
disagrees with the map).
"""

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from raydiff_ros.geometry.alignment import AlignmentError, umeyama_alignment
from raydiff_ros.geometry.transforms import (
    check_transforms,
    chordal_mean_rotation,
    make_transforms,
    rotation_exp,
    rotation_log,
)
from raydiff_ros.parameter_fields import check_fields, parameter
from raydiff_ros.pipeline.uncertainty import (
    apply_variance_floors,
    mean_pose,
    sample_covariance,
)

MIN_KNOWN_POSES = 2
"""Fewest stored map poses a relocalization accepts (3 non-collinear are preferred)."""

SIMILARITY_DOF = 7
ROTATION_DOF = 3
PARALLEL_TOLERANCE = 1e-12


class RelocalizationError(ValueError):
    """The query cannot be relocalized from these poses (too few, degenerate, inconsistent)."""


@dataclass(frozen=True)
class RelocalizationConfig:
    """Relocalization parameters (ROS parameters of the same names).

    Each field's meaning, range and default are in its ``parameter(...)`` declaration. The map
    extent is the largest pairwise distance of the stored positions; collinearity compares the
    singular values of the centred positions. The orientation residual is the RMS angle between
    the aligned estimated orientations of the stored cameras and their map orientations: it
    catches estimates whose positions fit the map but whose cameras are flipped (three points
    always fit a mirrored triangle).
    """

    relocalization_min_map_extent_m: float = parameter(
        0.05, 'stored map positions must span at least this', minimum=0.0, exclusive_minimum=True
    )
    relocalization_collinearity_ratio: float = parameter(
        0.05,
        'stored positions with 2nd/1st singular value below this are collinear: '
        'rotation about the line from orientations',
        minimum=0.0,
        maximum=1.0,
        exclusive_maximum=True,
    )
    relocalization_max_relative_residual: float = parameter(
        0.5,
        'refuse when the RMS position residual exceeds this fraction of the '
        'stored positions RMS spread',
        minimum=0.0,
        exclusive_minimum=True,
    )
    relocalization_max_rotation_residual_deg: float = parameter(
        30.0,
        'refuse when the RMS orientation residual exceeds this',
        minimum=0.0,
        maximum=180.0,
        exclusive_minimum=True,
    )
    relocalization_translation_variance_floor: float = parameter(
        0.01,
        'smallest x/y/z variance of the seed, m^2 ((10 cm)^2)',
        minimum=0.0,
        exclusive_minimum=True,
    )
    relocalization_rotation_variance_floor: float = parameter(
        0.0025,
        'smallest rx/ry/rz variance of the seed, rad^2 (about (2.9 deg)^2)',
        minimum=0.0,
        exclusive_minimum=True,
    )
    relocalization_covariance_scale: float = parameter(
        1.0, 'factor on the seeds sample covariance', minimum=0.0, exclusive_minimum=True
    )

    def __post_init__(self) -> None:
        check_fields(self, RelocalizationError)

    @property
    def variance_floors(self) -> np.ndarray:
        """(6,) floors in ROS order."""
        return np.array(
            [self.relocalization_translation_variance_floor] * 3
            + [self.relocalization_rotation_variance_floor] * 3
        )


@dataclass(frozen=True, eq=False)
class RelocalizationResult:
    """The relocalized query and how well the estimate agreed with the map.

    Attributes:
        map_T_query: (4, 4) mean pose of the query camera in the map.
        covariance: (6, 6) covariance of ``map_T_query`` (module docstring), ROS order.
        map_T_cameras: (N, 4, 4) mean map poses of every view (stored views as re-estimated).
        scales: (S,) scale s of each sample's similarity ``map_T_reference``: metres per
            estimate unit.
        rotations: (S, 3, 3) rotation Q of ``map_T_reference``.
        translations: (S, 3) translation u of ``map_T_reference``, metres.
        scaled_reference_T_cameras: (S, N, 4, 4) the samples with metric translations.
        residual_rms_m: RMS position residual of the stored cameras, metres.
        rotation_residual_rms_rad: RMS orientation residual of the stored cameras, radians.
        num_known_poses: n.
        collinear: whether the stored positions were treated as collinear.
        query_index: the query's view index.
    """

    map_T_query: np.ndarray  # noqa: N815 (frame names)
    covariance: np.ndarray
    map_T_cameras: np.ndarray  # noqa: N815 (frame names)
    scales: np.ndarray
    rotations: np.ndarray
    translations: np.ndarray
    scaled_reference_T_cameras: np.ndarray  # noqa: N815 (frame names)
    residual_rms_m: float
    rotation_residual_rms_rad: float
    num_known_poses: int
    collinear: bool
    query_index: int


@dataclass(frozen=True)
class _SampleAlignment:
    scale: float
    rotation: np.ndarray
    translation: np.ndarray
    squared_residuals: np.ndarray  # (n,) |res_i|^2, m^2
    squared_rotation_residuals: np.ndarray  # (n,) rad^2


def minimal_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation (3, 3) taking unit vector ``a`` (3,) to unit vector ``b`` (3,)."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    sine = np.linalg.norm(axis)
    cosine = float(np.clip(a @ b, -1.0, 1.0))
    if sine <= PARALLEL_TOLERANCE:
        if cosine > 0.0:
            return np.eye(3)
        perpendicular = np.cross(a, np.eye(3)[int(np.argmin(np.abs(a)))])
        return rotation_exp(np.pi * perpendicular / np.linalg.norm(perpendicular))
    return rotation_exp(axis / sine * np.arctan2(sine, cosine))


def _principal_direction(points: np.ndarray) -> np.ndarray:
    centred = points - points.mean(axis=0)
    return np.linalg.svd(centred)[2][0]


def is_collinear(points: np.ndarray, ratio: float) -> bool:
    """Whether (n, 3) points are collinear: 2nd singular value <= ratio * 1st (n = 2: yes)."""
    if points.shape[0] <= 2:
        return True
    singular_values = np.linalg.svd(points - points.mean(axis=0), compute_uv=False)
    return bool(singular_values[1] <= ratio * singular_values[0])


def _align_collinear(
    centers: np.ndarray, rotations: np.ndarray, map_centers: np.ndarray, map_rotations: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity for collinear stored positions: rotation from orientations (module doc)."""
    Q = chordal_mean_rotation(map_rotations @ np.swapaxes(rotations, -1, -2))
    line = _principal_direction(centers)
    map_line = _principal_direction(map_centers)
    along = (centers - centers.mean(axis=0)) @ line
    map_along = (map_centers - map_centers.mean(axis=0)) @ map_line
    if along @ map_along < 0.0:
        map_line = -map_line
    Q = minimal_rotation(Q @ line, map_line) @ Q
    centred = centers - centers.mean(axis=0)
    map_centred = map_centers - map_centers.mean(axis=0)
    scale = float(np.sum(map_centred * (centred @ Q.T)) / np.sum(centred**2))
    translation = map_centers.mean(axis=0) - scale * Q @ centers.mean(axis=0)
    return scale, Q, translation


def _align_sample(
    reference_T_stored: np.ndarray,
    map_T_stored: np.ndarray,
    collinear: bool,
) -> _SampleAlignment:
    centers = reference_T_stored[:, :3, 3]
    rotations = reference_T_stored[:, :3, :3]
    map_centers = map_T_stored[:, :3, 3]
    map_rotations = map_T_stored[:, :3, :3]
    try:
        similarity = umeyama_alignment(centers, map_centers, with_scale=True)
    except AlignmentError as error:
        raise RelocalizationError(f'cannot align the estimate to the map: {error}') from error
    if collinear:
        scale, Q, translation = _align_collinear(centers, rotations, map_centers, map_rotations)
    else:
        scale, Q, translation = similarity.scale, similarity.rotation, similarity.translation
    if not scale > 0.0:
        raise RelocalizationError(f'the fitted map scale is not positive ({scale})')
    residuals = map_centers - (scale * centers @ Q.T + translation)
    rotation_residuals = rotation_log(map_rotations @ np.swapaxes(Q @ rotations, -1, -2))
    return _SampleAlignment(
        scale=scale,
        rotation=Q,
        translation=translation,
        squared_residuals=np.sum(residuals**2, axis=-1),
        squared_rotation_residuals=np.sum(rotation_residuals**2, axis=-1),
    )


def relocalize(
    reference_T_cameras: np.ndarray,
    map_T_cameras: Sequence[Optional[np.ndarray]],
    query_index: int = 0,
    config: RelocalizationConfig = RelocalizationConfig(),
) -> RelocalizationResult:
    """The query's map pose and covariance from an estimate of a relocalization view set.

    Args:
        reference_T_cameras: (S, N, 4, 4) (or (N, 4, 4) for one sample) estimated poses of
            the N views in the reference frame, any unit
            (``EstimationResult.samples_reference_T_camera``).
        map_T_cameras: N entries, the known (4, 4) map pose of each view or None
            (``ViewSet.map_T_cameras``); the query's entry is ignored.
        query_index: view index of the query.
        config: alignment and covariance parameters.

    Returns:
        The result (see ``RelocalizationResult``).

    Raises:
        RelocalizationError: see the module docstring.
    """
    poses = check_transforms(reference_T_cameras, 'reference_T_cameras')
    if poses.ndim == 3:
        poses = poses[None]
    if poses.ndim != 4:
        raise RelocalizationError(f'poses must have shape (S, N, 4, 4), got {poses.shape}')
    num_views = poses.shape[1]
    if len(map_T_cameras) != num_views:
        raise RelocalizationError(f'{len(map_T_cameras)} map poses for {num_views} views')
    if not 0 <= query_index < num_views:
        raise RelocalizationError(f'query_index {query_index} out of range for {num_views}')
    known = [i for i, pose in enumerate(map_T_cameras) if pose is not None and i != query_index]
    if len(known) < MIN_KNOWN_POSES:
        raise RelocalizationError(
            f'relocalization needs at least {MIN_KNOWN_POSES} stored keyframes with map poses '
            f'(3 preferred), got {len(known)}'
        )
    map_T_stored = check_transforms(np.stack([map_T_cameras[i] for i in known]), 'map poses')
    map_centers = map_T_stored[:, :3, 3]
    extent = max(
        float(np.linalg.norm(a - b)) for a in map_centers for b in map_centers
    )
    if extent < config.relocalization_min_map_extent_m:
        raise RelocalizationError(
            f'the stored map positions span {extent:.4f} m < relocalization_min_map_extent_m '
            f'= {config.relocalization_min_map_extent_m}: degenerate configuration'
        )
    collinear = is_collinear(map_centers, config.relocalization_collinearity_ratio)

    alignments = [_align_sample(sample[known], map_T_stored, collinear) for sample in poses]
    scales = np.array([a.scale for a in alignments])
    Q = np.stack([a.rotation for a in alignments])
    u = np.stack([a.translation for a in alignments])

    scaled = np.array(poses)
    scaled[..., :3, 3] *= scales[:, None, None]
    map_T_reference = make_transforms(Q, u)
    aligned = map_T_reference[:, None] @ scaled  # (S, N, 4, 4)
    query_samples = aligned[:, query_index]
    map_T_query = mean_pose(query_samples)

    squared_residuals = np.stack([a.squared_residuals for a in alignments])  # (S, n)
    squared_rotation = np.stack([a.squared_rotation_residuals for a in alignments])
    num_known = len(known)
    residual_rms = float(np.sqrt(squared_residuals.mean()))
    spread_rms = float(np.sqrt(np.mean(np.sum((map_centers - map_centers.mean(0)) ** 2, -1))))
    if residual_rms > config.relocalization_max_relative_residual * spread_rms:
        raise RelocalizationError(
            f'the estimate disagrees with the map: RMS residual {residual_rms:.3f} m exceeds '
            f'{config.relocalization_max_relative_residual} x the stored spread '
            f'{spread_rms:.3f} m'
        )
    rotation_residual_rms = float(np.sqrt(squared_rotation.mean()))
    if np.degrees(rotation_residual_rms) > config.relocalization_max_rotation_residual_deg:
        raise RelocalizationError(
            f'the estimate disagrees with the map: RMS orientation residual '
            f'{np.degrees(rotation_residual_rms):.1f} deg exceeds '
            f'relocalization_max_rotation_residual_deg = '
            f'{config.relocalization_max_rotation_residual_deg}'
        )
    translation_variance = float(
        squared_residuals.sum(axis=1).mean() / max(3 * num_known - SIMILARITY_DOF, 1)
    )
    rotation_variance = float(
        squared_rotation.sum(axis=1).mean() / max(3 * num_known - ROTATION_DOF, 1)
    )
    lever_arm = float(np.linalg.norm(map_T_query[:3, 3] - map_centers.mean(axis=0)))
    residual_covariance = np.diag(
        [translation_variance + lever_arm**2 * rotation_variance] * 3 + [rotation_variance] * 3
    )
    covariance = (
        config.relocalization_covariance_scale * sample_covariance(query_samples, map_T_query)
        + residual_covariance
    )
    covariance = apply_variance_floors(covariance, config.variance_floors)

    return RelocalizationResult(
        map_T_query=map_T_query,
        covariance=covariance,
        map_T_cameras=np.stack([mean_pose(aligned[:, i]) for i in range(num_views)]),
        scales=scales,
        rotations=Q,
        translations=u,
        scaled_reference_T_cameras=scaled,
        residual_rms_m=residual_rms,
        rotation_residual_rms_rad=rotation_residual_rms,
        num_known_poses=num_known,
        collinear=collinear,
        query_index=query_index,
    )
