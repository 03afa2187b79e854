"""Pose-accuracy metrics for sparse-view camera estimation (numpy, float64, batched, pure).

Cameras follow the package convention: OpenCV/ROS optical axes, world-to-camera ``R`` (N, 3, 3)
and ``t`` (N, 3) with ``x_cam = R @ x_world + t``; camera centre ``C = -R^T t``.

Two metric families are implemented.

**RayDiffusion / RelPose++ protocol** (Zhang et al. 2024, evaluation code ``eval/utils.py``):

* Relative rotation error over all *ordered* pairs ``(i, j), i != j`` (N (N - 1) entries). For
  pair ``(i, j)`` the relative rotation is ``R_ij = R_i R_j^T``: the rotation part of
  ``cam_i_T_cam_j``. The error is the geodesic angle ``arccos((tr(R_ij,gt R_ij,pred^T) - 1) / 2)``
  in degrees; accuracy is the fraction strictly below 15 degrees.
* Camera-centre error: the predicted centres are aligned to the ground-truth centres by the
  Umeyama similarity (with scale) over the N cameras of the view set, and each camera's error is
  ``||C_gt - C_aligned|| / scene_scale``; accuracy is the fraction strictly below 0.1. The scene
  scale is the largest distance of a camera centre from the centroid of *all* cameras of the
  sequence (not only the N sampled ones), so the caller computes it (``sequence_scene_scale``).
  With N = 2 the alignment is exact and the accuracy is trivially 1.

**PoseDiffusion protocol** (Wang et al. 2023, ``pose_diffusion/util/metric.py``):

* Pairs are *unordered*: ``i < j`` only (N (N - 1) / 2 entries, the order of
  ``itertools.combinations``).
* RRA@15: fraction of pairs whose relative rotation error is below 15 degrees. The rotation
  error of a pair does not depend on its order (shown in ``relative_rotations``), so RRA over
  unordered pairs equals the RayDiffusion rotation accuracy over ordered pairs exactly.
* RTA@15: fraction of pairs whose relative translation *direction* error is below 15 degrees.
  PoseDiffusion takes the translation of the relative pose ``inv(M_i) M_j`` of PyTorch3D
  world-to-view matrices, i.e. (in our convention, see ``relative_translations``) the centre of
  camera i seen from camera j. Both vectors are normalised and the error is
  ``arccos(|cos angle|)``: the sign of the direction is ignored, so errors lie in [0, 90] deg.
* AUC@30: with ``e = max(rotation error, translation angle error)`` per pair, the mean over the
  integer thresholds k = 1..30 deg of the fraction of pairs with ``e < k`` (PoseDiffusion's
  numpy ``calculate_auc_np``: a cumulative histogram with unit bins; numpy closes its last bin,
  so the k = 30 term counts ``e <= 30``). Also called mAA. PoseDiffusion's torch variant
  ``calculate_auc`` bins with ``histc`` into 31 bins over [0, 30] instead, which differs
  slightly; we follow the numpy definition.

Numerical details that differ from the official code: we take the exact ``arccos`` of the
clipped cosine in float64 (RayDiffusion's formula). PyTorch3D's ``so3_relative_angle`` used by
PoseDiffusion bounds the cosine away from +-1 (``cos_bound = 1e-4``) to keep gradients finite,
which changes values below about 1 degree (and above about 179 degrees) only; no threshold
used here is affected. Near 0 the float64 ``arccos`` resolves angles to about 1e-6 degrees.
PoseDiffusion replaces a non-finite translation error by 1e6; a zero-length translation gives
90 degrees there and here.
"""

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from raydiff_ros.geometry.alignment import (
    DegenerateAlignmentError,
    Similarity,
    umeyama_alignment,
)
from raydiff_ros.geometry.transforms import camera_centers as _centers
from raydiff_ros.geometry.transforms import rotation_angle_deg

ROTATION_THRESHOLD_DEG = 15.0
"""RayDiffusion rotation accuracy threshold and PoseDiffusion RRA threshold (degrees)."""

TRANSLATION_ANGLE_THRESHOLD_DEG = 15.0
"""PoseDiffusion RTA threshold (degrees)."""

CAMERA_CENTER_THRESHOLD = 0.1
"""RayDiffusion camera-centre accuracy threshold, as a fraction of the scene scale."""

AUC_MAX_THRESHOLD_DEG = 30
"""PoseDiffusion AUC upper threshold (degrees); thresholds are 1, 2, ..., this value."""

MIN_VIEWS = 2
"""Fewest cameras in a view set (one pair)."""

ANGLE_BIN_EDGES_DEG = (0.0, 30.0, 60.0, 90.0, 180.0)
"""Edges of the true-angle bins of ``per_angle_bin_metrics`` (degrees): [0, 30), [30, 60),
[60, 90) and [90, 180]; the last bin is closed so that 180 degrees belongs to it."""


class MetricInputError(ValueError):
    """Metric inputs have wrong shapes, non-finite values or invalid parameters."""


# ---------------------------------------------------------------------------------------------
# Input checks and pair sets


def _as_rotations(R: np.ndarray, name: str) -> np.ndarray:
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 3 or R.shape[1:] != (3, 3):
        raise MetricInputError(f'{name} must have shape (N, 3, 3), got {R.shape}')
    if not np.all(np.isfinite(R)):
        raise MetricInputError(f'{name} contains non-finite values')
    return R


def _as_vectors(t: np.ndarray, num: int, name: str) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    if t.shape != (num, 3):
        raise MetricInputError(f'{name} must have shape ({num}, 3), got {t.shape}')
    if not np.all(np.isfinite(t)):
        raise MetricInputError(f'{name} contains non-finite values')
    return t


def _check_view_count(num: int) -> None:
    if num < MIN_VIEWS:
        raise MetricInputError(f'a view set needs at least {MIN_VIEWS} cameras, got {num}')


def _check_same_count(pred_R: np.ndarray, gt_R: np.ndarray) -> None:
    if pred_R.shape != gt_R.shape:
        raise MetricInputError(
            f'predicted and ground-truth rotations differ in shape: {pred_R.shape} vs {gt_R.shape}'
        )
    _check_view_count(pred_R.shape[0])


def ordered_pairs(num_views: int) -> np.ndarray:
    """All ordered pairs ``(i, j)``, ``i != j``, of ``num_views`` cameras: (N (N - 1), 2) int.

    Row-major order: (0, 1), (0, 2), ..., (1, 0), (1, 2), ...
    """
    _check_view_count(num_views)
    i, j = np.meshgrid(np.arange(num_views), np.arange(num_views), indexing='ij')
    keep = i != j
    return np.stack([i[keep], j[keep]], axis=-1)


def unordered_pairs(num_views: int) -> np.ndarray:
    """All unordered pairs ``(i, j)``, ``i < j``: (N (N - 1) / 2, 2) int, combinations order."""
    _check_view_count(num_views)
    i, j = np.triu_indices(num_views, k=1)
    return np.stack([i, j], axis=-1)


def _check_pairs(pairs: np.ndarray, num_views: int) -> np.ndarray:
    pairs = np.asarray(pairs)
    if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.issubdtype(pairs.dtype, np.integer):
        raise MetricInputError(f'pairs must be an integer array (P, 2), got {pairs.shape}')
    if pairs.size and (pairs.min() < 0 or pairs.max() >= num_views):
        raise MetricInputError(f'pair indices must lie in [0, {num_views})')
    return pairs


# ---------------------------------------------------------------------------------------------
# Elementary angles


def translation_angle_deg(v_a: np.ndarray, v_b: np.ndarray) -> np.ndarray:
    """Sign-agnostic angle between directions, ``arccos(|v_a . v_b| / (|v_a| |v_b|))``, degrees.

    The PoseDiffusion RTA definition: a direction and its opposite count as equal (the result
    lies in [0, 90] degrees). A zero-length vector has no direction and gives 90 degrees, the
    value PoseDiffusion's epsilon-normalisation yields for it.

    Args:
        v_a: (..., 3) vectors.
        v_b: (..., 3) vectors (broadcast against ``v_a``).

    Returns:
        (...) angles in [0, 90] degrees.
    """
    v_a = np.asarray(v_a, dtype=np.float64)
    v_b = np.asarray(v_b, dtype=np.float64)
    norms = np.linalg.norm(v_a, axis=-1) * np.linalg.norm(v_b, axis=-1)
    dots = np.abs(np.sum(v_a * v_b, axis=-1))
    safe = norms > 0.0
    cosine = np.where(safe, dots / np.where(safe, norms, 1.0), 0.0)
    return np.degrees(np.arccos(np.clip(cosine, 0.0, 1.0)))


# ---------------------------------------------------------------------------------------------
# Relative poses


def _checked_centers(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Centres (N, 3) of checked world-to-camera R (N, 3, 3), t (N, 3) (``MetricInputError``)."""
    R = _as_rotations(R, 'R')
    return _centers(R, _as_vectors(t, R.shape[0], 't'))


def relative_rotations(R: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Relative rotations ``R_ij = R_i R_j^T`` (rotation of ``cam_i_T_cam_j``) for given pairs.

    Relation to the official formula. RayDiffusion and PoseDiffusion compute ``R_i^T R_j`` with
    PyTorch3D row-vector rotations ``R_p3d``. The PyTorch3D <-> OpenCV conversion is
    ``R_p3d = R_cv^T D`` with ``D = diag(-1, -1, 1)`` (columns 0 and 1 of ``R_cv^T`` negated).
    Hence ``R_p3d,i^T R_p3d,j = D R_cv,i R_cv,j^T D = D R_ij D``. The rotation error only uses
    ``tr(A B^T)`` and ``tr(D A D (D B D)^T) = tr(D A B^T D) = tr(A B^T)`` because ``D^2 = I``,
    so errors computed from ``R_ij`` in our convention equal the official ones. The error is
    also unchanged when a pair's order is swapped, since ``tr(A^T B) = tr(B A^T) = tr(A B^T)``
    for the transposed relative rotations.

    Args:
        R: (N, 3, 3) world-to-camera rotations.
        pairs: (P, 2) integer index pairs ``(i, j)``.

    Returns:
        (P, 3, 3) relative rotations.
    """
    R = _as_rotations(R, 'R')
    pairs = _check_pairs(pairs, R.shape[0])
    return R[pairs[:, 0]] @ np.swapaxes(R[pairs[:, 1]], -1, -2)


def relative_rotation_angles_deg(R: np.ndarray, pairs: Optional[np.ndarray] = None) -> np.ndarray:
    """Geodesic angle of each pair's relative rotation ``R_i R_j^T``, degrees.

    How far apart two views look: ``arccos((tr(R_i R_j^T) - 1) / 2)``; it does not depend on
    the pair's order.

    Args:
        R: (N, 3, 3) world-to-camera rotations.
        pairs: (P, 2) index pairs; default: all unordered pairs ``i < j``.

    Returns:
        (P,) angles in [0, 180] degrees.
    """
    R = _as_rotations(R, 'R')
    if pairs is None:
        pairs = unordered_pairs(R.shape[0])
    return rotation_angle_deg(relative_rotations(R, pairs), np.eye(3))


def relative_translations(R: np.ndarray, t: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Relative translations for RTA: the centre of camera i in the frame of camera j.

    PoseDiffusion uses the translation of ``inv(M_i) M_j`` where ``M`` is PyTorch3D's 4x4
    row-vector world-to-view matrix; that relative pose maps view-i coordinates to view-j
    coordinates, and its translation is view i's origin expressed in view j. In our convention
    this is ``t_j - R_j R_i^T t_i = R_j (C_i - C_j)``; the PyTorch3D vector is the same vector
    with its x and y components negated (``D`` above), which leaves angles between such vectors
    unchanged.

    Args:
        R: (N, 3, 3) world-to-camera rotations.
        t: (N, 3) world-to-camera translations.
        pairs: (P, 2) integer index pairs ``(i, j)``.

    Returns:
        (P, 3) vectors ``R_j (C_i - C_j)`` in camera-j coordinates.
    """
    centers = _checked_centers(R, t)
    pairs = _check_pairs(pairs, R.shape[0])
    i, j = pairs[:, 0], pairs[:, 1]
    return np.einsum('pab,pb->pa', np.asarray(R, dtype=np.float64)[j], centers[i] - centers[j])


def relative_rotation_errors_deg(
    pred_R: np.ndarray, gt_R: np.ndarray, pairs: Optional[np.ndarray] = None
) -> np.ndarray:
    """Relative rotation error per pair, degrees (RayDiffusion / PoseDiffusion definition).

    Args:
        pred_R: (N, 3, 3) predicted world-to-camera rotations (any world frame).
        gt_R: (N, 3, 3) ground-truth world-to-camera rotations.
        pairs: (P, 2) index pairs; default: all ordered pairs (RayDiffusion).

    Returns:
        (P,) angles between ``R_ij,gt`` and ``R_ij,pred`` in degrees.
    """
    pred_R = _as_rotations(pred_R, 'pred_R')
    gt_R = _as_rotations(gt_R, 'gt_R')
    _check_same_count(pred_R, gt_R)
    if pairs is None:
        pairs = ordered_pairs(gt_R.shape[0])
    return rotation_angle_deg(relative_rotations(gt_R, pairs), relative_rotations(pred_R, pairs))


def relative_translation_errors_deg(
    pred_R: np.ndarray,
    pred_t: np.ndarray,
    gt_R: np.ndarray,
    gt_t: np.ndarray,
    pairs: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Relative translation direction error per pair, degrees (PoseDiffusion RTA definition).

    Args:
        pred_R: (N, 3, 3) predicted world-to-camera rotations.
        pred_t: (N, 3) predicted world-to-camera translations.
        gt_R: (N, 3, 3) ground-truth rotations.
        gt_t: (N, 3) ground-truth translations.
        pairs: (P, 2) index pairs; default: all unordered pairs ``i < j`` (PoseDiffusion).

    Returns:
        (P,) sign-agnostic angles in [0, 90] degrees (``translation_angle_deg``).
    """
    pred_R = _as_rotations(pred_R, 'pred_R')
    gt_R = _as_rotations(gt_R, 'gt_R')
    _check_same_count(pred_R, gt_R)
    if pairs is None:
        pairs = unordered_pairs(gt_R.shape[0])
    return translation_angle_deg(
        relative_translations(gt_R, gt_t, pairs), relative_translations(pred_R, pred_t, pairs)
    )


# ---------------------------------------------------------------------------------------------
# Camera centres


def sequence_scene_scale(centers: np.ndarray) -> float:
    """Scene scale: the largest distance of a camera centre from the centroid of all of them.

    Pass the centres of ALL cameras of the sequence (RayDiffusion computes it over the whole
    sequence, not over the sampled view set).

    Args:
        centers: (M, 3) camera centres in world coordinates.

    Returns:
        The scale (world units), > 0.
    """
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2 or centers.shape[1] != 3 or centers.shape[0] < 1:
        raise MetricInputError(f'centers must have shape (M, 3), M >= 1, got {centers.shape}')
    if not np.all(np.isfinite(centers)):
        raise MetricInputError('centers contains non-finite values')
    scale = float(np.linalg.norm(centers - centers.mean(axis=0), axis=-1).max())
    if scale <= 0.0:
        raise MetricInputError('all camera centres coincide; the scene scale is zero')
    return scale


def align_centers(pred_centers: np.ndarray, gt_centers: np.ndarray) -> Optional[Similarity]:
    """Umeyama similarity ``gt_T_pred`` of predicted onto ground-truth centres (N, 3) each.

    Returns ``None`` when either set is all-coincident: the least-squares similarity then has
    scale 0 and maps every predicted centre to the ground-truth centroid (see
    ``aligned_centers``).
    """
    try:
        return umeyama_alignment(pred_centers, gt_centers, with_scale=True)
    except DegenerateAlignmentError:
        return None


def aligned_centers(
    alignment: Optional[Similarity], pred_centers: np.ndarray, gt_centers: np.ndarray
) -> np.ndarray:
    """Predicted centres (N, 3) mapped into the ground-truth world by ``align_centers``' result.

    With ``alignment is None`` (a degenerate set) every centre maps to the ground-truth centroid.
    """
    if alignment is None:
        gt_centers = np.asarray(gt_centers, dtype=np.float64)
        return np.broadcast_to(gt_centers.mean(axis=0), gt_centers.shape).copy()
    return alignment.apply(pred_centers)


def camera_center_errors(
    pred_R: np.ndarray,
    pred_t: np.ndarray,
    gt_R: np.ndarray,
    gt_t: np.ndarray,
    scene_scale: float,
) -> np.ndarray:
    """Per-camera centre error after similarity alignment, in units of the scene scale.

    Args:
        pred_R: (N, 3, 3) predicted world-to-camera rotations (any world frame and scale).
        pred_t: (N, 3) predicted world-to-camera translations.
        gt_R: (N, 3, 3) ground-truth rotations.
        gt_t: (N, 3) ground-truth translations.
        scene_scale: the scale of the whole sequence (``sequence_scene_scale``), in
            ground-truth units.

    Returns:
        (N,) ``||C_gt - (s Q C_pred + u)|| / scene_scale`` with ``(s, Q, u)`` the Umeyama
        similarity of the predicted centres onto the ground-truth centres.
    """
    _check_scene_scale(scene_scale)
    pred_centers = _checked_centers(pred_R, pred_t)
    gt_centers = _checked_centers(gt_R, gt_t)
    if pred_centers.shape != gt_centers.shape:
        raise MetricInputError(
            f'predicted and ground-truth sets differ in size: {pred_centers.shape[0]} vs '
            f'{gt_centers.shape[0]}'
        )
    _check_view_count(gt_centers.shape[0])
    return _aligned_center_errors(pred_centers, gt_centers, scene_scale)[0]


def _aligned_center_errors(
    pred_centers: np.ndarray, gt_centers: np.ndarray, scene_scale: float
) -> tuple[np.ndarray, Optional[Similarity]]:
    alignment = align_centers(pred_centers, gt_centers)
    aligned = aligned_centers(alignment, pred_centers, gt_centers)
    return np.linalg.norm(gt_centers - aligned, axis=-1) / scene_scale, alignment


def _check_scene_scale(value: float) -> None:
    if not np.isfinite(value) or value <= 0.0:
        raise MetricInputError(f'scene_scale must be a positive finite number, got {value}')


# ---------------------------------------------------------------------------------------------
# Accuracies


def accuracy(errors: np.ndarray, threshold: float) -> float:
    """Fraction of errors strictly below ``threshold`` (NaN counts as a failure).

    Args:
        errors: (P,) errors, any unit.
        threshold: threshold in the same unit.
    """
    errors = np.asarray(errors, dtype=np.float64).reshape(-1)
    if errors.size == 0:
        raise MetricInputError('accuracy of an empty error list is undefined')
    return float(np.mean(errors < threshold))


def pose_auc(
    rotation_errors_deg: np.ndarray,
    translation_errors_deg: np.ndarray,
    max_threshold_deg: int = AUC_MAX_THRESHOLD_DEG,
) -> float:
    """PoseDiffusion AUC (mAA): mean over k = 1..max of the accuracy of max(rot, trans) error.

    ``AUC = (1 / K) sum_{k=1..K} mean(e < k)`` with ``e = max(rotation, translation)`` per pair
    and K = ``max_threshold_deg``; the last term counts ``e <= K`` (numpy's closed last
    histogram bin in the reference implementation).

    Args:
        rotation_errors_deg: (P,) relative rotation errors of the pairs, degrees.
        translation_errors_deg: (P,) relative translation angle errors of the same pairs.
        max_threshold_deg: K, a positive integer.

    Returns:
        The AUC in [0, 1].
    """
    rotation_errors_deg = np.asarray(rotation_errors_deg, dtype=np.float64).reshape(-1)
    translation_errors_deg = np.asarray(translation_errors_deg, dtype=np.float64).reshape(-1)
    if rotation_errors_deg.shape != translation_errors_deg.shape:
        raise MetricInputError('rotation and translation error lists differ in length')
    if rotation_errors_deg.size == 0:
        raise MetricInputError('AUC of an empty error list is undefined')
    if int(max_threshold_deg) != max_threshold_deg or max_threshold_deg < 1:
        raise MetricInputError(
            f'max_threshold_deg must be a positive integer, got {max_threshold_deg}'
        )
    max_errors = np.maximum(rotation_errors_deg, translation_errors_deg)
    thresholds = np.arange(1, int(max_threshold_deg) + 1, dtype=np.float64)
    below = max_errors[None, :] < thresholds[:, None]
    below[-1] = max_errors <= thresholds[-1]
    return float(np.mean(below.mean(axis=1)))


# ---------------------------------------------------------------------------------------------
# One view set, and pooling over view sets


@dataclass(frozen=True)
class ViewSetErrors:
    """All errors of one view set of N cameras.

    Attributes:
        ordered_pairs: (N (N - 1), 2) pairs of ``rotation_errors_deg`` (RayDiffusion).
        rotation_errors_deg: (N (N - 1),) relative rotation errors over ordered pairs.
        unordered_pairs: (N (N - 1) / 2, 2) pairs ``i < j`` of the PoseDiffusion errors.
        pair_rotation_errors_deg: (N (N - 1) / 2,) relative rotation errors (RRA).
        pair_translation_errors_deg: (N (N - 1) / 2,) relative translation angles (RTA).
        pair_true_angles_deg: (N (N - 1) / 2,) true angle between the two views of each
            unordered pair (``relative_rotation_angles_deg`` of the ground truth).
        camera_center_errors: (N,) aligned centre errors in units of the scene scale.
        alignment: ``gt_T_pred`` similarity of the centres, or None if a set was degenerate.
    """

    ordered_pairs: np.ndarray
    rotation_errors_deg: np.ndarray
    unordered_pairs: np.ndarray
    pair_rotation_errors_deg: np.ndarray
    pair_translation_errors_deg: np.ndarray
    pair_true_angles_deg: np.ndarray
    camera_center_errors: np.ndarray
    alignment: Optional[Similarity]

    @property
    def num_views(self) -> int:
        return int(self.camera_center_errors.shape[0])


def evaluate_view_set(
    pred_R: np.ndarray,
    pred_t: np.ndarray,
    gt_R: np.ndarray,
    gt_t: np.ndarray,
    scene_scale: float,
) -> ViewSetErrors:
    """Every per-pair and per-camera error of one view set (both protocols).

    Args:
        pred_R: (N, 3, 3) predicted world-to-camera rotations (any world frame and scale).
        pred_t: (N, 3) predicted world-to-camera translations.
        gt_R: (N, 3, 3) ground-truth world-to-camera rotations.
        gt_t: (N, 3) ground-truth translations.
        scene_scale: scale of the whole sequence in ground-truth units
            (``sequence_scene_scale``).

    Returns:
        The errors (``ViewSetErrors``).
    """
    pred_R = _as_rotations(pred_R, 'pred_R')
    gt_R = _as_rotations(gt_R, 'gt_R')
    _check_same_count(pred_R, gt_R)
    num = gt_R.shape[0]
    pred_t = _as_vectors(pred_t, num, 'pred_t')
    gt_t = _as_vectors(gt_t, num, 'gt_t')
    _check_scene_scale(scene_scale)

    ordered = ordered_pairs(num)
    unordered = unordered_pairs(num)
    center_errors, alignment = _aligned_center_errors(
        _checked_centers(pred_R, pred_t), _checked_centers(gt_R, gt_t), scene_scale
    )
    return ViewSetErrors(
        ordered_pairs=ordered,
        rotation_errors_deg=relative_rotation_errors_deg(pred_R, gt_R, ordered),
        unordered_pairs=unordered,
        pair_rotation_errors_deg=relative_rotation_errors_deg(pred_R, gt_R, unordered),
        pair_translation_errors_deg=relative_translation_errors_deg(
            pred_R, pred_t, gt_R, gt_t, unordered
        ),
        pair_true_angles_deg=relative_rotation_angles_deg(gt_R, unordered),
        camera_center_errors=center_errors,
        alignment=alignment,
    )


@dataclass(frozen=True)
class MetricThresholds:
    """Thresholds of the pooled accuracies (defaults: the published protocols)."""

    rotation_deg: float = ROTATION_THRESHOLD_DEG
    translation_angle_deg: float = TRANSLATION_ANGLE_THRESHOLD_DEG
    camera_center: float = CAMERA_CENTER_THRESHOLD
    auc_max_deg: int = AUC_MAX_THRESHOLD_DEG


@dataclass(frozen=True)
class PooledMetrics:
    """Accuracies and mean / median errors over the pooled errors of several view sets.

    Attributes:
        num_view_sets: number of view sets pooled.
        num_ordered_pairs: ordered pairs pooled (RayDiffusion rotation accuracy).
        num_pairs: unordered pairs pooled (PoseDiffusion metrics).
        num_cameras: cameras pooled (camera-centre accuracy).
        rotation_accuracy: RayDiffusion fraction of ordered pairs with error < threshold.
        camera_center_accuracy: fraction of cameras with centre error < threshold.
        rra: PoseDiffusion RRA (unordered pairs); equals ``rotation_accuracy``.
        rta: PoseDiffusion RTA (unordered pairs).
        auc: PoseDiffusion AUC up to ``thresholds.auc_max_deg``.
        mean_rotation_error_deg, median_rotation_error_deg: over ordered pairs.
        mean_camera_center_error, median_camera_center_error: over cameras (scene-scale units).
        mean_translation_angle_error_deg, median_translation_angle_error_deg: over pairs.
        thresholds: the thresholds used.
    """

    num_view_sets: int
    num_ordered_pairs: int
    num_pairs: int
    num_cameras: int
    rotation_accuracy: float
    camera_center_accuracy: float
    rra: float
    rta: float
    auc: float
    mean_rotation_error_deg: float
    median_rotation_error_deg: float
    mean_camera_center_error: float
    median_camera_center_error: float
    mean_translation_angle_error_deg: float
    median_translation_angle_error_deg: float
    thresholds: MetricThresholds = field(default_factory=MetricThresholds)


def pool_view_set_errors(
    view_set_errors: Sequence[ViewSetErrors], thresholds: Optional[MetricThresholds] = None
) -> PooledMetrics:
    """Pool errors over view sets, then threshold them (RayDiffusion ``eval_jobs`` aggregation).

    Errors of all view sets (all pairs, all cameras) are concatenated first and the accuracies
    are computed on the pooled lists. For view sets of equal N (the usual call: one N at a
    time) every set contributes the same number of entries, so this equals the mean of the
    per-set accuracies; for the AUC, which is linear in the error distribution, likewise.

    Args:
        view_set_errors: outputs of ``evaluate_view_set`` (at least one).
        thresholds: accuracy thresholds; default ``MetricThresholds()``.

    Returns:
        The pooled metrics.
    """
    if not view_set_errors:
        raise MetricInputError('pooling needs at least one view set')
    thresholds = thresholds or MetricThresholds()
    rotation = np.concatenate([e.rotation_errors_deg for e in view_set_errors])
    centers = np.concatenate([e.camera_center_errors for e in view_set_errors])
    pair_rotation = np.concatenate([e.pair_rotation_errors_deg for e in view_set_errors])
    pair_translation = np.concatenate([e.pair_translation_errors_deg for e in view_set_errors])
    return PooledMetrics(
        num_view_sets=len(view_set_errors),
        num_ordered_pairs=int(rotation.size),
        num_pairs=int(pair_rotation.size),
        num_cameras=int(centers.size),
        rotation_accuracy=accuracy(rotation, thresholds.rotation_deg),
        camera_center_accuracy=accuracy(centers, thresholds.camera_center),
        rra=accuracy(pair_rotation, thresholds.rotation_deg),
        rta=accuracy(pair_translation, thresholds.translation_angle_deg),
        auc=pose_auc(pair_rotation, pair_translation, thresholds.auc_max_deg),
        mean_rotation_error_deg=float(rotation.mean()),
        median_rotation_error_deg=float(np.median(rotation)),
        mean_camera_center_error=float(centers.mean()),
        median_camera_center_error=float(np.median(centers)),
        mean_translation_angle_error_deg=float(pair_translation.mean()),
        median_translation_angle_error_deg=float(np.median(pair_translation)),
        thresholds=thresholds,
    )


# ---------------------------------------------------------------------------------------------
# Breakdown by the true angle between the views of a pair


def angle_bin_labels(edges: Sequence[float] = ANGLE_BIN_EDGES_DEG) -> list[str]:
    """Labels ``'0-30'``, ``'30-60'``, ... of the bins between consecutive ``edges``."""
    return [f'{low:g}-{high:g}' for low, high in zip(edges[:-1], edges[1:], strict=True)]


def angle_bin_indices(
    angles_deg: np.ndarray, edges: Sequence[float] = ANGLE_BIN_EDGES_DEG
) -> np.ndarray:
    """Bin of each angle: ``k`` with ``edges[k] <= angle < edges[k + 1]`` (last bin closed).

    Args:
        angles_deg: (P,) angles in [edges[0], edges[-1]] degrees.
        edges: increasing bin edges (B + 1,).

    Returns:
        (P,) int bin indices in [0, B).
    """
    angles_deg = np.asarray(angles_deg, dtype=np.float64).reshape(-1)
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0.0):
        raise MetricInputError(f'bin edges must increase, got {edges.tolist()}')
    if np.any(~np.isfinite(angles_deg)) or np.any(
        (angles_deg < edges[0]) | (angles_deg > edges[-1])
    ):
        raise MetricInputError(f'angles must lie in [{edges[0]:g}, {edges[-1]:g}] degrees')
    return np.minimum(np.searchsorted(edges, angles_deg, side='right') - 1, edges.size - 2)


def per_angle_bin_metrics(
    true_angles_deg: np.ndarray,
    rotation_errors_deg: np.ndarray,
    thresholds_deg: Sequence[float],
    edges: Sequence[float] = ANGLE_BIN_EDGES_DEG,
) -> dict[str, dict]:
    """Rotation accuracy and median error of the pairs in each true-angle bin.

    Args:
        true_angles_deg: (P,) true angle between the views of each pair (unordered pairs,
            ``ViewSetErrors.pair_true_angles_deg`` pooled over view sets).
        rotation_errors_deg: (P,) relative rotation errors of the same pairs.
        thresholds_deg: accuracy thresholds (degrees).
        edges: bin edges (``ANGLE_BIN_EDGES_DEG``).

    Returns:
        JSON-ready ``{label: {'num_pairs': int, 'rotation_accuracy_at_deg': {f'{thr:g}':
        fraction of the bin's errors < thr}, 'median_rotation_error_deg': float}}`` in bin
        order; an empty bin has ``num_pairs`` 0 and None for the accuracies and the median.
    """
    true_angles_deg = np.asarray(true_angles_deg, dtype=np.float64).reshape(-1)
    rotation_errors_deg = np.asarray(rotation_errors_deg, dtype=np.float64).reshape(-1)
    if true_angles_deg.shape != rotation_errors_deg.shape:
        raise MetricInputError('true angles and rotation errors differ in length')
    bins = angle_bin_indices(true_angles_deg, edges)
    table = {}
    for k, label in enumerate(angle_bin_labels(edges)):
        errors = rotation_errors_deg[bins == k]
        table[label] = {
            'num_pairs': int(errors.size),
            'rotation_accuracy_at_deg': {
                f'{threshold:g}': accuracy(errors, threshold) if errors.size else None
                for threshold in thresholds_deg
            },
            'median_rotation_error_deg': float(np.median(errors)) if errors.size else None,
        }
    return table
