"""CameraInfo validation and intrinsics rescaling against hand-computed values."""

import math

import numpy as np
import pytest

from raydiff_ros.pipeline.camera_info import (
    CameraInfoConfig,
    CameraInfoError,
    PinholeIntrinsics,
    intrinsics_for_image,
    intrinsics_from_camera_info,
)

K_VALUES = [500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0]
P_VALUES = [400.0, 0.0, 300.0, 0.0, 0.0, 410.0, 200.0, 0.0, 0.0, 0.0, 1.0, 0.0]


def test_k_gives_the_pinhole_matrix_and_carries_distortion():
    intrinsics = intrinsics_from_camera_info(
        K_VALUES, 640, 480, d=[0.1, -0.2, 0.0, 0.0, 0.05], distortion_model='plumb_bob'
    )
    np.testing.assert_array_equal(intrinsics.K, np.array(K_VALUES).reshape(3, 3))
    assert (intrinsics.width, intrinsics.height) == (640, 480)
    assert intrinsics.distortion == (0.1, -0.2, 0.0, 0.0, 0.05)
    assert intrinsics.distortion_model == 'plumb_bob' and intrinsics.has_distortion


def test_p_is_used_for_rectified_images():
    intrinsics = intrinsics_from_camera_info(
        K_VALUES, 640, 480, p=P_VALUES, config=CameraInfoConfig(intrinsics_source='p')
    )
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == (400, 410, 300, 200)
    assert not intrinsics.has_distortion


@pytest.mark.parametrize(
    'k, width, height, kwargs, words',
    [
        (K_VALUES[:8], 640, 480, {}, 'must have 9 values'),
        ([math.nan] + K_VALUES[1:], 640, 480, {}, 'NaN'),
        ([0.0] * 9, 640, 480, {}, 'not calibrated'),
        ([0.0] + K_VALUES[1:], 640, 480, {}, 'fx must be positive'),
        (K_VALUES[:4] + [-510.0] + K_VALUES[5:], 640, 480, {}, 'fy must be positive'),
        (K_VALUES[:6] + [0.0, 0.0, 2.0], 640, 480, {}, 'last row'),
        (K_VALUES, 0, 480, {}, 'width must be a positive integer'),
        (K_VALUES, 640, -1, {}, 'height must be a positive integer'),
        (K_VALUES, 640, 480, {'p': P_VALUES[:11]}, 'must have 12 values'),
        (K_VALUES, 640, 480, {'config': CameraInfoConfig(intrinsics_source='p')}, 'no projection'),
        (K_VALUES, 640, 480, {'d': [0.1, math.inf]}, 'NaN or infinite'),
    ],
)
def test_invalid_camera_info_raises_a_clear_error(k, width, height, kwargs, words):
    with pytest.raises(CameraInfoError, match=words):
        intrinsics_from_camera_info(k, width, height, **kwargs)


def test_invalid_config_is_refused():
    with pytest.raises(CameraInfoError, match='intrinsics_source'):
        CameraInfoConfig(intrinsics_source='q')
    with pytest.raises(CameraInfoError, match='aspect_ratio_tolerance'):
        CameraInfoConfig(aspect_ratio_tolerance=-0.1)


def test_halving_the_image_follows_the_pixel_centre_convention():
    half = intrinsics_from_camera_info(K_VALUES, 640, 480).scaled_to(320, 240)
    # fx' = fx / 2; cx' = (cx + 0.5) / 2 - 0.5 = 159.75 (hand-computed).
    assert (half.fx, half.fy, half.cx, half.cy) == (250.0, 255.0, 159.75, 119.75)
    assert (half.width, half.height) == (320, 240)


def test_scaled_intrinsics_project_to_the_resized_pixel_grid():
    full = PinholeIntrinsics(fx=500, fy=510, cx=320, cy=240, width=640, height=480, skew=2.0)
    small = full.scaled_to(200, 150)
    point = np.array([0.3, -0.2, 2.0])
    u_full = full.K @ point
    u_small = small.K @ point
    u_full, u_small = u_full[:2] / u_full[2], u_small[:2] / u_small[2]
    # A resize by s maps pixel-edge coordinates u + 0.5 to s (u + 0.5).
    expected = (u_full + 0.5) * np.array([200 / 640, 150 / 480]) - 0.5
    np.testing.assert_allclose(u_small, expected, atol=1e-12)


def test_intrinsics_for_image_rescales_or_refuses_a_different_aspect_ratio():
    intrinsics = intrinsics_from_camera_info(K_VALUES, 640, 480)
    assert intrinsics_for_image(intrinsics, 640, 480) is intrinsics
    assert intrinsics_for_image(intrinsics, 320, 240).fx == 250.0
    assert intrinsics_for_image(intrinsics, 321, 240).width == 321  # 0.3 % off: accepted
    with pytest.raises(CameraInfoError, match='aspect ratios'):
        intrinsics_for_image(intrinsics, 640, 360)


def test_scaling_to_a_non_positive_size_is_refused():
    intrinsics = intrinsics_from_camera_info(K_VALUES, 640, 480)
    with pytest.raises(CameraInfoError, match='width'):
        intrinsics.scaled_to(0, 240)
