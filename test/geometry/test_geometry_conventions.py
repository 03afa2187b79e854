"""OpenCV <-> PyTorch3D NDC conversions (raydiff_ros.geometry.conventions)."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st
import pytest
import torch

from raydiff_ros.geometry import conventions
from raydiff_ros.geometry.checks import GeometryInputError

ROUND_TRIP_ATOL = 1e-12
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


def rotation_from_quaternion(quaternion: torch.Tensor) -> torch.Tensor:
    """(..., 4) (w, x, y, z) -> (..., 3, 3) rotation matrix (normalises the quaternion)."""
    w, x, y, z = (quaternion / quaternion.norm(dim=-1, keepdim=True)).unbind(-1)
    return torch.stack(
        [
            torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def pixel_intrinsics(fx: float, fy: float, cx: float, cy: float) -> torch.Tensor:
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float64)


@st.composite
def opencv_cameras(draw):
    """A random OpenCV camera (float64): rotation, translation, off-centre K, non-square image."""
    width = draw(st.integers(32, 4000))
    height = draw(st.integers(32, 4000))
    quaternion = torch.tensor(
        draw(st.lists(st.floats(-1, 1), min_size=4, max_size=4)), dtype=torch.float64
    )
    if float(quaternion.norm()) < 0.1:
        quaternion = quaternion + torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    translation = torch.tensor(
        draw(st.lists(st.floats(-10, 10), min_size=3, max_size=3)), dtype=torch.float64
    )
    focal = draw(st.floats(0.2, 5.0)) * min(width, height)
    aspect = draw(st.floats(0.7, 1.4))
    cx = width * draw(st.floats(0.1, 0.9))
    cy = height * draw(st.floats(0.1, 0.9))
    K = pixel_intrinsics(focal, focal * aspect, cx, cy)
    return rotation_from_quaternion(quaternion), translation, K, (width, height)


@PROPERTY_SETTINGS
@given(opencv_cameras())
def test_opencv_ndc_opencv_round_trip_is_exact(camera):
    """OpenCV -> NDC -> OpenCV returns the inputs to 1e-12 (float64)."""
    R, t, K, size = camera
    ndc = conventions.opencv_to_ndc(R, t, K, size)
    back = conventions.ndc_to_opencv(*ndc, size)
    torch.testing.assert_close(back.R, R, atol=ROUND_TRIP_ATOL, rtol=0)
    torch.testing.assert_close(back.t, t, atol=ROUND_TRIP_ATOL, rtol=0)
    torch.testing.assert_close(back.K, K, atol=ROUND_TRIP_ATOL * max(size), rtol=0)


@PROPERTY_SETTINGS
@given(opencv_cameras())
def test_ndc_opencv_ndc_round_trip_is_exact(camera):
    """NDC -> OpenCV -> NDC returns the inputs to 1e-12 (float64)."""
    R, t, K, size = camera
    ndc = conventions.opencv_to_ndc(R, t, K, size)
    cv = conventions.ndc_to_opencv(*ndc, size)
    again = conventions.opencv_to_ndc(cv.R, cv.t, cv.K, size)
    for got, want in zip(again, ndc, strict=True):
        torch.testing.assert_close(got, want, atol=ROUND_TRIP_ATOL, rtol=0)


@PROPERTY_SETTINGS
@given(
    opencv_cameras(),
    st.lists(st.floats(-3, 3), min_size=2, max_size=2),
    st.floats(0.5, 20),
)
def test_both_conventions_project_a_point_to_the_same_image_location(camera, xy, depth):
    """A world point projected by OpenCV (pixels) and by PyTorch3D NDC (row vectors, +X left,
    +Y up) lands on the same image location once the pixel is converted to NDC."""
    R, t, K, size = camera
    point_camera = torch.tensor([xy[0] * depth, xy[1] * depth, depth], dtype=torch.float64)
    point_world = R.T @ (point_camera - t)
    pixel_h = K @ (R @ point_world + t)
    pixel = pixel_h[:2] / pixel_h[2]
    ndc = conventions.opencv_to_ndc(R, t, K, size)
    point_p3d = point_world @ ndc.R + ndc.T
    projected_ndc = ndc.focal_length * point_p3d[:2] / point_p3d[2] + ndc.principal_point
    torch.testing.assert_close(
        conventions.pixel_to_ndc(pixel, size), projected_ndc, atol=1e-9, rtol=1e-9
    )


def test_identity_camera_hand_values():
    """Identity OpenCV camera, centred principal point: R_p3d = diag(-1,-1,1), T = F t, and
    f_ndc = f_px / (min(W, H) / 2)."""
    K = pixel_intrinsics(600.0, 500.0, 320.0, 240.0)
    ndc = conventions.opencv_to_ndc(
        torch.eye(3, dtype=torch.float64), torch.tensor([1.0, 2.0, 3.0]).double(), K, (640, 480)
    )
    torch.testing.assert_close(ndc.R, torch.diag(torch.tensor([-1.0, -1.0, 1.0])).double())
    torch.testing.assert_close(ndc.T, torch.tensor([-1.0, -2.0, 3.0]).double())
    torch.testing.assert_close(ndc.focal_length, torch.tensor([2.5, 500 / 240]).double())
    torch.testing.assert_close(ndc.principal_point, torch.zeros(2).double())


def test_off_centre_principal_point_hand_values():
    """cx 24 px right of centre -> px = -0.1 (NDC +X is left); cy 48 px above -> py = +0.2."""
    K = pixel_intrinsics(240.0, 240.0, 320.0 + 24.0, 240.0 - 48.0)
    focal, centre = conventions.intrinsics_to_ndc(K, (640, 480))
    torch.testing.assert_close(focal, torch.tensor([1.0, 1.0]).double())
    torch.testing.assert_close(centre, torch.tensor([-0.1, 0.2]).double())


def test_rotation_conversion_negates_columns_of_transpose():
    """R_p3d = R_cv^T with columns 0 and 1 negated, for a 90-degree rotation about x."""
    R = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]).double()
    K = pixel_intrinsics(1, 1, 1, 1)
    ndc = conventions.opencv_to_ndc(R, torch.zeros(3).double(), K, (2, 2))
    expected = torch.tensor([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]).double()
    torch.testing.assert_close(ndc.R, expected)


def test_pixel_ndc_hand_values_on_portrait_image():
    """600 x 800 image: top-left pixel corner is NDC (+1, +4/3), the centre is 0, bottom-right
    is (-1, -4/3)."""
    pixels = torch.tensor([[0.0, 0.0], [300.0, 400.0], [600.0, 800.0]], dtype=torch.float64)
    expected = torch.tensor([[1.0, 4 / 3], [0.0, 0.0], [-1.0, -4 / 3]], dtype=torch.float64)
    torch.testing.assert_close(conventions.pixel_to_ndc(pixels, (600, 800)), expected)
    torch.testing.assert_close(conventions.ndc_to_pixel(expected, (600, 800)), pixels)


def test_homogeneous_maps_match_the_point_conversions():
    """pixel_T_ndc and ndc_T_pixel are inverse and agree with pixel_to_ndc (batched sizes)."""
    sizes = torch.tensor([[640.0, 480.0], [300.0, 900.0]], dtype=torch.float64)
    pixel_from_ndc = conventions.pixel_T_ndc(sizes, sizes)
    ndc_from_pixel = conventions.ndc_T_pixel(sizes, sizes)
    torch.testing.assert_close(
        pixel_from_ndc @ ndc_from_pixel, torch.eye(3, dtype=torch.float64).expand(2, 3, 3)
    )
    pixels = torch.tensor([[[10.0, 20.0]], [[250.0, 7.0]]], dtype=torch.float64)
    mapped = (ndc_from_pixel @ torch.cat([pixels, torch.ones(2, 1, 1).double()], -1).mT).mT
    torch.testing.assert_close(mapped[..., :2], conventions.pixel_to_ndc(pixels, sizes[:, None]))


def test_focal_length_of_one_value_means_square_pixels():
    K = conventions.intrinsics_from_ndc(torch.tensor([2.0]), torch.zeros(2), (200, 100))
    torch.testing.assert_close(K, torch.tensor([[100.0, 0, 100], [0, 100.0, 50], [0, 0, 1]]))


@pytest.mark.parametrize(
    'image_size, message',
    [((0, 480), 'positive'), ((640, -1), 'positive'), ((640, math.nan), 'non-finite'),
     ((640, 480, 3), 'shape')],
)
def test_bad_image_size_raises(image_size, message):
    with pytest.raises(GeometryInputError, match=message):
        conventions.pixel_to_ndc(torch.zeros(2), image_size)


def test_bad_intrinsics_raise():
    size = (640, 480)
    with pytest.raises(GeometryInputError, match='positive focal'):
        conventions.intrinsics_to_ndc(pixel_intrinsics(-5.0, 5.0, 1.0, 1.0), size)
    with pytest.raises(GeometryInputError, match='positive focal'):
        conventions.intrinsics_to_ndc(pixel_intrinsics(0.0, 5.0, 1.0, 1.0), size)
    skewed = pixel_intrinsics(5.0, 5.0, 1.0, 1.0)
    skewed[0, 1] = 0.5
    with pytest.raises(GeometryInputError, match='skew'):
        conventions.intrinsics_to_ndc(skewed, size)
    with pytest.raises(GeometryInputError, match='shape'):
        conventions.intrinsics_to_ndc(torch.eye(4), size)
    with pytest.raises(GeometryInputError, match='focal_length must be strictly positive'):
        conventions.intrinsics_from_ndc(torch.tensor([0.0, 1.0]), torch.zeros(2), size)


def test_bad_extrinsics_raise():
    K = pixel_intrinsics(5.0, 5.0, 1.0, 1.0)
    with pytest.raises(GeometryInputError, match='non-finite'):
        conventions.opencv_to_ndc(torch.eye(3), torch.tensor([0.0, math.nan, 0.0]), K, (4, 4))
    with pytest.raises(GeometryInputError, match=r'R must have shape'):
        conventions.opencv_to_ndc(torch.eye(2), torch.zeros(3), K, (4, 4))
    with pytest.raises(GeometryInputError, match=r'T must have shape'):
        conventions.ndc_to_opencv(torch.eye(3), torch.zeros(4), torch.ones(2), torch.zeros(2),
                                  (4, 4))
    with pytest.raises(TypeError, match='real-valued'):
        conventions.opencv_to_ndc(torch.eye(3, dtype=torch.complex64), torch.zeros(3), K, (4, 4))
