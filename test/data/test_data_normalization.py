"""The official training normalisation of camera sets, on hand-computed cases."""

import numpy as np
import pytest

from raydiff_ros.data.camera_models import look_at_rotation
from raydiff_ros.data.normalization import (
    NormalizationError,
    normalize_cameras,
    optical_axes_intersection,
)
from raydiff_ros.geometry.conventions import opencv_to_ndc
from raydiff_ros.geometry.transforms import camera_centers


def cameras_looking_at(centers: np.ndarray, target: np.ndarray):
    R = np.stack([look_at_rotation(c, target) for c in centers])
    return R, -np.einsum('nij,nj->ni', R, centers)


CENTERS = np.array([[2.0, 0.0, 0.5], [0.0, 3.0, 1.0], [-1.5, -1.0, 2.0]])
TARGET = np.array([0.3, -0.2, 0.4])


def test_axes_meeting_in_a_point_give_that_point():
    R, t = cameras_looking_at(CENTERS, TARGET)
    origin, fallback = optical_axes_intersection(R, t)
    np.testing.assert_allclose(origin, TARGET, atol=1e-9)
    assert not fallback


def test_pytorch3d_frame_first_camera_identity_unit_distance():
    R, t = cameras_looking_at(CENTERS, TARGET)
    R_n, t_n, normalization = normalize_cameras(R, t)
    # camera 0: PyTorch3D rotation I (OpenCV diag(-1, -1, 1)) at distance 1 from the origin
    np.testing.assert_allclose(R_n[0], np.diag([-1.0, -1.0, 1.0]), atol=1e-12)
    p3d = opencv_to_ndc(R_n, t_n, np.eye(3).repeat(1, 0), (2.0, 2.0))
    np.testing.assert_allclose(p3d.R[0].numpy(), np.eye(3), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(camera_centers(R_n, t_n)[0]), 1.0)
    np.testing.assert_allclose(p3d.T[0].numpy(), [0, 0, 1], atol=1e-12)  # looks at the origin
    assert normalization.scale == pytest.approx(np.linalg.norm(CENTERS[0] - TARGET))
    np.testing.assert_allclose(normalization.apply_to_points(TARGET), 0.0, atol=1e-12)
    # a similarity: relative rotations and centre-distance ratios are unchanged
    np.testing.assert_allclose(R_n[1] @ R_n[2].T, R[1] @ R[2].T, atol=1e-12)
    centres = camera_centers(R_n, t_n)
    ratio = np.linalg.norm(centres[1] - centres[2]) / np.linalg.norm(CENTERS[1] - CENTERS[2])
    assert ratio == pytest.approx(1 / normalization.scale)
    np.testing.assert_allclose(normalization.apply_to_points(CENTERS), centres, atol=1e-12)


def test_opencv_frame_puts_camera_zero_at_identity():
    R, t = cameras_looking_at(CENTERS, TARGET)
    R_n, t_n, _ = normalize_cameras(R, t, first_camera_frame='opencv')
    np.testing.assert_allclose(R_n[0], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(t_n[0], [0, 0, 1], atol=1e-12)
    with pytest.raises(NormalizationError, match='first_camera_frame'):
        normalize_cameras(R, t, first_camera_frame='blender')


def test_parallel_axes_use_the_documented_fallback():
    R = np.repeat(np.eye(3)[None], 2, axis=0)
    centers = np.array([[0.0, 0, 0], [1.0, 0, 0]])
    t = -centers
    origin, fallback = optical_axes_intersection(R, t)
    assert fallback
    np.testing.assert_allclose(origin, [0.5, 0.0, 1.0])  # mean of C_i + z * mean baseline
    _, _, normalization = normalize_cameras(R, t)
    assert normalization.used_fallback


def test_bad_inputs():
    with pytest.raises(NormalizationError, match='N >= 2'):
        normalize_cameras(np.eye(3)[None], np.zeros((1, 3)))
