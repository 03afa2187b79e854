"""SO(3) and SE(3) maths: the one home of rotations and rigid transforms in the package.

Every 4x4 matrix is ``target_T_source``: it maps points from ``source`` coordinates into
``target`` coordinates and is the pose of ``source`` in ``target``. Camera frames are
OpenCV/ROS optical frames (x right, y down, z forward); a world-to-camera ``(R, t)``
(``x_cam = R x_world + t``) is ``camera_T_world`` and the camera centre is ``C = -R^T t``.

Rotation vectors (axis * angle, radians) are the log map of SO(3); a small rotation
``exp(delta) @ R`` perturbs ``R`` about the axes of the frame ``R`` maps into (left
perturbation), which is what ``geometry_msgs/PoseWithCovariance`` means by rotation about
fixed axes.

Everything is numpy float64 and batched over leading axes. :func:`skew` and :func:`rotation_exp`
also take torch tensors (the bundle adjustment differentiates through them) and then return
tensors of the same dtype and device.
"""

from typing import TypeVar, Union

import numpy as np
from scipy.spatial.transform import Rotation
import torch

ROTATION_TOLERANCE = 1e-5
"""Largest accepted deviation of ``R R^T`` from the identity in checked transforms."""
SMALL_ANGLE = 1e-12
"""Below this angle (radians) exp and log use their first-order forms."""
NEAR_PI = np.pi - 1e-3
"""Rotation angles above this take scipy's general logarithm (the closed form loses the axis)."""

ArrayOrTensor = TypeVar('ArrayOrTensor', np.ndarray, torch.Tensor)


class PoseError(ValueError):
    """Poses have the wrong shape, are non-finite, or are not rigid."""


# ---------------------------------------------------------------------------------------------
# Rigid transforms


def make_transforms(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Stack rotations (..., 3, 3) and translations (..., 3) into transforms (..., 4, 4)."""
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    if R.shape[-2:] != (3, 3) or t.shape != R.shape[:-1]:
        raise PoseError(f'expected R (..., 3, 3) and t (..., 3), got {R.shape} and {t.shape}')
    transforms = np.zeros(R.shape[:-2] + (4, 4))
    transforms[..., :3, :3] = R
    transforms[..., :3, 3] = t
    transforms[..., 3, 3] = 1.0
    return transforms


def invert_transforms(transforms: np.ndarray) -> np.ndarray:
    """Rigid inverse of (..., 4, 4) ``a_T_b``: ``b_T_a = [R^T, -R^T t]``."""
    transforms = np.asarray(transforms, dtype=np.float64)
    R_inv = np.swapaxes(transforms[..., :3, :3], -1, -2)
    t_inv = -np.einsum('...ij,...j->...i', R_inv, transforms[..., :3, 3])
    return make_transforms(R_inv, t_inv)


def relative_transforms(a_T_from: np.ndarray, a_T_to: np.ndarray) -> np.ndarray:
    """``from_T_to = inv(a_T_from) @ a_T_to`` for (..., 4, 4) poses in a common frame ``a``."""
    return invert_transforms(a_T_from) @ np.asarray(a_T_to, dtype=np.float64)


def check_transforms(transforms: np.ndarray, name: str = 'transforms') -> np.ndarray:
    """Validate (..., 4, 4) rigid transforms; return them as float64.

    Raises:
        PoseError: wrong shape, non-finite values, a last row other than (0, 0, 0, 1), or a
            rotation block that is not a proper rotation (to ``ROTATION_TOLERANCE``).
    """
    transforms = np.asarray(transforms, dtype=np.float64)
    if transforms.ndim < 2 or transforms.shape[-2:] != (4, 4):
        raise PoseError(f'{name} must have shape (..., 4, 4), got {transforms.shape}')
    if not np.all(np.isfinite(transforms)):
        raise PoseError(f'{name} contains non-finite values')
    if not np.allclose(transforms[..., 3, :], (0.0, 0.0, 0.0, 1.0)):
        raise PoseError(f'{name} must have last row (0, 0, 0, 1)')
    rotations = transforms[..., :3, :3]
    gram = rotations @ np.swapaxes(rotations, -1, -2)
    if np.abs(gram - np.eye(3)).max(initial=0.0) > ROTATION_TOLERANCE or np.any(
        np.linalg.det(rotations) <= 0.0
    ):
        raise PoseError(f'{name} has a rotation block that is not a proper rotation')
    return transforms


def camera_centers(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Centres ``C = -R^T t`` (..., 3) of world-to-camera rotations (..., 3, 3), t (..., 3)."""
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    return -np.einsum('...ji,...j->...i', R, t)


def translations_from_centers(R: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """World-to-camera translations ``t = -R C`` (..., 3) of cameras R (..., 3, 3) at C."""
    R = np.asarray(R, dtype=np.float64)
    return -np.einsum('...ij,...j->...i', R, np.asarray(centers, dtype=np.float64))


# ---------------------------------------------------------------------------------------------
# Rotations


def skew(v: ArrayOrTensor) -> ArrayOrTensor:
    """Cross-product matrices ``[v]_x`` (..., 3, 3) of vectors (..., 3), numpy or torch."""
    if isinstance(v, torch.Tensor):
        zero = torch.zeros_like(v[..., 0])
        x, y, z = v.unbind(-1)
        return torch.stack([torch.stack([zero, -z, y], -1), torch.stack([z, zero, -x], -1),
                            torch.stack([-y, x, zero], -1)], -2)
    v = np.asarray(v, dtype=np.float64)
    zero = np.zeros_like(v[..., 0])
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    return np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1),
                     np.stack([-y, x, zero], -1)], -2)


def rotation_exp(rotvecs: ArrayOrTensor) -> ArrayOrTensor:
    """Rotations (..., 3, 3) of rotation vectors (..., 3) in radians (Rodrigues' formula).

    ``exp([w]_x) = I + sin|w| / |w| [w]_x + (1 - cos|w|) / |w|^2 [w]_x^2``, with the limits
    1 and 1/2 of the two factors below ``SMALL_ANGLE``. numpy input gives float64 arrays;
    a torch tensor gives a tensor of its dtype and device (differentiable).
    """
    if isinstance(rotvecs, torch.Tensor):
        angle = torch.linalg.norm(rotvecs, dim=-1)[..., None, None]
        small = angle < SMALL_ANGLE
        safe = torch.where(small, torch.ones_like(angle), angle)
        a = torch.where(small, torch.ones_like(angle), torch.sin(safe) / safe)
        b = torch.where(small, torch.full_like(angle, 0.5), (1 - torch.cos(safe)) / safe ** 2)
        eye = torch.eye(3, dtype=rotvecs.dtype, device=rotvecs.device)
    else:
        rotvecs = np.asarray(rotvecs, dtype=np.float64)
        angle = np.linalg.norm(rotvecs, axis=-1)[..., None, None]
        small = angle < SMALL_ANGLE
        safe = np.where(small, 1.0, angle)
        a = np.where(small, 1.0, np.sin(safe) / safe)
        b = np.where(small, 0.5, (1.0 - np.cos(safe)) / safe ** 2)
        eye = np.eye(3)
    cross = skew(rotvecs)
    return eye + a * cross + b * (cross @ cross)


def rotation_log(R: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) (radians, angle in [0, pi]) of rotations (..., 3, 3).

    Closed form ``angle / (2 sin angle) * vee(R - R^T)``, exact also for small angles; within
    ``pi - NEAR_PI`` of a half turn, where that form loses the axis, scipy's general logarithm.
    """
    R = np.asarray(R, dtype=np.float64)
    flat = R.reshape(-1, 3, 3)
    cos_angle = np.clip((np.trace(flat, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos_angle)
    vee = np.stack((flat[:, 2, 1] - flat[:, 1, 2], flat[:, 0, 2] - flat[:, 2, 0],
                    flat[:, 1, 0] - flat[:, 0, 1]), axis=-1)
    factor = np.where(angle < SMALL_ANGLE, 0.5,
                      angle / (2.0 * np.maximum(np.sin(angle), SMALL_ANGLE)))
    rotvecs = factor[:, None] * vee
    near_pi = angle > NEAR_PI
    if np.any(near_pi):
        rotvecs[near_pi] = Rotation.from_matrix(flat[near_pi]).as_rotvec()
    return rotvecs.reshape(R.shape[:-2] + (3,))


def rotation_angle(R: np.ndarray) -> np.ndarray:
    """Rotation angles (...) in radians, [0, pi], of rotations (..., 3, 3)."""
    return np.linalg.norm(rotation_log(R), axis=-1)


def rotation_angle_deg(R_a: np.ndarray, R_b: np.ndarray) -> np.ndarray:
    """Geodesic angle between rotations, ``arccos((tr(R_a R_b^T) - 1) / 2)``, in degrees.

    The RayDiffusion metric's formula (float64 ``arccos`` of the clipped cosine; it resolves
    angles near 0 to about 1e-6 degrees; :func:`rotation_angle` is exact there).

    Args:
        R_a: (..., 3, 3) rotations.
        R_b: (..., 3, 3) rotations (broadcast against ``R_a``).

    Returns:
        (...) angles in [0, 180] degrees.
    """
    R_a = np.asarray(R_a, dtype=np.float64)
    R_b = np.asarray(R_b, dtype=np.float64)
    # tr(A B^T) is the sum of the elementwise product.
    cos_angle = (np.sum(R_a * R_b, axis=(-2, -1)) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos_angle, -1.0, 1.0)))


def project_to_rotation(matrices: np.ndarray) -> np.ndarray:
    """Nearest rotations (Frobenius norm) to (..., 3, 3) matrices, by SVD with det +1."""
    U, _, Vt = np.linalg.svd(np.asarray(matrices, dtype=np.float64))
    fix = np.ones(U.shape[:-1])
    fix[..., 2] = np.sign(np.linalg.det(U @ Vt))
    fix[fix == 0.0] = 1.0
    return (U * fix[..., None, :]) @ Vt


def chordal_mean_rotation(rotations: np.ndarray, axis: int = 0) -> np.ndarray:
    """Chordal L2 mean of rotations along ``axis``: the rotation nearest their arithmetic mean.

    Args:
        rotations: (..., 3, 3) rotations; ``axis`` indexes the samples to average.
        axis: sample axis (not one of the last two).

    Returns:
        The mean rotations, shape of ``rotations`` without ``axis``.
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    return project_to_rotation(rotations.mean(axis=axis))


def random_rotations(rng: np.random.Generator, num: int) -> np.ndarray:
    """``num`` independent uniformly distributed (Haar) rotations, (num, 3, 3).

    A 4-D standard normal vector, normalised, is a uniform unit quaternion, and unit
    quaternions cover SO(3) twice with uniform measure, so their rotations are Haar-uniform.
    """
    quaternions = rng.standard_normal((num, 4))
    quaternions /= np.linalg.norm(quaternions, axis=-1, keepdims=True)
    w, x, y, z = quaternions.T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def axis_angle_rotations(axes: np.ndarray, angles_rad: Union[np.ndarray, float]) -> np.ndarray:
    """Rotations (..., 3, 3) by ``angles_rad`` (...) about ``axes`` (..., 3) (any length > 0)."""
    axes = np.asarray(axes, dtype=np.float64)
    unit = axes / np.linalg.norm(axes, axis=-1, keepdims=True)
    return rotation_exp(unit * np.asarray(angles_rad, dtype=np.float64)[..., None])

