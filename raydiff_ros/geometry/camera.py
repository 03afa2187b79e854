"""Batched pinhole cameras in the package convention (OpenCV / ROS optical frame).

A :class:`Cameras` holds any batch shape ``(...)`` of cameras: world-to-camera rotation ``R``
(..., 3, 3) and translation ``t`` (..., 3) (together ``camera_T_world``: ``x_cam = R x_world +
t``), pixel intrinsics ``K`` (..., 3, 3) and image size (..., 2) = ``(W, H)``. Camera axes: x
right, y down, z forward.
"""

from dataclasses import dataclass
from typing import Optional, Union

import torch

from raydiff_ros.geometry import conventions
from raydiff_ros.geometry.checks import (
    ArrayLike,
    GeometryInputError,
    as_float_tensor,
    require_finite,
    require_trailing_shape,
)
from raydiff_ros.geometry.linalg3 import det3

ROTATION_TOLERANCE = 1e-4
"""Largest accepted ``|R R^T - I|`` entry and ``|det R - 1|`` for a rotation matrix."""


def require_rotation(R: torch.Tensor, name: str = 'R') -> None:
    """Raise unless ``R`` (..., 3, 3) is a finite proper rotation (within ROTATION_TOLERANCE)."""
    require_trailing_shape(R, name, (3, 3))
    require_finite(R, name)
    identity = torch.eye(3, device=R.device, dtype=R.dtype)
    orthogonality_error = (R @ R.transpose(-1, -2) - identity).abs()
    if R.numel() and float(orthogonality_error.max()) > ROTATION_TOLERANCE:
        raise GeometryInputError(
            f'{name} is not orthonormal (max |R R^T - I| = {float(orthogonality_error.max()):.3g})'
        )
    determinant = det3(R)
    if not bool(((determinant - 1).abs() <= ROTATION_TOLERANCE).all()):
        raise GeometryInputError(
            f'{name} is not a proper rotation (det = {float(determinant.min()):.6g}; a '
            'reflection has det -1)'
        )


def _homogeneous(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    matrix = torch.zeros(
        rotation.shape[:-2] + (4, 4), device=rotation.device, dtype=rotation.dtype
    )
    matrix[..., :3, :3] = rotation
    matrix[..., :3, 3] = translation
    matrix[..., 3, 3] = 1
    return matrix


@dataclass(frozen=True)
class Cameras:
    """A batch of pinhole cameras, OpenCV convention, validated at construction.

    Attributes:
        R: (..., 3, 3) world-to-camera rotation (``camera_T_world``), proper rotation.
        t: (..., 3) world-to-camera translation.
        K: (..., 3, 3) pixel intrinsics ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``, fx, fy > 0.
        image_size: (..., 2) ``(W, H)`` in pixels; a pair ``(W, H)`` is accepted and broadcast.

    All four are broadcast to one batch shape and share R's device and floating dtype. Numpy
    arrays and sequences are accepted. Construction raises :class:`GeometryInputError` on a wrong
    shape, a non-finite value, a non-positive focal length or image size, or a matrix that is
    not a proper rotation.
    """

    R: torch.Tensor
    t: torch.Tensor
    K: torch.Tensor
    image_size: Union[torch.Tensor, tuple]

    def __post_init__(self) -> None:
        R = as_float_tensor(self.R, 'R')
        t = as_float_tensor(self.t, 't', like=R)
        K = as_float_tensor(self.K, 'K', like=R)
        require_rotation(R)
        require_trailing_shape(t, 't', (3,))
        require_finite(t, 't')
        conventions.require_pinhole_intrinsics(K)
        size = conventions.image_size_tensor(self.image_size, R)
        try:
            batch_shape = torch.broadcast_shapes(
                R.shape[:-2], t.shape[:-1], K.shape[:-2], size.shape[:-1]
            )
        except RuntimeError as error:
            raise GeometryInputError(
                f'camera batch shapes do not broadcast: R {tuple(R.shape)}, t {tuple(t.shape)}, '
                f'K {tuple(K.shape)}, image_size {tuple(size.shape)}'
            ) from error
        object.__setattr__(self, 'R', R.expand(batch_shape + (3, 3)))
        object.__setattr__(self, 't', t.expand(batch_shape + (3,)))
        object.__setattr__(self, 'K', K.expand(batch_shape + (3, 3)))
        object.__setattr__(self, 'image_size', size.expand(batch_shape + (2,)))

    @property
    def batch_shape(self) -> torch.Size:
        """The leading (batch) shape ``(...)``."""
        return self.R.shape[:-2]

    @property
    def device(self) -> torch.device:
        return self.R.device

    @property
    def dtype(self) -> torch.dtype:
        return self.R.dtype

    @property
    def focal_length(self) -> torch.Tensor:
        """(..., 2) ``(fx, fy)`` in pixels."""
        return torch.stack([self.K[..., 0, 0], self.K[..., 1, 1]], dim=-1)

    @property
    def principal_point(self) -> torch.Tensor:
        """(..., 2) ``(cx, cy)`` in pixels."""
        return torch.stack([self.K[..., 0, 2], self.K[..., 1, 2]], dim=-1)

    @property
    def centers(self) -> torch.Tensor:
        """(..., 3) camera centres in the world frame, ``C = -R^T t``."""
        return -(self.R.transpose(-1, -2) @ self.t[..., None])[..., 0]

    @property
    def camera_T_world(self) -> torch.Tensor:
        """(..., 4, 4) homogeneous world-to-camera transform ``[[R, t], [0, 1]]``."""
        return _homogeneous(self.R, self.t)

    @property
    def world_T_camera(self) -> torch.Tensor:
        """(..., 4, 4) homogeneous camera pose in the world ``[[R^T, C], [0, 1]]``."""
        return _homogeneous(self.R.transpose(-1, -2), self.centers)

    def to(
        self,
        device: Optional[Union[str, torch.device]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> 'Cameras':
        """Return the cameras moved to ``device`` and/or cast to floating ``dtype``."""
        def move(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.to(device=device, dtype=dtype)

        return Cameras(move(self.R), move(self.t), move(self.K), move(self.image_size))

    def reshape(self, *batch_shape: int) -> 'Cameras':
        """Return the cameras with a new batch shape (same number of cameras)."""
        shape = tuple(batch_shape)
        return Cameras(
            self.R.reshape(shape + (3, 3)),
            self.t.reshape(shape + (3,)),
            self.K.reshape(shape + (3, 3)),
            self.image_size.reshape(shape + (2,)),
        )

    @classmethod
    def from_world_T_camera(
        cls, world_T_camera: ArrayLike, K: ArrayLike, image_size: ArrayLike
    ) -> 'Cameras':
        """Build cameras from poses in the world.

        Args:
            world_T_camera: (..., 4, 4) or (..., 3, 4) camera-to-world transforms (OpenCV camera
                axes), e.g. the pose of an optical frame in a fixed frame.
            K: (..., 3, 3) pixel intrinsics.
            image_size: ``(W, H)`` or (..., 2).
        """
        pose = as_float_tensor(world_T_camera, 'world_T_camera')
        if pose.dim() < 2 or tuple(pose.shape[-2:]) not in ((4, 4), (3, 4)):
            raise GeometryInputError(
                f'world_T_camera must have shape (..., 4, 4) or (..., 3, 4), got '
                f'{tuple(pose.shape)}'
            )
        rotation = pose[..., :3, :3].transpose(-1, -2)
        translation = -(rotation @ pose[..., :3, 3:4])[..., 0]
        return cls(rotation, translation, K, image_size)

    @classmethod
    def from_pytorch3d_ndc(
        cls,
        R: ArrayLike,
        T: ArrayLike,
        focal_length: ArrayLike,
        principal_point: ArrayLike,
        image_size: ArrayLike,
    ) -> 'Cameras':
        """Build cameras from PyTorch3D NDC cameras (see :func:`conventions.ndc_to_opencv`).

        Args:
            R: (..., 3, 3) row-vector rotation; T: (..., 3); focal_length: (..., 2) or (..., 1)
            and principal_point: (..., 2) in NDC; image_size: ``(W, H)`` or (..., 2).
        """
        parameters = conventions.ndc_to_opencv(R, T, focal_length, principal_point, image_size)
        return cls(parameters.R, parameters.t, parameters.K, image_size)

    def to_pytorch3d_ndc(self) -> conventions.NdcCameraParameters:
        """Return the PyTorch3D NDC form (see :func:`conventions.opencv_to_ndc`)."""
        return conventions.opencv_to_ndc(self.R, self.t, self.K, self.image_size)
