"""The batched OpenCV camera type (raydiff_ros.geometry.camera)."""

import math

import numpy as np
import pytest
import torch

from raydiff_ros.geometry.camera import Cameras
from raydiff_ros.geometry.checks import GeometryInputError

ROTATION_Z_90 = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
K_SIMPLE = [[100.0, 0.0, 60.0], [0.0, 110.0, 40.0], [0.0, 0.0, 1.0]]


def make_cameras(**overrides) -> Cameras:
    fields = dict(
        R=torch.tensor(ROTATION_Z_90, dtype=torch.float64),
        t=torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
        K=torch.tensor(K_SIMPLE, dtype=torch.float64),
        image_size=(120, 80),
    )
    fields.update(overrides)
    return Cameras(**fields)


def test_centre_of_rotated_camera_hand_value():
    """R = 90 deg about z, t = (1, 0, 0): C = -R^T t = (0, 1, 0)."""
    cameras = make_cameras()
    torch.testing.assert_close(cameras.centers, torch.tensor([0.0, 1.0, 0.0]).double())
    torch.testing.assert_close(cameras.focal_length, torch.tensor([100.0, 110.0]).double())
    torch.testing.assert_close(cameras.principal_point, torch.tensor([60.0, 40.0]).double())


def test_pose_matrices_are_inverse_and_map_centre_to_origin():
    cameras = make_cameras()
    product = cameras.world_T_camera @ cameras.camera_T_world
    torch.testing.assert_close(product, torch.eye(4, dtype=torch.float64))
    centre_h = torch.cat([cameras.centers, torch.ones(1).double()])
    torch.testing.assert_close(cameras.camera_T_world @ centre_h, torch.eye(4).double()[3])
    torch.testing.assert_close(cameras.world_T_camera[:3, 3], cameras.centers)


def test_batch_broadcasting_of_shared_intrinsics_and_image_size():
    rotations = torch.eye(3, dtype=torch.float64).expand(2, 4, 3, 3)
    cameras = Cameras(rotations, torch.zeros(2, 4, 3).double(), K_SIMPLE, (120, 80))
    assert cameras.batch_shape == (2, 4)
    assert cameras.K.shape == (2, 4, 3, 3)
    torch.testing.assert_close(cameras.image_size[1, 3], torch.tensor([120.0, 80.0]).double())
    assert cameras.reshape(8).batch_shape == (8,)


def test_numpy_inputs_are_accepted_and_dtype_follows_rotation():
    cameras = Cameras(np.eye(3, dtype=np.float32), np.zeros(3), np.array(K_SIMPLE), (120, 80))
    assert cameras.dtype == torch.float32
    assert cameras.t.dtype == torch.float32
    assert cameras.to(dtype=torch.float64).K.dtype == torch.float64


def test_from_world_T_camera_round_trip():
    cameras = make_cameras()
    rebuilt = Cameras.from_world_T_camera(cameras.world_T_camera, cameras.K, (120, 80))
    torch.testing.assert_close(rebuilt.R, cameras.R)
    torch.testing.assert_close(rebuilt.t, cameras.t)


def test_pytorch3d_round_trip_and_camera_centre_agree():
    """PyTorch3D's centre is -T R_p3d^T (row vectors); it equals our C = -R^T t."""
    cameras = make_cameras()
    ndc = cameras.to_pytorch3d_ndc()
    torch.testing.assert_close(-ndc.T @ ndc.R.T, cameras.centers)
    back = Cameras.from_pytorch3d_ndc(*ndc, (120, 80))
    torch.testing.assert_close(back.R, cameras.R, atol=1e-12, rtol=0)
    torch.testing.assert_close(back.K, cameras.K, atol=1e-12, rtol=0)


def test_reflection_is_rejected():
    with pytest.raises(GeometryInputError, match='proper rotation'):
        make_cameras(R=torch.diag(torch.tensor([1.0, 1.0, -1.0])).double())


def test_non_orthonormal_matrix_is_rejected():
    with pytest.raises(GeometryInputError, match='orthonormal'):
        make_cameras(R=2 * torch.eye(3, dtype=torch.float64))


@pytest.mark.parametrize(
    'overrides, message',
    [
        (dict(t=torch.tensor([0.0, math.inf, 0.0]).double()), 'non-finite'),
        (dict(t=torch.zeros(4).double()), r't must have shape'),
        (dict(R=torch.eye(3)[None].expand(2, 3, 3).double(), t=torch.zeros(3, 3).double()),
         'do not broadcast'),
        (dict(K=torch.tensor([[-1.0, 0, 1], [0, 1, 1], [0, 0, 1]]).double()), 'positive focal'),
        (dict(K=torch.tensor([[1.0, 0, 1], [0, 0, 1], [0, 0, 1]]).double()), 'positive focal'),
        (dict(image_size=(0, 80)), 'positive'),
        (dict(R=torch.full((3, 3), math.nan).double()), 'non-finite'),
    ],
)
def test_invalid_cameras_raise(overrides, message):
    with pytest.raises(GeometryInputError, match=message):
        make_cameras(**overrides)


def test_cameras_are_frozen():
    cameras = make_cameras()
    with pytest.raises(AttributeError):
        cameras.t = torch.zeros(3)
