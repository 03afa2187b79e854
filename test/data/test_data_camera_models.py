"""Generator cameras: look-at rotations, intrinsics, and the pybullet (OpenGL) matrices."""

import numpy as np
import pytest

from raydiff_ros.data.camera_models import (
    camera_T_world_from_view_matrix,
    intrinsics_from_vertical_fov,
    look_at_rotation,
    opengl_projection_matrix,
    opengl_view_matrix,
    project_points,
)
from raydiff_ros.data.renderer import quaternion_from_rotation


def test_look_at_from_plus_x_has_the_hand_computed_axes():
    R = look_at_rotation(np.array([2.0, 0, 0]), np.zeros(3))
    # right = +y, down = -z, forward = -x (world z up appears up in the image)
    np.testing.assert_allclose(R, [[0, 1, 0], [0, 0, -1], [-1, 0, 0]], atol=1e-12)
    K = intrinsics_from_vertical_fov(60.0, 64, 48)
    t = -R @ np.array([2.0, 0, 0])
    pixels = project_points(K, R, t, np.array([[0.0, 0, 0], [0.0, 0, 0.5]]))
    np.testing.assert_allclose(pixels[0], [32, 24])
    assert pixels[1, 1] < 24  # a point above the target is higher in the image


def test_roll_rotates_about_the_optical_axis_only():
    center, target = np.array([1.0, 2, 1]), np.array([0.0, 0, 0.2])
    plain = look_at_rotation(center, target)
    rolled = look_at_rotation(center, target, roll_rad=0.3)
    np.testing.assert_allclose(rolled[2], plain[2])
    assert np.degrees(np.arccos((np.trace(rolled @ plain.T) - 1) / 2)) == pytest.approx(
        np.degrees(0.3))
    with pytest.raises(ValueError, match='parallel'):
        look_at_rotation(np.array([0.0, 0, 3]), np.zeros(3))


def test_intrinsics_from_fov():
    K = intrinsics_from_vertical_fov(90.0, 100, 80, principal_offset=(2.0, -1.0))
    np.testing.assert_allclose(K, [[40, 0, 52], [0, 40, 39], [0, 0, 1]])
    with pytest.raises(ValueError):
        intrinsics_from_vertical_fov(180.0, 10, 10)


def test_view_matrix_round_trip_and_projection_validation():
    R = look_at_rotation(np.array([1.0, -2, 1.5]), np.array([0.1, 0, 0.3]))
    t = np.array([0.2, -0.1, 2.0])
    camera_T_world = camera_T_world_from_view_matrix(opengl_view_matrix(R, t))
    np.testing.assert_allclose(camera_T_world[:3, :3], R, atol=1e-12)
    np.testing.assert_allclose(camera_T_world[:3, 3], t, atol=1e-12)
    with pytest.raises(ValueError):
        opengl_projection_matrix(np.eye(3), 10, 10, 1.0, 0.5)


def test_matrices_equal_pybullet_conventions(pybullet_module):
    p = pybullet_module
    eye, target = [1.5, 0.3, 0.8], [0.0, 0.0, 0.0]
    camera_T_world = camera_T_world_from_view_matrix(p.computeViewMatrix(eye, target, [0, 0, 1]))
    R = look_at_rotation(np.array(eye), np.array(target))
    np.testing.assert_allclose(camera_T_world[:3, :3], R, atol=1e-6)
    np.testing.assert_allclose(-R.T @ camera_T_world[:3, 3], eye, atol=1e-6)
    width, height, fov = 160, 120, 50.0
    ours = opengl_projection_matrix(intrinsics_from_vertical_fov(fov, width, height), width,
                                    height, 0.01, 10.0)
    theirs = p.computeProjectionMatrixFOV(fov, width / height, 0.01, 10.0)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_quaternion_matches_pybullet(pybullet_module):
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.normal(size=4)
        R = np.array(pybullet_module.getMatrixFromQuaternion((q / np.linalg.norm(q)).tolist())
                     ).reshape(3, 3)
        back = np.array(pybullet_module.getMatrixFromQuaternion(quaternion_from_rotation(R))
                        ).reshape(3, 3)
        np.testing.assert_allclose(back, R, atol=1e-9)
