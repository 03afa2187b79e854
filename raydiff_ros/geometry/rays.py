"""Plücker rays of cameras, and cameras recovered from rays.

A ray is the 6-vector ``[d, m]``: unit direction ``d`` in the world frame and moment
``m = c x d`` for any point ``c`` on the ray (here the camera centre). Layout for the whole
package: ``(..., N, P*P, 6)`` for N cameras with a P x P patch grid, flat ray index
``p = P i + j`` (patch row ``i`` top -> bottom, column ``j`` left -> right, see
:mod:`raydiff_ros.geometry.crop`). The model works in the spatial layout ``(..., N, 6, P, P)``
(:func:`rays_to_spatial`, :func:`rays_from_spatial`).

Cameras follow the package convention (:mod:`raydiff_ros.geometry.camera`): world-to-camera
``R``, ``t`` (``camera_T_world``), pixel ``K``.

Rays -> cameras:
    * centre: least-squares intersection of a camera's rays (:func:`intersect_rays`);
    * known intrinsics: rotation by Procrustes alignment of the predicted directions with the
      directions of an identity-pose camera with those intrinsics
      (:func:`rays_to_cameras_procrustes`; the robot case, and the official evaluation path);
    * unknown intrinsics: a RANSAC homography from the crop grid to the predicted directions
      (:func:`fit_ray_homography`), factorised into rotation and intrinsics by QR
      (:func:`decompose_homography_qr`), or by the official QL variant for parity
      (:func:`decompose_homography_ql_compat`), in :func:`rays_to_cameras_homography`.
"""

from dataclasses import dataclass
import math
from typing import NamedTuple, Optional

import cv2
import numpy as np
import torch

from raydiff_ros.geometry import conventions, crop
from raydiff_ros.geometry.camera import Cameras
from raydiff_ros.geometry.checks import (
    ArrayLike,
    DegenerateGeometryError,
    GeometryInputError,
    as_float_tensor,
    require_finite,
    require_trailing_shape,
)
from raydiff_ros.geometry.conventions import ImageSize
from raydiff_ros.geometry.linalg3 import det3, solve_symmetric3

RAY_DIM = 6
"""Channels of a Plücker ray: direction (3) then moment (3)."""

OFFICIAL_EVAL_FOCAL_NDC = 3.453
"""Focal length (NDC units, principal point 0) the official evaluation assumes for every camera
when it recovers rotations by Procrustes (``rays_to_cameras`` default)."""

HOMOGRAPHY_RANSAC_THRESHOLD = 0.2
"""RANSAC reprojection threshold of the official homography fit, in units of the target plane
(direction x/z, y/z)."""

MIN_ABS_DIRECTION_Z = 1e-4
"""The official filter: rays whose direction has ``|z|`` at most this lie (almost) at infinity on
the target plane z = 1 and are left out of the homography fit."""

MIN_HOMOGRAPHY_POINTS = 4
"""Fewest point correspondences that determine a homography."""

MIN_INTERSECTION_RAYS = 2
"""Fewest rays that can intersect in a point."""

PARALLEL_RAYS_TOLERANCE = 1e-6
"""Rays count as (near) parallel when the smallest eigenvalue of ``sum(I - d d^T)`` is at most
this fraction of the largest: their least-squares intersection is then not unique."""

MIN_DIRECTION_NORM = 1e-12
"""Ray directions with a smaller norm are rejected as zero."""

SINGULAR_HOMOGRAPHY_TOLERANCE = 1e-9
"""A homography with ``|det H| / |H|_F^3`` at most this is rejected as singular."""

ACCUMULATION_DTYPE = torch.float64
"""dtype of the 3x3 normal equations of :func:`intersect_rays`: ``M I - sum d d^T`` cancels
badly in float32 for narrow ray bundles (small fields of view)."""

MIN_MEAN_DIRECTION_NORM = 1e-3
"""A camera's mean unit ray direction shorter than this has no usable mean viewing direction."""


def _num_patches(rays: torch.Tensor) -> int:
    num_rays = rays.shape[-2]
    side = math.isqrt(num_rays)
    if side * side != num_rays or side == 0:
        raise GeometryInputError(
            f'rays must hold P*P rays per camera (a square grid), got {num_rays}'
        )
    return side


def _require_rays(rays: torch.Tensor, name: str = 'rays') -> None:
    require_trailing_shape(rays, name, (RAY_DIM,))
    if rays.dim() < 2:
        raise GeometryInputError(f'{name} must have shape (..., M, 6), got {tuple(rays.shape)}')
    require_finite(rays, name)
    norms = rays[..., :3].norm(dim=-1)
    if not bool((norms > MIN_DIRECTION_NORM).all()):
        raise GeometryInputError(f'{name} contains a zero direction')


def _unit(vectors: torch.Tensor) -> torch.Tensor:
    return vectors / vectors.norm(dim=-1, keepdim=True)


def rays_to_spatial(rays: ArrayLike) -> torch.Tensor:
    """Flat rays (..., P*P, 6) -> spatial layout (..., 6, P, P); [..., c, i, j] = ray P i + j."""
    rays = as_float_tensor(rays, 'rays')
    require_trailing_shape(rays, 'rays', (RAY_DIM,))
    side = _num_patches(rays)
    return rays.transpose(-1, -2).reshape(rays.shape[:-2] + (RAY_DIM, side, side))


def rays_from_spatial(spatial_rays: ArrayLike) -> torch.Tensor:
    """Spatial rays (..., 6, P, P) -> flat layout (..., P*P, 6) (inverse of rays_to_spatial)."""
    spatial = as_float_tensor(spatial_rays, 'spatial_rays')
    if spatial.dim() < 3 or spatial.shape[-3] != RAY_DIM or spatial.shape[-1] != spatial.shape[-2]:
        raise GeometryInputError(
            f'spatial_rays must have shape (..., 6, P, P), got {tuple(spatial.shape)}'
        )
    side = spatial.shape[-1]
    return spatial.reshape(spatial.shape[:-3] + (RAY_DIM, side * side)).transpose(-1, -2)


def plucker_rays(origins: ArrayLike, directions: ArrayLike) -> torch.Tensor:
    """Plücker rays through ``origins`` along ``directions``.

    Args:
        origins: (..., 3) a point on each ray (world frame).
        directions: (..., 3) directions (any non-zero length), broadcastable with origins.

    Returns:
        (..., 6) ``[d, m]`` with ``d`` the unit direction and ``m = origin x d``.
    """
    directions = as_float_tensor(directions, 'directions')
    require_trailing_shape(directions, 'directions', (3,))
    origins = as_float_tensor(origins, 'origins', like=directions)
    require_trailing_shape(origins, 'origins', (3,))
    require_finite(directions, 'directions')
    require_finite(origins, 'origins')
    if not bool((directions.norm(dim=-1) > MIN_DIRECTION_NORM).all()):
        raise GeometryInputError('directions contains a zero vector')
    unit = _unit(directions)
    origins, unit = torch.broadcast_tensors(origins, unit)
    return torch.cat([unit, torch.linalg.cross(origins, unit, dim=-1)], dim=-1)


def camera_directions(K: torch.Tensor, pixels: torch.Tensor) -> torch.Tensor:
    """Camera-frame viewing directions ``K^-1 [u, v, 1]`` of pixels (OpenCV camera axes).

    Args:
        K: (..., 3, 3) zero-skew pixel intrinsics.
        pixels: (..., M, 2) pixel coordinates, batch broadcastable with K's.

    Returns:
        (..., M, 3) directions with z = 1 (not normalised).
    """
    focal = torch.stack([K[..., 0, 0], K[..., 1, 1]], dim=-1)[..., None, :]
    centre = torch.stack([K[..., 0, 2], K[..., 1, 2]], dim=-1)[..., None, :]
    xy = (pixels - centre) / focal
    return torch.cat([xy, torch.ones_like(xy[..., :1])], dim=-1)


def rays_from_pixels(cameras: Cameras, pixels: ArrayLike) -> torch.Tensor:
    """Plücker rays of the given pixels of each camera.

    Args:
        cameras: batch shape (...).
        pixels: (..., M, 2) pixel coordinates ``(u, v)`` per camera (batch broadcastable).

    Returns:
        (..., M, 6) rays ``[d, m]``: ``d = normalize(R^T K^-1 [u, v, 1])`` (world frame),
        ``m = C x d`` with ``C`` the camera centre.
    """
    pixels = as_float_tensor(pixels, 'pixels', like=cameras.R)
    require_trailing_shape(pixels, 'pixels', (2,))
    if pixels.dim() < 2:
        raise GeometryInputError(f'pixels must have shape (..., M, 2), got {tuple(pixels.shape)}')
    require_finite(pixels, 'pixels')
    directions_camera = camera_directions(cameras.K, pixels)
    directions_world = directions_camera @ cameras.R  # row form of R^T d
    return plucker_rays(cameras.centers[..., None, :], directions_world)


def cameras_to_rays(
    cameras: Cameras,
    crop_params: Optional[ArrayLike] = None,
    num_patches: int = crop.DEFAULT_NUM_PATCHES,
) -> torch.Tensor:
    """Plücker rays through the patch centres of each camera's crop (official cameras_to_rays).

    Args:
        cameras: batch shape (..., N).
        crop_params: (..., N, 4) crop parameters (broadcastable), or None for the full centred
            square [-1, 1]^2 in NDC.
        num_patches: P, patches per crop side.

    Returns:
        (..., N, P*P, 6) rays, ray ``p = P i + j`` through patch row i, column j.
    """
    if crop_params is not None:
        crop_params = as_float_tensor(crop_params, 'crop_params', like=cameras.R)
    pixels = crop.pixel_grid(crop_params, cameras.image_size, num_patches, flatten=True)
    return rays_from_pixels(cameras, pixels)


def points_on_rays(rays: torch.Tensor) -> torch.Tensor:
    """The point ``d_hat x m`` of each ray (the closest point to the origin for unit ``d``).

    Args:
        rays: (..., 6).

    Returns:
        (..., 3) points, computed as the official code does (direction normalised first).
    """
    return torch.linalg.cross(_unit(rays[..., :3]), rays[..., 3:], dim=-1)


def intersect_rays(rays: ArrayLike) -> torch.Tensor:
    """Least-squares intersection of each bundle of rays (a camera centre).

    Solves ``sum_i (I - d_i d_i^T) c = sum_i (I - d_i d_i^T) p_i`` with ``d_i`` the unit
    directions and ``p_i = d_i x m_i`` a point on ray i. The 3x3 system is accumulated and
    solved in float64 (``ACCUMULATION_DTYPE``); the result has the rays' dtype.

    Args:
        rays: (..., M, 6) with M >= 2 rays per bundle.

    Returns:
        (..., 3) the point closest to all rays of each bundle (world frame).

    Raises:
        GeometryInputError: wrong shape, fewer than 2 rays, non-finite values, zero directions.
        DegenerateGeometryError: (near) parallel rays (no unique intersection).
    """
    rays = as_float_tensor(rays, 'rays')
    _require_rays(rays)
    if rays.shape[-2] < MIN_INTERSECTION_RAYS:
        raise GeometryInputError(
            f'intersect_rays needs at least {MIN_INTERSECTION_RAYS} rays per bundle, got '
            f'{rays.shape[-2]}'
        )
    directions = _unit(rays[..., :3]).to(ACCUMULATION_DTYPE)
    points = points_on_rays(rays).to(ACCUMULATION_DTYPE)
    identity = torch.eye(3, device=rays.device, dtype=ACCUMULATION_DTYPE)
    normal_matrix = rays.shape[-2] * identity - directions.transpose(-1, -2) @ directions
    along = (directions * points).sum(dim=-1, keepdim=True) * directions
    right_side = (points - along).sum(dim=-2)
    eigenvalues, eigenvectors = torch.linalg.eigh(normal_matrix)
    conditioning = eigenvalues[..., 0] / eigenvalues[..., -1]
    if not bool((conditioning > PARALLEL_RAYS_TOLERANCE).all()):
        raise DegenerateGeometryError(
            'rays are (near) parallel: their intersection is not unique (smallest/largest '
            f'eigenvalue {float(conditioning.min()):.3g} <= {PARALLEL_RAYS_TOLERANCE})'
        )
    centres = solve_symmetric3(eigenvalues, eigenvectors, right_side)
    return centres.to(rays.dtype)


def procrustes_rotation(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Rotation ``R`` minimising ``sum_i |target_i - R source_i|^2`` (orthogonal Procrustes).

    Args:
        source: (..., M, 3) unit vectors in the source frame.
        target: (..., M, 3) corresponding unit vectors in the target frame.

    Returns:
        (..., 3, 3) proper rotation ``target_R_source``.
    """
    correlation = target.transpose(-1, -2) @ source  # sum_i target_i source_i^T
    left, _, right_h = torch.linalg.svd(correlation)
    determinant = det3(left @ right_h)
    correction = torch.ones(correlation.shape[:-1], device=source.device, dtype=source.dtype)
    correction[..., 2] = torch.where(determinant < 0, -1.0, 1.0)
    return (left * correction[..., None, :]) @ right_h


def official_eval_intrinsics(image_size: ImageSize, like: torch.Tensor) -> torch.Tensor:
    """Pixel intrinsics of the official evaluation's assumed camera (NDC focal 3.453, pp 0).

    Args:
        image_size: ``(W, H)`` or (..., 2).
        like: tensor whose device and dtype the result takes.

    Returns:
        (..., 3, 3) ``K`` with ``f = 3.453 * min(W, H) / 2`` and the image centre as principal
        point.
    """
    size = conventions.image_size_tensor(image_size, like)
    focal = torch.full_like(size, OFFICIAL_EVAL_FOCAL_NDC)
    return conventions.intrinsics_from_ndc(focal, torch.zeros_like(size), size)


def rays_to_cameras_procrustes(
    rays: ArrayLike,
    K: ArrayLike,
    image_size: ImageSize,
    crop_params: Optional[ArrayLike] = None,
) -> Cameras:
    """Cameras from rays when the intrinsics are known (robot case; official eval path).

    Centre: :func:`intersect_rays`. Rotation: :func:`procrustes_rotation` of the predicted unit
    directions (world) onto the directions ``normalize(K^-1 [u, v, 1])`` (camera frame) of the
    crop's patch centres. Translation ``t = -R C``.

    Args:
        rays: (..., N, P*P, 6) predicted rays.
        K: (..., N, 3, 3) pixel intrinsics (broadcastable), e.g. from CameraInfo, or
            :func:`official_eval_intrinsics` for the official evaluation.
        image_size: ``(W, H)`` or (..., N, 2).
        crop_params: (..., N, 4) crop parameters of the rays' grid, or None (full square).

    Returns:
        :class:`Cameras` of batch shape (..., N), with the given K.
    """
    rays = as_float_tensor(rays, 'rays')
    _require_rays(rays)
    num_patches = _num_patches(rays)
    K = as_float_tensor(K, 'K', like=rays)
    conventions.require_pinhole_intrinsics(K)
    size = conventions.image_size_tensor(image_size, rays)
    if crop_params is not None:
        crop_params = as_float_tensor(crop_params, 'crop_params', like=rays)
    centres = intersect_rays(rays)
    pixels = crop.pixel_grid(crop_params, size, num_patches, flatten=True)
    identity_directions = _unit(camera_directions(K, pixels))
    rotation = procrustes_rotation(_unit(rays[..., :3]), identity_directions)
    translation = -(rotation @ centres[..., None])[..., 0]
    return Cameras(rotation, translation, K, size)


@dataclass(frozen=True)
class HomographyFitConfig:
    """How :func:`fit_ray_homography` fits a homography to one camera's rays.

    Attributes:
        ransac_threshold: RANSAC reprojection threshold on the target plane (direction x/z, y/z
            in the fitting frame); the official value is 0.2.
        align_to_mean_direction: fit in a frame whose z axis is the camera's mean ray direction
            instead of the world frame. The official code fits in the world frame, where a
            camera looking along a world axis orthogonal to z puts its rays near infinity on the
            plane z = 1; the aligned frame keeps the target points finite for any orientation
            (the threshold is then in tangent units of the mean ray).
        refine_in_float64: re-estimate the homography on the RANSAC inliers by a normalised DLT
            in float64. ``cv2.findHomography`` converts its points to float32, which limits an
            exact-data fit to about 1e-6; the official code keeps OpenCV's result (False).
        min_abs_direction_z: rays whose unit direction has ``|z|`` at most this in the fitting
            frame (points at infinity of the target plane) are left out.
    """

    ransac_threshold: float = HOMOGRAPHY_RANSAC_THRESHOLD
    align_to_mean_direction: bool = True
    refine_in_float64: bool = True
    min_abs_direction_z: float = MIN_ABS_DIRECTION_Z

    def __post_init__(self) -> None:
        if not self.ransac_threshold > 0:
            raise GeometryInputError(
                f'ransac_threshold must be positive, got {self.ransac_threshold}'
            )
        if not self.min_abs_direction_z >= 0:
            raise GeometryInputError(
                f'min_abs_direction_z must be non-negative, got {self.min_abs_direction_z}'
            )

    @classmethod
    def official(cls) -> 'HomographyFitConfig':
        """The official RayDiffusion fit: world frame, OpenCV's result as is, threshold 0.2."""
        return cls(align_to_mean_direction=False, refine_in_float64=False)


@dataclass(frozen=True)
class HomographyFit:
    """Result of :func:`fit_ray_homography`.

    Attributes:
        homography: (..., 3, 3) ``H`` with ``[d_x/d_z, d_y/d_z, 1] ~ H [x, y, 1]`` (world frame,
            defined up to scale): source points -> predicted directions on the plane z = 1.
        num_points: (...,) int64 correspondences passed to RANSAC (after the |z| filter).
        num_inliers: (...,) int64 RANSAC inliers.
    """

    homography: torch.Tensor
    num_points: torch.Tensor
    num_inliers: torch.Tensor


def _mean_direction_frame(directions: np.ndarray) -> np.ndarray:
    """Rotation ``aligned_R_world`` whose third row is the mean unit direction, shape (3, 3)."""
    mean = directions.astype(np.float64).mean(axis=0)
    norm = np.linalg.norm(mean)
    if not norm > MIN_MEAN_DIRECTION_NORM:
        raise DegenerateGeometryError(
            'rays spread over the whole sphere: no mean viewing direction for the homography fit'
        )
    z_axis = mean / norm
    helper = np.zeros(3)
    helper[np.argmin(np.abs(z_axis))] = 1
    x_axis = np.cross(helper, z_axis)
    x_axis /= np.linalg.norm(x_axis)
    return np.stack([x_axis, np.cross(z_axis, x_axis), z_axis])


def _similarity_normaliser(points: np.ndarray) -> np.ndarray:
    """3x3 map moving 2-D points to zero mean and mean distance sqrt(2) (Hartley)."""
    centre = points.mean(axis=0)
    spread = np.linalg.norm(points - centre, axis=1).mean()
    scale = np.sqrt(2) / spread if spread > 0 else 1.0
    return np.array([[scale, 0, -scale * centre[0]], [0, scale, -scale * centre[1]], [0, 0, 1]])


def _homography_dlt(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Normalised direct linear transform ``target ~ H source`` in float64, (3, 3)."""
    source = source.astype(np.float64)
    target = target.astype(np.float64)
    source_T = _similarity_normaliser(source)
    target_T = _similarity_normaliser(target)
    x, y = (source @ source_T[:2, :2].T + source_T[:2, 2]).T
    u, v = (target @ target_T[:2, :2].T + target_T[:2, 2]).T
    zeros, ones = np.zeros_like(x), np.ones_like(x)
    rows_u = np.stack([-x, -y, -ones, zeros, zeros, zeros, u * x, u * y, u], axis=1)
    rows_v = np.stack([zeros, zeros, zeros, -x, -y, -ones, v * x, v * y, v], axis=1)
    _, _, right_h = np.linalg.svd(np.concatenate([rows_u, rows_v]), full_matrices=False)
    normalised = right_h[-1].reshape(3, 3)
    return np.linalg.solve(target_T, normalised @ source_T)


def fit_ray_homography(
    source_xy: ArrayLike,
    directions: ArrayLike,
    config: HomographyFitConfig = HomographyFitConfig(),
) -> HomographyFit:
    """RANSAC homography from grid points to predicted ray directions (explicit fitting step).

    Per camera: unit directions ``d`` are expressed in the fitting frame (world, or the
    mean-direction frame, see :class:`HomographyFitConfig`), rays with
    ``|d_z| <= min_abs_direction_z`` are dropped, and
    ``cv2.findHomography(source_xy, d_xy / d_z, cv2.RANSAC, config.ransac_threshold)`` is called
    (the official call, with the input's float dtype). Optionally the homography is refined on
    the inliers in float64. The result is mapped back to the world frame.

    Args:
        source_xy: (..., M, 2) source points, e.g. the crop's NDC grid (identity camera, unit
            focal) or pixel coordinates.
        directions: (..., M, 3) predicted ray directions (world frame, any length).
        config: fitting options; ``HomographyFitConfig.official()`` for parity.

    Returns:
        :class:`HomographyFit` with batch shape (...).

    Raises:
        GeometryInputError: shapes, non-finite values, zero directions.
        DegenerateGeometryError: fewer than 4 usable rays, or RANSAC finds no homography.
    """
    directions = as_float_tensor(directions, 'directions')
    require_trailing_shape(directions, 'directions', (3,))
    require_finite(directions, 'directions')
    source_xy = as_float_tensor(source_xy, 'source_xy', like=directions)
    require_trailing_shape(source_xy, 'source_xy', (2,))
    require_finite(source_xy, 'source_xy')
    if directions.dim() < 2 or source_xy.dim() < 2:
        raise GeometryInputError('source_xy and directions need shapes (..., M, 2), (..., M, 3)')
    if source_xy.shape[-2] != directions.shape[-2]:
        raise GeometryInputError(
            f'source_xy has {source_xy.shape[-2]} points but directions has '
            f'{directions.shape[-2]}'
        )
    if not bool((directions.norm(dim=-1) > MIN_DIRECTION_NORM).all()):
        raise GeometryInputError('directions contains a zero vector')
    try:
        batch_shape = torch.broadcast_shapes(source_xy.shape[:-2], directions.shape[:-2])
    except RuntimeError as error:
        raise GeometryInputError(
            f'source_xy {tuple(source_xy.shape)} and directions {tuple(directions.shape)} do '
            'not broadcast'
        ) from error
    num_rays = directions.shape[-2]
    sources = source_xy.expand(batch_shape + (num_rays, 2)).reshape(-1, num_rays, 2)
    units = _unit(directions).expand(batch_shape + (num_rays, 3)).reshape(-1, num_rays, 3)
    homographies, num_points, num_inliers = [], [], []
    for camera_sources, camera_units in zip(
        sources.detach().cpu().numpy(), units.detach().cpu().numpy(), strict=True
    ):
        if config.align_to_mean_direction:
            aligned_R_world = _mean_direction_frame(camera_units)
            aligned = (camera_units @ aligned_R_world.T).astype(camera_units.dtype)
        else:
            aligned_R_world = np.eye(3)
            aligned = camera_units
        usable = np.abs(aligned[:, 2]) > config.min_abs_direction_z
        if usable.sum() < MIN_HOMOGRAPHY_POINTS:
            raise DegenerateGeometryError(
                f'only {int(usable.sum())} rays usable for the homography (need '
                f'{MIN_HOMOGRAPHY_POINTS})'
            )
        target = aligned[usable, :2] / aligned[usable, 2:]
        homography, inlier_mask = cv2.findHomography(
            camera_sources[usable], target, cv2.RANSAC, config.ransac_threshold
        )
        if homography is None:
            raise DegenerateGeometryError('RANSAC found no homography for the rays')
        inliers = inlier_mask.ravel().astype(bool)
        if config.refine_in_float64:
            homography = _homography_dlt(camera_sources[usable][inliers], target[inliers])
        homographies.append(aligned_R_world.T @ homography)
        num_points.append(int(usable.sum()))
        num_inliers.append(int(inliers.sum()))
    return HomographyFit(
        homography=torch.as_tensor(np.stack(homographies), dtype=directions.dtype)
        .to(directions.device)
        .reshape(batch_shape + (3, 3)),
        num_points=torch.tensor(num_points, dtype=torch.int64).reshape(batch_shape),
        num_inliers=torch.tensor(num_inliers, dtype=torch.int64).reshape(batch_shape),
    )


def _orient_homography(homography: ArrayLike) -> torch.Tensor:
    """Validate a homography and negate it where det < 0 (H is defined up to sign)."""
    homography = as_float_tensor(homography, 'homography')
    require_trailing_shape(homography, 'homography', (3, 3))
    require_finite(homography, 'homography')
    determinant = det3(homography)
    size = homography.flatten(-2).norm(dim=-1)
    if not bool((determinant.abs() > SINGULAR_HOMOGRAPHY_TOLERANCE * size**3).all()):
        raise DegenerateGeometryError('homography is singular: no rotation/intrinsics factors')
    return homography * torch.where(determinant < 0, -1.0, 1.0)[..., None, None]


def decompose_homography_qr(homography: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotation and intrinsics from a pixel-to-direction homography (QR; exact geometry).

    A camera's world directions are ``d ~ R^T K^-1 [u, v, 1]``, so ``H ~ R^T K^-1``: an
    orthogonal matrix times an upper-triangular one. The QR factorisation with a positive
    diagonal is unique, so ``R = Q^T`` and ``K = U^-1`` (normalised to ``K[2, 2] = 1``); this is
    exact for any principal point. The skew of ``U^-1`` (zero for a noise-free pinhole camera) is
    dropped.

    Args:
        homography: (..., 3, 3) ``H`` with ``d ~ H [u, v, 1]`` for pixel coordinates ``(u, v)``
            (any scale or sign).

    Returns:
        ``(R, K)``: (..., 3, 3) world-to-camera rotation and (..., 3, 3) pixel intrinsics.
    """
    homography = _orient_homography(homography)
    orthogonal, upper = torch.linalg.qr(homography)
    diagonal = torch.diagonal(upper, dim1=-2, dim2=-1)
    signs = torch.where(diagonal < 0, -1.0, 1.0).to(upper.dtype)
    orthogonal = orthogonal * signs[..., None, :]
    upper = upper * signs[..., :, None]
    a, b, c = upper[..., 0, 0], upper[..., 0, 1], upper[..., 0, 2]
    d, e, g = upper[..., 1, 1], upper[..., 1, 2], upper[..., 2, 2]
    K = torch.zeros_like(upper)
    K[..., 0, 0] = g / a
    K[..., 1, 1] = g / d
    K[..., 0, 2] = (b * e - c * d) / (a * d)
    K[..., 1, 2] = -e / d
    K[..., 2, 2] = 1
    return orthogonal.transpose(-1, -2), K


class QLCompatDecomposition(NamedTuple):
    """The official QL factorisation's outputs, exactly as RayDiffusion returns them.

    Attributes:
        rotation: (..., 3, 3) ``Q``, a PyTorch3D row-vector rotation.
        inverse_focal_length: (..., 2) ``(L00, L11)`` = 1/f in NDC units (the official
            "focal_length" quirk).
        principal_point: (..., 2) ``(L20, L21)``: not a principal point (exact only when the
            true principal point is 0, where these are 0).
    """

    rotation: torch.Tensor
    inverse_focal_length: torch.Tensor
    principal_point: torch.Tensor


def decompose_homography_ql_compat(homography_ndc: ArrayLike) -> QLCompatDecomposition:
    """The official QL factorisation of a homography (parity with the RayDiffusion demo).

    ``H = Q L`` with ``Q`` orthogonal and ``L`` lower-triangular with a positive diagonal
    (negating ``H`` first if ``det H < 0``), ``L`` normalised to ``L[2, 2] = 1``. It is computed
    as a QR factorisation of ``H`` with its columns reversed. Since ``H ~ R_p3d K_ndc^-1`` with
    ``K_ndc^-1`` UPPER-triangular, this is exact only for a zero principal point; prefer
    :func:`decompose_homography_qr`.

    Args:
        homography_ndc: (..., 3, 3) the official homography: crop-grid NDC points of an identity
            camera with unit focal -> predicted world directions (x/z, y/z).

    Returns:
        :class:`QLCompatDecomposition`.
    """
    homography = _orient_homography(homography_ndc)
    orthogonal_reversed, upper = torch.linalg.qr(homography.flip(-1))
    orthogonal = orthogonal_reversed.flip(-1)
    lower = upper.flip(-1).flip(-2)
    diagonal = torch.diagonal(lower, dim1=-2, dim2=-1)
    signs = torch.where(diagonal < 0, -1.0, 1.0).to(lower.dtype)
    orthogonal = orthogonal * signs[..., None, :]
    lower = lower * signs[..., :, None]
    lower = lower / lower[..., 2:3, 2:3]
    return QLCompatDecomposition(
        rotation=orthogonal,
        inverse_focal_length=torch.stack([lower[..., 0, 0], lower[..., 1, 1]], dim=-1),
        principal_point=torch.stack([lower[..., 2, 0], lower[..., 2, 1]], dim=-1),
    )


@dataclass(frozen=True)
class HomographyCameraEstimate:
    """Result of :func:`rays_to_cameras_homography`.

    Attributes:
        cameras: :class:`Cameras` (..., N) with estimated R, t and K.
        fit: the :class:`HomographyFit`; its homography maps the crop-grid NDC points (identity
            camera with unit NDC focal, as the official code) to predicted world directions.
    """

    cameras: Cameras
    fit: HomographyFit


def rays_to_cameras_homography(
    rays: ArrayLike,
    image_size: ImageSize,
    crop_params: Optional[ArrayLike] = None,
    fit_config: HomographyFitConfig = HomographyFitConfig(),
    ql_compat: bool = False,
) -> HomographyCameraEstimate:
    """Cameras AND intrinsics from rays (unknown intrinsics; the official demo path).

    1. Centres by :func:`intersect_rays`.
    2. :func:`fit_ray_homography` from the crop's NDC grid ``(x', y')`` (the official
       identity camera with unit NDC focal) to the predicted directions.
    3. Default: ``H_px = H @ ndc_T_pixel`` maps pixels to directions;
       :func:`decompose_homography_qr` gives R and pixel K exactly for any principal point.
       ``ql_compat=True``: :func:`decompose_homography_ql_compat` as the official code (exact
       only for a centred principal point); the cameras then have ``R_p3d = Q`` and NDC
       intrinsics ``f = 1 / L_kk``, ``p = -L_2k / L_kk`` (reading ``L^T`` as ``K_ndc^-1``).
    4. ``t = -R C``.

    For numerical parity with the official demo use
    ``fit_config=HomographyFitConfig.official(), ql_compat=True``.

    Args:
        rays: (..., N, P*P, 6) predicted rays.
        image_size: ``(W, H)`` or (..., N, 2) of the original images.
        crop_params: (..., N, 4) crop parameters of the rays' grid, or None (full square).
        fit_config: homography fitting options (:class:`HomographyFitConfig`).
        ql_compat: reproduce the official QL factorisation.

    Returns:
        :class:`HomographyCameraEstimate` with cameras of batch shape (..., N).
    """
    rays = as_float_tensor(rays, 'rays')
    _require_rays(rays)
    num_patches = _num_patches(rays)
    size = conventions.image_size_tensor(image_size, rays)
    if crop_params is not None:
        crop_params = as_float_tensor(crop_params, 'crop_params', like=rays)
        source = crop.ndc_grid(crop_params, num_patches, flatten=True)
    else:
        source = crop.ndc_grid(None, num_patches, True, device=rays.device, dtype=rays.dtype)
    centres = intersect_rays(rays)
    fit = fit_ray_homography(source, rays[..., :3], fit_config)
    if ql_compat:
        factors = decompose_homography_ql_compat(fit.homography)
        focal_ndc = 1 / factors.inverse_focal_length
        principal_point_ndc = -factors.principal_point * focal_ndc
        translation_p3d = -(factors.rotation.transpose(-1, -2) @ centres[..., None])[..., 0]
        cameras = Cameras.from_pytorch3d_ndc(
            factors.rotation, translation_p3d, focal_ndc, principal_point_ndc, size
        )
        return HomographyCameraEstimate(cameras=cameras, fit=fit)
    rotation, K = decompose_homography_qr(fit.homography @ conventions.ndc_T_pixel(size, rays))
    translation = -(rotation @ centres[..., None])[..., 0]
    return HomographyCameraEstimate(cameras=Cameras(rotation, translation, K, size), fit=fit)
