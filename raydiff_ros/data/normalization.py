"""The official RayDiffusion training normalisation of a camera set (reference notes §1.5).

Given N cameras, the new world frame has

* its origin at ``p*``, the least-squares intersection of the cameras' optical axes (the line
  from each camera centre along its viewing direction, the camera z axis);
* its axes such that camera 0 has the identity rotation in the chosen convention;
* its unit such that camera 0 lies at distance 1 from ``p*``.

Frames of camera 0 (``first_camera_frame``):

* ``'pytorch3d'`` (default, the official frame): camera 0's PyTorch3D rotation is the identity,
  i.e. the world axes are camera 0's PyTorch3D axes (+X left, +Y up, +Z forward). In our OpenCV
  convention camera 0 then has ``R = diag(-1, -1, 1)``. Rays of this frame are what the
  released model was trained on, so fine-tuning an imported checkpoint keeps its targets.
* ``'opencv'``: camera 0 has ``R = I`` in OpenCV axes (x right, y down, z forward).

With the similarity ``normalized_T_world``: ``x_n = A (x_w - p*) / s`` (``A`` a rotation,
``s = |p* - C_0|``), a camera ``(R, t)`` becomes ``(R A^T, (R p* + t) / s)``.

Degenerate sets (all optical axes parallel, so ``p*`` is undefined): the official code has no
guard; here ``p*`` falls back to the mean over cameras of ``C_i + z_i * b``, with ``b`` the
mean distance between camera centres (1 when they coincide), and ``used_fallback`` is set.
"""

from dataclasses import dataclass

import numpy as np
import torch

from raydiff_ros.geometry.checks import DegenerateGeometryError
from raydiff_ros.geometry.conventions import PYTORCH3D_FROM_OPENCV_AXES
from raydiff_ros.geometry.rays import intersect_rays, plucker_rays
from raydiff_ros.geometry.transforms import camera_centers

FIRST_CAMERA_FRAMES = ('pytorch3d', 'opencv')
MIN_FIRST_CAMERA_DISTANCE = 1e-9
"""Below this distance of camera 0 from ``p*`` the scale is undefined."""


class NormalizationError(ValueError):
    """Cameras cannot be normalised (bad shapes, camera 0 at the axes' intersection)."""


@dataclass(frozen=True)
class SceneNormalization:
    """The similarity ``normalized_T_world``: ``x_n = rotation @ (x_w - origin) / scale``.

    Attributes:
        origin: (3,) ``p*`` in world coordinates.
        rotation: (3, 3) ``A``.
        scale: ``s`` > 0, world units per normalised unit.
        used_fallback: the optical axes had no unique intersection (see module docstring).
    """

    origin: np.ndarray
    rotation: np.ndarray
    scale: float
    used_fallback: bool = False

    def apply_to_points(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) -> normalised points (..., 3)."""
        return (np.asarray(points, dtype=np.float64) - self.origin) @ self.rotation.T / self.scale

    def apply_to_cameras(self, R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World-to-camera ``R`` (N, 3, 3), ``t`` (N, 3) -> the same cameras in the new frame."""
        R_new = R @ self.rotation.T
        t_new = (np.einsum('nij,j->ni', R, self.origin) + t) / self.scale
        return R_new, t_new


def first_camera_rotation(first_camera_frame: str) -> np.ndarray:
    """OpenCV rotation (3, 3) camera 0 gets in the normalised frame."""
    if first_camera_frame == 'pytorch3d':
        return np.diag(PYTORCH3D_FROM_OPENCV_AXES)
    if first_camera_frame == 'opencv':
        return np.eye(3)
    raise NormalizationError(f'first_camera_frame must be one of {FIRST_CAMERA_FRAMES}, got '
                             f'{first_camera_frame!r}')


def optical_axes_intersection(R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, bool]:
    """Least-squares intersection (3,) of the optical axes, and whether the fallback was used.

    Args:
        R: (N, 3, 3) world-to-camera rotations (OpenCV axes; the optical axis is row 2).
        t: (N, 3) world-to-camera translations.
    """
    centers = camera_centers(R, t)
    axes = R[:, 2, :]
    rays = plucker_rays(torch.from_numpy(centers), torch.from_numpy(axes))
    try:
        return intersect_rays(rays).numpy(), False
    except DegenerateGeometryError:
        spread = np.linalg.norm(centers[:, None] - centers[None], axis=-1)
        pairs = len(centers) * (len(centers) - 1)
        baseline = spread.sum() / pairs if pairs and spread.sum() > 0 else 1.0
        return (centers + axes * baseline).mean(axis=0), True


def normalize_cameras(
    R: np.ndarray, t: np.ndarray, first_camera_frame: str = 'pytorch3d'
) -> tuple[np.ndarray, np.ndarray, SceneNormalization]:
    """Express cameras in the official normalised frame (see the module docstring).

    Args:
        R: (N, 3, 3) world-to-camera rotations (OpenCV axes), N >= 2.
        t: (N, 3) world-to-camera translations.
        first_camera_frame: ``'pytorch3d'`` (official) or ``'opencv'``.

    Returns:
        ``(R_n, t_n, normalization)``: (N, 3, 3), (N, 3) cameras in the normalised frame and
        the similarity ``normalized_T_world``.
    """
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if R.ndim != 3 or R.shape[1:] != (3, 3) or t.shape != (R.shape[0], 3) or R.shape[0] < 2:
        raise NormalizationError(f'need R (N, 3, 3) and t (N, 3) with N >= 2, got {R.shape} '
                                 f'and {t.shape}')
    origin, used_fallback = optical_axes_intersection(R, t)
    distance = float(np.linalg.norm(origin - camera_centers(R[:1], t[:1])[0]))
    if distance < MIN_FIRST_CAMERA_DISTANCE:
        raise NormalizationError('camera 0 lies at the intersection of the optical axes')
    rotation = R[0].T @ first_camera_rotation(first_camera_frame)
    normalization = SceneNormalization(origin=origin, rotation=rotation.T, scale=distance,
                                       used_fallback=used_fallback)
    R_new, t_new = normalization.apply_to_cameras(R, t)
    return R_new, t_new, normalization
