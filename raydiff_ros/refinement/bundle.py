"""Robust Sampson-error bundle adjustment of camera poses with known intrinsics.

Unknowns: world-to-camera rotations and translations ``cam_k_T_world`` (OpenCV axes). Pairs
with at least ``min_pair_matches`` matches link cameras; in each connected component of that
graph the lowest-index camera (its *anchor*; camera 0 in its own component) is held fixed
(rotation and position gauge) and after every step the component's centres are rescaled about
the anchor's centre so that the distance from the anchor to the component's second camera keeps
its initial value (scale gauge; the Sampson error does not depend on the scale). Cameras linked
to no other are held fixed. Components do not constrain one another, so each keeps the given
placement of its anchor.

For a pair (i, j) the fundamental matrix is ``F_ij = K_j^-T [t_ij / |t_ij|]_x R_ij K_i^-1``
with ``R_ij = R_j R_i^T`` and ``t_ij = t_j - R_ij t_i`` (``cam_j_T_cam_i``); the unit baseline
keeps a pair from lowering its error by shrinking its baseline. The signed Sampson
residual of a correspondence x_i <-> x_j (homogeneous pixels) is

    r = x_j^T F x_i / sqrt((F x_i)_0^2 + (F x_i)_1^2 + (F^T x_j)_0^2 + (F^T x_j)_1^2),

in pixels. All matches of all pairs sit in one tensor. The solver is Levenberg-Marquardt with
iteratively reweighted least squares (Cauchy or Huber weights): per iteration one forward-mode
Jacobian of all residuals (``torch.func.jacfwd``) over the 6 (N_free) pose increments (left
rotation increment ``exp([w]_x) R`` about the camera's own centre, additive centre increment;
rotating about the world origin instead couples rotation and position badly in object-centric
scenes), one small linear solve.
The robust scale is ``max(robust_scale_px, annealing * median |r|)`` so that a start several
degrees off (residuals of tens of pixels) is not treated as all outliers.
"""

from dataclasses import dataclass
import time
from typing import Optional

import numpy as np
import torch

from raydiff_ros.features.matching import PairMatches
from raydiff_ros.geometry.averaging import connected_components
from raydiff_ros.geometry.epipolar import homogeneous_sampson_residuals
from raydiff_ros.geometry.transforms import rotation_exp, skew

LOSSES = ('cauchy', 'huber')
GAUGE_EPS = 1e-12
"""Anchor-to-second-camera distances below this leave a component's scale unfixed."""
DAMPING_UP = 10.0
DAMPING_DOWN = 0.3
MAX_DAMPING = 1e10
DIAGONAL_FLOOR = 1e-12
"""Added to the Marquardt diagonal so that unobservable directions stay solvable."""
POSE_DOF = 6


class BundleError(ValueError):
    """Poses, intrinsics or matches given to :func:`refine_poses` are malformed."""


@dataclass(frozen=True)
class BundleConfig:
    """Settings of :func:`refine_poses`.

    Attributes:
        loss: robust loss, ``'cauchy'`` or ``'huber'``.
        robust_scale_px: final robust scale c (pixels) of the loss.
        annealing: the scale used in an iteration is ``max(robust_scale_px, annealing *
            median |r|)``.
        max_iterations: Levenberg-Marquardt iterations at most.
        initial_damping: starting lambda (relative to the diagonal of J^T W J).
        tolerance: stop when the relative decrease of the robust cost is below this.
        min_matches: fewer verified matches in all (or no pair at all) -> nothing refined.
        min_pair_matches: pairs with fewer matches than this link no cameras (gauge, see
            the module docstring); their matches still count in the cost. Few matches between
            wide-baseline views (e.g. 18 at 174 deg on temple_ring) pull cameras into wrong
            minima.
    """

    loss: str = 'cauchy'
    robust_scale_px: float = 1.0
    annealing: float = 2.0
    max_iterations: int = 50
    initial_damping: float = 1e-3
    tolerance: float = 1e-7
    min_matches: int = 30
    min_pair_matches: int = 50

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f'loss must be one of {LOSSES}, got {self.loss!r}')
        if min(self.robust_scale_px, self.initial_damping, self.tolerance) <= 0:
            raise ValueError('robust_scale_px, initial_damping and tolerance must be positive')
        if self.annealing < 0 or min(self.max_iterations, self.min_matches,
                                     self.min_pair_matches) < 1:
            raise ValueError('annealing must be >= 0 and iteration/match counts >= 1')


@dataclass(frozen=True)
class BundleReport:
    """What :func:`refine_poses` did.

    Attributes:
        refined: False when the input was returned unchanged.
        reason: why not refined ('' when refined).
        num_matches: verified matches used.
        num_free_cameras: cameras whose pose was optimised.
        iterations: accepted Levenberg-Marquardt steps.
        initial_median_px, final_median_px: median |Sampson residual| (pixels) before / after
            (NaN without matches).
        seconds: wall time of the refinement.
    """

    refined: bool
    reason: str
    num_matches: int
    num_free_cameras: int
    iterations: int
    initial_median_px: float
    final_median_px: float
    seconds: float


@dataclass(frozen=True, eq=False)
class _Correspondences:
    pair_i: torch.Tensor   # (M,) camera index of the first point
    pair_j: torch.Tensor   # (M,) camera index of the second point
    x_i: torch.Tensor      # (M, 3) homogeneous pixels in camera pair_i
    x_j: torch.Tensor      # (M, 3) homogeneous pixels in camera pair_j


def _robust_weights_and_cost(residuals: torch.Tensor, scale: float,
                             loss: str) -> tuple[torch.Tensor, float]:
    """IRLS weights (M,) and total robust cost of residuals at robust scale ``scale``."""
    ratio_sq = (residuals / scale).square()
    if loss == 'cauchy':
        return 1.0 / (1.0 + ratio_sq), float(0.5 * scale ** 2 * torch.log1p(ratio_sq).sum())
    magnitude = residuals.abs()
    inside = magnitude <= scale
    weights = torch.where(inside, torch.ones_like(magnitude),
                          scale / magnitude.clamp_min(DIAGONAL_FLOOR))
    cost = torch.where(inside, 0.5 * residuals.square(), scale * (magnitude - 0.5 * scale))
    return weights, float(cost.sum())


def _check_inputs(R: np.ndarray, t: np.ndarray, K: np.ndarray) -> tuple:
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    if R.ndim != 3 or R.shape[1:] != (3, 3) or R.shape[0] < 2:
        raise BundleError(f'R must have shape (N, 3, 3) with N >= 2, got {R.shape}')
    num = R.shape[0]
    if t.shape != (num, 3) or K.shape != (num, 3, 3):
        raise BundleError(f'expected t ({num}, 3) and K ({num}, 3, 3), got {t.shape}, {K.shape}')
    if not (np.isfinite(R).all() and np.isfinite(t).all() and np.isfinite(K).all()):
        raise BundleError('R, t and K must be finite')
    return R, t, K


def _correspondences(matches: list[PairMatches], num: int) -> _Correspondences:
    for pair in matches:
        if not isinstance(pair, PairMatches):
            raise BundleError(f'matches must be PairMatches, got {type(pair).__name__}')
        if pair.j >= num:
            raise BundleError(f'pair ({pair.i}, {pair.j}) refers to a camera beyond N = {num}')
    sizes = [pair.num_matches for pair in matches]
    pair_i = np.repeat([pair.i for pair in matches], sizes).astype(np.int64)
    pair_j = np.repeat([pair.j for pair in matches], sizes).astype(np.int64)
    points_i = np.concatenate([p.points_i for p in matches] + [np.zeros((0, 2))])
    points_j = np.concatenate([p.points_j for p in matches] + [np.zeros((0, 2))])

    def homogeneous(points: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([points, np.ones((len(points), 1))], axis=1))

    return _Correspondences(torch.from_numpy(pair_i), torch.from_numpy(pair_j),
                            homogeneous(points_i), homogeneous(points_j))


def _fix_scale(R: torch.Tensor, t: torch.Tensor,
               gauges: list[tuple[list[int], float]]) -> torch.Tensor:
    """Translations (N, 3) with each component's centres rescaled about its anchor (first
    index) so that the anchor-to-second-camera distance is the given one."""
    centers = -(R.transpose(-1, -2) @ t[..., None])[..., 0]
    for members, distance in gauges:
        anchor = centers[members[0]]
        current = float(torch.linalg.norm(centers[members[1]] - anchor))
        if distance < GAUGE_EPS or current < GAUGE_EPS:
            continue
        index = torch.tensor(members)
        centers = centers.index_copy(
            0, index, anchor + (distance / current) * (centers[index] - anchor))
    return -(R @ centers[..., None])[..., 0]


def _isotropic_diagonal(hessian: torch.Tensor) -> torch.Tensor:
    """Marquardt scaling (F * 6,) of a Gauss-Newton matrix whose unknowns are F blocks of a
    rotation and a centre increment (3 each): each block's mean diagonal entry, so that a
    damped step turns with the world frame (the rotation and centre increments are vectors in
    world axes) and the solution does not depend on the frame the poses are given in."""
    blocks = torch.diagonal(hessian).reshape(-1, 2, 3)
    return blocks.mean(dim=-1, keepdim=True).expand_as(blocks).reshape(-1)


def _median_abs(residuals: torch.Tensor) -> float:
    return float(residuals.abs().median()) if residuals.numel() else float('nan')


def refine_poses(R: np.ndarray, t: np.ndarray, K: np.ndarray, matches: list[PairMatches],
                 config: Optional[BundleConfig] = None
                 ) -> tuple[np.ndarray, np.ndarray, BundleReport]:
    """Refine cameras by robust minimisation of the Sampson error of verified matches.

    Args:
        R: (N, 3, 3) initial world-to-camera rotations ``cam_T_world`` (OpenCV axes).
        t: (N, 3) initial world-to-camera translations.
        K: (N, 3, 3) known intrinsics in pixels (the matches' pixel frame).
        matches: verified correspondences (``match_view_set``), pixels.
        config: solver settings (default ``BundleConfig()``).

    Returns:
        Refined R (N, 3, 3), t (N, 3) (camera 0 and every component anchor unchanged, anchor
        distances kept, see the module docstring) and a :class:`BundleReport`. With too few
        matches, or no pair with enough matches, the inputs come back unchanged (copies) with
        ``report.refined`` False and the reason.
    """
    config = config or BundleConfig()
    start = time.perf_counter()
    R_np, t_np, K_np = _check_inputs(R, t, K)
    num = R_np.shape[0]
    data = _correspondences(matches, num)
    total = int(data.pair_i.numel())
    edges = [(p.i, p.j) for p in matches if p.num_matches >= config.min_pair_matches]
    linked = [members for members in connected_components(num, edges) if len(members) > 1]
    free = sorted(k for members in linked for k in members[1:])
    R_t, t_t = torch.from_numpy(R_np.copy()), torch.from_numpy(t_np.copy())
    K_inv = torch.from_numpy(np.linalg.inv(K_np))

    def residuals_at(R_cur: torch.Tensor, t_cur: torch.Tensor) -> torch.Tensor:
        return homogeneous_sampson_residuals(R_cur, t_cur, K_inv, data.pair_i, data.pair_j,
                                             data.x_i, data.x_j)

    initial = _median_abs(residuals_at(R_t, t_t)) if total else float('nan')
    reason = ''
    if total < config.min_matches:
        reason = f'too few verified matches ({total} < {config.min_matches})'
    elif not free:
        reason = f'no pair has {config.min_pair_matches} matches'
    if reason:
        report = BundleReport(False, reason, total, 0, 0, initial, initial,
                              time.perf_counter() - start)
        return R_np.copy(), t_np.copy(), report

    free_index = torch.tensor(free)
    centers = -np.einsum('nji,nj->ni', R_np, t_np)
    gauges = [(members, float(np.linalg.norm(centers[members[1]] - centers[members[0]])))
              for members in linked]

    def apply(R_cur: torch.Tensor, t_cur: torch.Tensor, delta: torch.Tensor, exact: bool):
        """Rotate each free camera about its own centre and move the centre."""
        steps = torch.zeros(num, POSE_DOF, dtype=delta.dtype).index_copy(
            0, free_index, delta.reshape(len(free), POSE_DOF))
        rotation = rotation_exp(steps[:, :3]) if exact else (
            torch.eye(3, dtype=delta.dtype) + skew(steps[:, :3]))
        centers = -(R_cur.transpose(-1, -2) @ t_cur[..., None])[..., 0] + steps[:, 3:]
        R_new = rotation @ R_cur
        return R_new, -(R_new @ centers[..., None])[..., 0]

    damping = config.initial_damping
    residuals = residuals_at(R_t, t_t)
    iterations = 0
    while iterations < config.max_iterations:
        scale = max(config.robust_scale_px, config.annealing * _median_abs(residuals))
        weights, cost = _robust_weights_and_cost(residuals, scale, config.loss)
        zero = torch.zeros(len(free) * POSE_DOF, dtype=torch.float64)
        jacobian = torch.func.jacfwd(
            lambda d, R_c=R_t, t_c=t_t: residuals_at(*apply(R_c, t_c, d, exact=False)))(zero)
        weighted = jacobian * weights[:, None]
        hessian = weighted.T @ jacobian
        gradient = weighted.T @ residuals
        diagonal = _isotropic_diagonal(hessian) + DIAGONAL_FLOOR
        improved = False
        while damping < MAX_DAMPING:
            step = torch.linalg.solve(hessian + damping * torch.diag(diagonal), -gradient)
            R_new, t_new = apply(R_t, t_t, step, exact=True)
            t_new = _fix_scale(R_new, t_new, gauges)
            new_residuals = residuals_at(R_new, t_new)
            _, new_cost = _robust_weights_and_cost(new_residuals, scale, config.loss)
            if np.isfinite(new_cost) and new_cost < cost:
                improved = True
                break
            damping *= DAMPING_UP
        if not improved:
            break
        R_t, t_t, residuals = R_new, t_new, new_residuals
        iterations += 1
        damping = max(damping * DAMPING_DOWN, DIAGONAL_FLOOR)
        if (cost - new_cost) < config.tolerance * cost:
            break
    report = BundleReport(True, '', total, len(free), iterations, initial,
                          _median_abs(residuals), time.perf_counter() - start)
    return R_t.numpy(), t_t.numpy(), report
