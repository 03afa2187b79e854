"""The one place where camera conventions are converted.

Package convention (OpenCV / ROS optical frame):
    camera axes x right, y down, z forward; world-to-camera rotation ``R`` (..., 3, 3) and
    translation ``t`` (..., 3) so that ``x_cam = R @ x_world + t`` (``R``, ``t`` form
    ``camera_T_world``); intrinsics ``K`` (..., 3, 3) in pixels, zero skew; image size
    ``(W, H)`` in pixels. Pixel coordinates are continuous with the image spanning
    ``[0, W] x [0, H]`` (the same frame PyTorch3D's OpenCV conversion uses).

PyTorch3D NDC convention (``PerspectiveCameras(in_ndc=True)``, used by the official RayDiffusion
code and its fixture):
    row vectors, ``X_cam = X_world @ R_p3d + T_p3d``; camera axes +X left, +Y up, +Z forward;
    NDC: the shorter image side spans [-1, 1] (+X left, +Y up); intrinsics in NDC units,
    ``x_ndc = fx * X / Z + px`` and ``y_ndc = fy * Y / Z + py``.

Relations (``F = diag(-1, -1, 1)``, ``half = min(W, H) / 2``):
    ``R_p3d = R_cv^T F`` (columns 0 and 1 negated), ``T_p3d = F t_cv``;
    ``f_ndc = f_px / half``, ``p_ndc = -(c_px - (W/2, H/2)) / half``;
    ``x_ndc = -(u - W/2) / half``, ``y_ndc = -(v - H/2) / half`` for a pixel ``(u, v)``.
The world frame is shared by both conventions; only the camera and image axes differ.
"""

from typing import NamedTuple, Sequence, Union

import torch

from raydiff_ros.geometry.checks import (
    ArrayLike,
    GeometryInputError,
    as_float_tensor,
    require_finite,
    require_positive,
    require_trailing_shape,
)

ImageSize = Union[torch.Tensor, Sequence[float]]
"""Image size ``(W, H)`` in pixels: a pair, or a tensor (..., 2) for per-camera sizes."""

PYTORCH3D_FROM_OPENCV_AXES = (-1.0, -1.0, 1.0)
"""Diagonal of ``F``, the axis flip between the OpenCV and PyTorch3D camera frames (its own
inverse): ``x_p3d = F x_cv`` for camera-frame points and for NDC vs. centred pixel offsets."""

PINHOLE_ENTRY_TOLERANCE = 1e-6
"""Largest accepted deviation of K's fixed entries (K[1,0], K[2,0], K[2,1] = 0, K[2,2] = 1) and
of the skew K[0,1] relative to fx."""


class NdcCameraParameters(NamedTuple):
    """PyTorch3D NDC cameras (row-vector convention).

    Attributes:
        R: (..., 3, 3) rotation, ``X_cam = X_world @ R + T``.
        T: (..., 3) translation.
        focal_length: (..., 2) ``(fx, fy)`` in NDC units.
        principal_point: (..., 2) ``(px, py)`` in NDC units.
    """

    R: torch.Tensor
    T: torch.Tensor
    focal_length: torch.Tensor
    principal_point: torch.Tensor


class OpenCVCameraParameters(NamedTuple):
    """OpenCV cameras (package convention).

    Attributes:
        R: (..., 3, 3) world-to-camera rotation (``camera_T_world`` rotation).
        t: (..., 3) world-to-camera translation.
        K: (..., 3, 3) pixel intrinsics, zero skew.
    """

    R: torch.Tensor
    t: torch.Tensor
    K: torch.Tensor


def image_size_tensor(image_size: ImageSize, like: torch.Tensor) -> torch.Tensor:
    """Return the image size as a tensor (..., 2) = (W, H) with ``like``'s device and dtype.

    Raises:
        GeometryInputError: wrong shape, non-finite or non-positive size.
    """
    size = as_float_tensor(image_size, 'image_size', like=like)
    require_trailing_shape(size, 'image_size', (2,))
    require_positive(size, 'image_size')
    return size


def ndc_half_extent(image_size: ImageSize, like: torch.Tensor) -> torch.Tensor:
    """Pixels per NDC unit, ``min(W, H) / 2``, shape (..., 1)."""
    size = image_size_tensor(image_size, like)
    return size.min(dim=-1, keepdim=True).values / 2


def _axis_flip(like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(PYTORCH3D_FROM_OPENCV_AXES, device=like.device, dtype=like.dtype)


def pixel_to_ndc(points: ArrayLike, image_size: ImageSize) -> torch.Tensor:
    """Convert pixel coordinates to NDC coordinates.

    Args:
        points: (..., 2) pixel coordinates ``(u, v)`` (u right, v down).
        image_size: ``(W, H)`` or (..., 2), broadcastable against ``points``.

    Returns:
        (..., 2) NDC coordinates ``(x, y)`` (+X left, +Y up; the shorter side spans [-1, 1]).
    """
    points = as_float_tensor(points, 'points')
    require_trailing_shape(points, 'points', (2,))
    size = image_size_tensor(image_size, points)
    half = size.min(dim=-1, keepdim=True).values / 2
    return -(points - size / 2) / half


def ndc_to_pixel(points: ArrayLike, image_size: ImageSize) -> torch.Tensor:
    """Convert NDC coordinates to pixel coordinates (inverse of :func:`pixel_to_ndc`).

    Args:
        points: (..., 2) NDC coordinates ``(x, y)``.
        image_size: ``(W, H)`` or (..., 2), broadcastable against ``points``.

    Returns:
        (..., 2) pixel coordinates ``(u, v)``.
    """
    points = as_float_tensor(points, 'points')
    require_trailing_shape(points, 'points', (2,))
    size = image_size_tensor(image_size, points)
    half = size.min(dim=-1, keepdim=True).values / 2
    return size / 2 - points * half


def pixel_T_ndc(image_size: ImageSize, like: torch.Tensor) -> torch.Tensor:
    """Homogeneous 3x3 map ``pixel_T_ndc``: ``[u, v, 1] = pixel_T_ndc @ [x, y, 1]``.

    Args:
        image_size: ``(W, H)`` or (..., 2).
        like: tensor whose device and dtype the result takes.

    Returns:
        (..., 3, 3) matrix ``[[-h, 0, W/2], [0, -h, H/2], [0, 0, 1]]`` with ``h = min(W, H)/2``.
    """
    size = image_size_tensor(image_size, like)
    half = size.min(dim=-1).values / 2
    matrix = torch.zeros(size.shape[:-1] + (3, 3), device=like.device, dtype=like.dtype)
    matrix[..., 0, 0] = -half
    matrix[..., 1, 1] = -half
    matrix[..., 0, 2] = size[..., 0] / 2
    matrix[..., 1, 2] = size[..., 1] / 2
    matrix[..., 2, 2] = 1
    return matrix


def ndc_T_pixel(image_size: ImageSize, like: torch.Tensor) -> torch.Tensor:
    """Homogeneous 3x3 map ``ndc_T_pixel`` (inverse of :func:`pixel_T_ndc`), shape (..., 3, 3)."""
    size = image_size_tensor(image_size, like)
    half = size.min(dim=-1).values / 2
    matrix = torch.zeros(size.shape[:-1] + (3, 3), device=like.device, dtype=like.dtype)
    matrix[..., 0, 0] = -1 / half
    matrix[..., 1, 1] = -1 / half
    matrix[..., 0, 2] = size[..., 0] / 2 / half
    matrix[..., 1, 2] = size[..., 1] / 2 / half
    matrix[..., 2, 2] = 1
    return matrix


def require_pinhole_intrinsics(K: torch.Tensor, name: str = 'K') -> None:
    """Raise unless ``K`` (..., 3, 3) is a finite zero-skew pinhole matrix with positive focals.

    Accepted form: ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` with ``fx, fy > 0`` (fixed entries
    within :data:`PINHOLE_ENTRY_TOLERANCE`).
    """
    require_trailing_shape(K, name, (3, 3))
    require_finite(K, name)
    focal = torch.stack([K[..., 0, 0], K[..., 1, 1]], dim=-1)
    if not bool((focal > 0).all()):
        raise GeometryInputError(
            f'{name} must have positive focal lengths, got minimum {float(focal.min()):.6g}'
        )
    fixed = torch.stack([K[..., 1, 0], K[..., 2, 0], K[..., 2, 1], K[..., 2, 2] - 1], dim=-1)
    if not bool((fixed.abs() <= PINHOLE_ENTRY_TOLERANCE).all()):
        raise GeometryInputError(f'{name} must have last row (0, 0, 1) and K[1, 0] = 0')
    if not bool((K[..., 0, 1].abs() <= PINHOLE_ENTRY_TOLERANCE * K[..., 0, 0]).all()):
        raise GeometryInputError(f'{name} must have zero skew (K[0, 1] = 0)')


def intrinsics_to_ndc(
    K: ArrayLike, image_size: ImageSize
) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert pixel intrinsics to PyTorch3D NDC focal length and principal point.

    Args:
        K: (..., 3, 3) pixel intrinsics (zero skew).
        image_size: ``(W, H)`` or (..., 2), broadcastable against K's batch shape.

    Returns:
        ``(focal_length, principal_point)``, each (..., 2), in NDC units.
    """
    K = as_float_tensor(K, 'K')
    require_pinhole_intrinsics(K)
    size = image_size_tensor(image_size, K)
    half = size.min(dim=-1, keepdim=True).values / 2
    focal_px = torch.stack([K[..., 0, 0], K[..., 1, 1]], dim=-1)
    centre_px = torch.stack([K[..., 0, 2], K[..., 1, 2]], dim=-1)
    return focal_px / half, -(centre_px - size / 2) / half


def intrinsics_from_ndc(
    focal_length: ArrayLike, principal_point: ArrayLike, image_size: ImageSize
) -> torch.Tensor:
    """Convert PyTorch3D NDC focal length and principal point to pixel intrinsics.

    Args:
        focal_length: (..., 2) ``(fx, fy)`` or (..., 1) (square pixels), NDC units, positive.
        principal_point: (..., 2) ``(px, py)``, NDC units.
        image_size: ``(W, H)`` or (..., 2).

    Returns:
        (..., 3, 3) pixel intrinsics ``K`` (zero skew).
    """
    focal = as_float_tensor(focal_length, 'focal_length')
    if focal.dim() >= 1 and focal.shape[-1] == 1:
        focal = focal.expand(focal.shape[:-1] + (2,))
    require_trailing_shape(focal, 'focal_length', (2,))
    require_positive(focal, 'focal_length')
    centre = as_float_tensor(principal_point, 'principal_point', like=focal)
    require_trailing_shape(centre, 'principal_point', (2,))
    require_finite(centre, 'principal_point')
    size = image_size_tensor(image_size, focal)
    half = size.min(dim=-1, keepdim=True).values / 2
    focal_px = focal * half
    centre_px = size / 2 - centre * half
    focal_px, centre_px = torch.broadcast_tensors(focal_px, centre_px)
    K = torch.zeros(focal_px.shape[:-1] + (3, 3), device=focal.device, dtype=focal.dtype)
    K[..., 0, 0] = focal_px[..., 0]
    K[..., 1, 1] = focal_px[..., 1]
    K[..., 0, 2] = centre_px[..., 0]
    K[..., 1, 2] = centre_px[..., 1]
    K[..., 2, 2] = 1
    return K


def opencv_to_ndc(
    R: ArrayLike, t: ArrayLike, K: ArrayLike, image_size: ImageSize
) -> NdcCameraParameters:
    """Convert OpenCV cameras (package convention) to PyTorch3D NDC cameras.

    Args:
        R: (..., 3, 3) world-to-camera rotation (OpenCV axes).
        t: (..., 3) world-to-camera translation.
        K: (..., 3, 3) pixel intrinsics (zero skew).
        image_size: ``(W, H)`` or (..., 2).

    Returns:
        :class:`NdcCameraParameters` with ``R_p3d = R^T F``, ``T_p3d = F t``, NDC intrinsics.
    """
    R = as_float_tensor(R, 'R')
    require_trailing_shape(R, 'R', (3, 3))
    require_finite(R, 'R')
    t = as_float_tensor(t, 't', like=R)
    require_trailing_shape(t, 't', (3,))
    require_finite(t, 't')
    K = as_float_tensor(K, 'K', like=R)
    flip = _axis_flip(R)
    focal_length, principal_point = intrinsics_to_ndc(K, image_size)
    return NdcCameraParameters(
        R=R.transpose(-1, -2) * flip,
        T=t * flip,
        focal_length=focal_length,
        principal_point=principal_point,
    )


def ndc_to_opencv(
    R: ArrayLike,
    T: ArrayLike,
    focal_length: ArrayLike,
    principal_point: ArrayLike,
    image_size: ImageSize,
) -> OpenCVCameraParameters:
    """Convert PyTorch3D NDC cameras to OpenCV cameras (package convention).

    Args:
        R: (..., 3, 3) PyTorch3D row-vector rotation, ``X_cam = X_world @ R + T``.
        T: (..., 3) PyTorch3D translation.
        focal_length: (..., 2) or (..., 1) NDC focal length.
        principal_point: (..., 2) NDC principal point.
        image_size: ``(W, H)`` or (..., 2) of the image the NDC frame refers to.

    Returns:
        :class:`OpenCVCameraParameters` with ``R_cv = F R_p3d^T``, ``t_cv = F T_p3d``, pixel K.
    """
    R = as_float_tensor(R, 'R')
    require_trailing_shape(R, 'R', (3, 3))
    require_finite(R, 'R')
    T = as_float_tensor(T, 'T', like=R)
    require_trailing_shape(T, 'T', (3,))
    require_finite(T, 'T')
    flip = _axis_flip(R)
    K = intrinsics_from_ndc(
        as_float_tensor(focal_length, 'focal_length', like=R), principal_point, image_size
    )
    return OpenCVCameraParameters(R=flip[:, None] * R.transpose(-1, -2), t=T * flip, K=K)
