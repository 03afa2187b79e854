"""Similarity (Umeyama) alignment of 3-D point sets, and its action on cameras.

A similarity ``target_T_source`` maps a point from the source frame to the target frame as
``x_target = s * R @ x_source + t`` (scale ``s > 0``, rotation ``R`` in SO(3), translation ``t``).

Evaluation of sparse-view pose estimation has no fixed gauge: a predicted camera set lives in
its own world frame, with its own scale. The evaluation protocol of RayDiffusion / RelPose++
removes that gauge by aligning the predicted camera centres to the ground-truth centres with
the least-squares similarity of Umeyama (IEEE TPAMI 13(4), 1991), then measuring the residual.

Cameras follow the package convention: OpenCV/ROS optical axes, world-to-camera ``R`` (N, 3, 3)
and ``t`` (N, 3) with ``x_cam = R @ x_world + t``.
"""

from dataclasses import dataclass

import numpy as np

MIN_ALIGNMENT_POINTS = 2
"""Fewest point pairs accepted. Two distinct points fix scale and translation; the rotation
about the line through them is then not unique, but every solution has zero residual."""

COINCIDENT_RTOL = 1e-12
"""A point set whose largest distance from its centroid is at most this fraction of its
largest coordinate norm is treated as all-coincident (degenerate)."""


class AlignmentError(ValueError):
    """The point sets cannot be aligned (bad shape, too few points, non-finite values)."""


class DegenerateAlignmentError(AlignmentError):
    """A point set is all-coincident, so the rotation (and the scale) are undefined."""


@dataclass(frozen=True)
class Similarity:
    """A similarity ``target_T_source``: ``x_target = scale * rotation @ x_source + translation``.

    Attributes:
        scale: positive scalar ``s`` (1.0 for a rigid alignment).
        rotation: (3, 3) rotation ``R`` from source axes to target axes.
        translation: (3,) translation ``t`` in target units.
    """

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map source points (..., 3) to target points (..., 3)."""
        points = np.asarray(points, dtype=np.float64)
        return self.scale * points @ self.rotation.T + self.translation


def _check_points(points: np.ndarray, name: str) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise AlignmentError(f'{name} must have shape (N, 3), got {points.shape}')
    if not np.all(np.isfinite(points)):
        raise AlignmentError(f'{name} contains non-finite values')
    return points


def is_coincident(points: np.ndarray) -> bool:
    """Whether all points (N, 3) coincide (up to ``COINCIDENT_RTOL`` of their magnitude)."""
    points = np.asarray(points, dtype=np.float64)
    spread = np.linalg.norm(points - points.mean(axis=0), axis=-1).max()
    magnitude = max(float(np.linalg.norm(points, axis=-1).max()), np.finfo(np.float64).tiny)
    return bool(spread <= COINCIDENT_RTOL * magnitude)


def umeyama_alignment(
    source: np.ndarray, target: np.ndarray, with_scale: bool = True
) -> Similarity:
    """Least-squares similarity ``target_T_source`` with ``target ≈ s R source + t``.

    Minimises ``sum_i ||target_i - (s R source_i + t)||^2`` over rotations ``R`` (det +1),
    translations ``t`` and, when ``with_scale``, scales ``s`` (else ``s = 1``). Closed form
    (Umeyama 1991): with centred sets ``X = source - mean``, ``Y = target - mean`` and the SVD
    ``Y^T X = U D V^T``, ``R = U S V^T`` with ``S = diag(1, 1, sign det(U V^T))``,
    ``s = tr(D S) / ||X||_F^2``, ``t = mean(target) - s R mean(source)``.

    Args:
        source: (N, 3) points in the source frame (e.g. predicted camera centres).
        target: (N, 3) corresponding points in the target frame (e.g. ground-truth centres).
        with_scale: estimate the scale; ``False`` gives the rigid (rotation + translation) fit.

    Returns:
        The similarity ``target_T_source``.

    Raises:
        AlignmentError: shapes differ or are not (N, 3), N < ``MIN_ALIGNMENT_POINTS``, or
            non-finite values.
        DegenerateAlignmentError: either set is all-coincident.
    """
    source = _check_points(source, 'source')
    target = _check_points(target, 'target')
    if source.shape != target.shape:
        raise AlignmentError(
            f'source and target must have the same shape, got {source.shape} and {target.shape}'
        )
    if source.shape[0] < MIN_ALIGNMENT_POINTS:
        raise AlignmentError(
            f'alignment needs at least {MIN_ALIGNMENT_POINTS} points, got {source.shape[0]}'
        )
    for points, name in ((source, 'source'), (target, 'target')):
        if is_coincident(points):
            raise DegenerateAlignmentError(
                f'{name} points are all coincident; the alignment is undefined'
            )

    source_mean = source.mean(axis=0)
    target_mean = target.mean(axis=0)
    source_centred = source - source_mean
    target_centred = target - target_mean

    U, singular_values, Vt = np.linalg.svd(target_centred.T @ source_centred)
    reflection_fix = np.ones(3)
    reflection_fix[2] = np.sign(np.linalg.det(U @ Vt)) or 1.0
    rotation = U @ np.diag(reflection_fix) @ Vt
    if with_scale:
        scale = float(singular_values @ reflection_fix / np.sum(source_centred**2))
    else:
        scale = 1.0
    translation = target_mean - scale * rotation @ source_mean
    return Similarity(scale=scale, rotation=rotation, translation=translation)


def transform_cameras(
    similarity: Similarity, R: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Express world-to-camera poses given in the source world in the target world.

    With ``similarity = target_T_source`` (``x_tgt = s Q x_src + u``) and cameras
    ``cam_T_source = (R, t)``, the returned cameras are ``cam_T_target = (R Q^T, s t - R Q^T u)``.
    The camera frame is scaled together with the world so that the rotation stays orthonormal;
    camera centres map as points: ``C_tgt = s Q C_src + u``.

    Args:
        similarity: ``target_T_source``.
        R: (N, 3, 3) world-to-camera rotations in the source world.
        t: (N, 3) world-to-camera translations in the source world.

    Returns:
        ``(R_new, t_new)``: (N, 3, 3) and (N, 3) world-to-camera poses in the target world.
    """
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if R.ndim != 3 or R.shape[1:] != (3, 3) or t.shape != (R.shape[0], 3):
        raise AlignmentError(f'expected R (N, 3, 3) and t (N, 3), got {R.shape} and {t.shape}')
    R_new = R @ similarity.rotation.T
    t_new = similarity.scale * t - R_new @ similarity.translation
    return R_new, t_new
