"""Batched rigid transforms and the pose samples an estimator returns for one view set.

Every 4x4 matrix is ``target_T_source``: it maps points from ``source`` coordinates into
``target`` coordinates and is the pose of ``source`` in ``target``. Camera frames are
OpenCV/ROS optical frames (x right, y down, z forward). An estimator's world-to-camera
``(R, t)`` (``x_cam = R x_world + t``) is ``camera_T_world``.

Rotation vectors (axis * angle, radians) are the log map of SO(3); a small rotation
``exp(delta) @ R`` perturbs ``R`` about the axes of the frame ``R`` maps into (left
perturbation), which is what ``geometry_msgs/PoseWithCovariance`` means by rotation about
fixed axes.
"""

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.spatial.transform import Rotation

ROTATION_TOLERANCE = 1e-5
"""Largest accepted deviation of ``R R^T`` from the identity in checked transforms."""


class PoseError(ValueError):
    """Poses have the wrong shape, are non-finite, or are not rigid."""


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


def rotation_log(R: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) (radians, angle in [0, pi]) of rotations (..., 3, 3)."""
    R = np.asarray(R, dtype=np.float64)
    flat = R.reshape(-1, 3, 3)
    return Rotation.from_matrix(flat).as_rotvec().reshape(R.shape[:-2] + (3,))


def rotation_exp(rotvecs: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) of rotation vectors (..., 3) (radians)."""
    rotvecs = np.asarray(rotvecs, dtype=np.float64)
    flat = rotvecs.reshape(-1, 3)
    return Rotation.from_rotvec(flat).as_matrix().reshape(rotvecs.shape[:-1] + (3, 3))


def rotation_angle(R: np.ndarray) -> np.ndarray:
    """Rotation angles (...) in radians, [0, pi], of rotations (..., 3, 3)."""
    return np.linalg.norm(rotation_log(R), axis=-1)


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


@dataclass(frozen=True, eq=False)
class PoseSamples:
    """S samples of the N cameras of one view set, as world-to-camera poses.

    Each sample lives in its own world frame and scale (the gauge of a sparse-view estimate is
    free); only poses relative to a reference camera, up to scale, are meaningful.

    Attributes:
        R: (S, N, 3, 3) world-to-camera rotations (``camera_T_world`` rotation).
        t: (S, N, 3) world-to-camera translations.
        K: optional (N, 3, 3) intrinsics in pixels estimated by the model (None when the
            given CameraInfo intrinsics were used).
    """

    R: np.ndarray
    t: np.ndarray
    K: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        R = np.asarray(self.R, dtype=np.float64)
        t = np.asarray(self.t, dtype=np.float64)
        if R.ndim != 4 or R.shape[-2:] != (3, 3) or R.shape[0] < 1 or R.shape[1] < 1:
            raise PoseError(f'sample rotations must have shape (S, N, 3, 3), got {R.shape}')
        if t.shape != R.shape[:3]:
            raise PoseError(f'sample translations must have shape {R.shape[:3]}, got {t.shape}')
        object.__setattr__(self, 'R', R)
        object.__setattr__(self, 't', t)
        if self.K is not None:
            K = np.asarray(self.K, dtype=np.float64)
            if K.shape != (R.shape[1], 3, 3):
                raise PoseError(f'sample K must have shape ({R.shape[1]}, 3, 3), got {K.shape}')
            object.__setattr__(self, 'K', K)

    @classmethod
    def single(cls, R: np.ndarray, t: np.ndarray, K: Optional[np.ndarray] = None) -> 'PoseSamples':
        """One sample from (N, 3, 3) rotations and (N, 3) translations."""
        return cls(R=np.asarray(R)[None], t=np.asarray(t)[None], K=K)

    @property
    def num_samples(self) -> int:
        return int(self.R.shape[0])

    @property
    def num_views(self) -> int:
        return int(self.R.shape[1])

    def is_finite(self) -> bool:
        """Whether every rotation, translation and intrinsic value is finite."""
        arrays = [self.R, self.t] + ([] if self.K is None else [self.K])
        return all(bool(np.all(np.isfinite(a))) for a in arrays)

    def reference_T_cameras(self, reference_index: int = 0) -> np.ndarray:
        """Poses of every camera in the reference camera's frame, per sample: (S, N, 4, 4).

        ``reference_T_camera_i = reference_T_world @ inv(camera_i_T_world)``; the reference
        camera's own pose is the identity. The rotation blocks are re-projected onto SO(3)
        first, which removes float32 rounding of a model output.

        Raises:
            PoseError: ``reference_index`` out of range or non-finite samples.
        """
        if not 0 <= reference_index < self.num_views:
            raise PoseError(
                f'reference_index {reference_index} out of range for {self.num_views} views'
            )
        if not self.is_finite():
            raise PoseError('pose samples contain non-finite values')
        cameras_T_world = make_transforms(project_to_rotation(self.R), self.t)
        reference_T_world = cameras_T_world[:, reference_index:reference_index + 1]
        return reference_T_world @ invert_transforms(cameras_T_world)
