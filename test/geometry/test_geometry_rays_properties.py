"""Property-based round trips: OpenCV cameras -> rays -> cameras (float64).

Random rotations (any orientation, including cameras orthogonal to world z), centres, focal
lengths with non-square pixels, off-centre principal points, non-square images and random square
crops. Hypothesis runs derandomised so CI sees the same examples every run.
"""

from hypothesis import given, settings
from hypothesis import strategies as st
import torch

from raydiff_ros.geometry import conventions, crop, rays
from raydiff_ros.geometry.camera import Cameras

ROUND_TRIP_ATOL = 1e-5
PROPERTY_SETTINGS = settings(max_examples=30, deadline=None, derandomize=True)
F64 = torch.float64


def rotation_from_quaternion(quaternion: torch.Tensor) -> torch.Tensor:
    """(4,) (w, x, y, z), any non-zero length -> (3, 3) rotation matrix."""
    w, x, y, z = (quaternion / quaternion.norm()).tolist()
    return torch.tensor(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ],
        dtype=F64,
    )


@st.composite
def camera_and_crop(draw):
    """One random camera (R, C, K, (W, H)) and a square crop box (pixels) of its image."""
    width = draw(st.integers(64, 2000))
    height = draw(st.integers(64, 2000))
    short = min(width, height)
    quaternion = torch.tensor(draw(st.lists(st.floats(-1, 1), min_size=4, max_size=4)))
    if float(quaternion.norm()) < 0.1:
        quaternion = torch.tensor([1.0, 0.0, 0.0, 0.0])
    centre = draw(st.lists(st.floats(-5, 5), min_size=3, max_size=3))
    focal = draw(st.floats(0.4, 3.0)) * short
    aspect = draw(st.floats(0.8, 1.25))
    cx = width * draw(st.floats(0.2, 0.8))
    cy = height * draw(st.floats(0.2, 0.8))
    side = draw(st.floats(0.3, 1.2)) * short
    box_u = width * draw(st.floats(0.2, 0.8))
    box_v = height * draw(st.floats(0.2, 0.8))
    K = torch.tensor([[focal, 0, cx], [0, focal * aspect, cy], [0, 0, 1]], dtype=F64)
    box = torch.tensor(
        [box_u - side / 2, box_v - side / 2, box_u + side / 2, box_v + side / 2], dtype=F64
    )
    return rotation_from_quaternion(quaternion), torch.tensor(centre, dtype=F64), K, (
        width, height), box


def batch(samples) -> tuple[Cameras, torch.Tensor]:
    """Stack samples into cameras (N,) and training-formula crop parameters (N, 4)."""
    R = torch.stack([sample[0] for sample in samples])
    centres = torch.stack([sample[1] for sample in samples])
    K = torch.stack([sample[2] for sample in samples])
    sizes = torch.tensor([sample[3] for sample in samples], dtype=F64)
    boxes = torch.stack([sample[4] for sample in samples])
    t = -(R @ centres[..., None])[..., 0]
    return Cameras(R, t, K, sizes), crop.crop_parameters(boxes, sizes)


@PROPERTY_SETTINGS
@given(st.lists(camera_and_crop(), min_size=1, max_size=3))
def test_procrustes_round_trip_with_known_intrinsics(samples):
    """cameras -> rays -> cameras with the true K: R, t and centres to 1e-5."""
    cameras, params = batch(samples)
    recovered = rays.rays_to_cameras_procrustes(
        rays.cameras_to_rays(cameras, params), cameras.K, cameras.image_size, params
    )
    torch.testing.assert_close(recovered.R, cameras.R, atol=ROUND_TRIP_ATOL, rtol=0)
    torch.testing.assert_close(recovered.t, cameras.t, atol=ROUND_TRIP_ATOL, rtol=0)
    torch.testing.assert_close(recovered.centers, cameras.centers, atol=ROUND_TRIP_ATOL, rtol=0)


@PROPERTY_SETTINGS
@given(st.lists(camera_and_crop(), min_size=1, max_size=3))
def test_homography_qr_round_trip_recovers_intrinsics(samples):
    """cameras -> rays -> cameras with unknown K (homography + QR): R, centres and the NDC
    intrinsics (pixels / (min(W, H)/2)) to 1e-5, every ray a RANSAC inlier."""
    cameras, params = batch(samples)
    estimate = rays.rays_to_cameras_homography(
        rays.cameras_to_rays(cameras, params), cameras.image_size, params
    )
    recovered = estimate.cameras
    torch.testing.assert_close(recovered.R, cameras.R, atol=ROUND_TRIP_ATOL, rtol=0)
    torch.testing.assert_close(recovered.centers, cameras.centers, atol=ROUND_TRIP_ATOL, rtol=0)
    for got, want in zip(
        conventions.intrinsics_to_ndc(recovered.K, cameras.image_size),
        conventions.intrinsics_to_ndc(cameras.K, cameras.image_size),
        strict=True,
    ):
        torch.testing.assert_close(got, want, atol=ROUND_TRIP_ATOL, rtol=0)
    assert torch.equal(estimate.fit.num_inliers, estimate.fit.num_points)


@PROPERTY_SETTINGS
@given(st.lists(camera_and_crop(), min_size=1, max_size=3))
def test_rays_are_plucker_and_pass_through_the_camera_centre(samples):
    """Unit directions, d . m = 0, and each ray's line contains the camera centre."""
    cameras, params = batch(samples)
    bundle = rays.cameras_to_rays(cameras, params)
    directions, moments = bundle[..., :3], bundle[..., 3:]
    torch.testing.assert_close(directions.norm(dim=-1), torch.ones(bundle.shape[:-1], dtype=F64))
    torch.testing.assert_close((directions * moments).sum(-1), torch.zeros(bundle.shape[:-1],
                                                                           dtype=F64))
    through_centre = torch.linalg.cross(cameras.centers[:, None, :].expand_as(directions),
                                        directions, dim=-1)
    torch.testing.assert_close(moments, through_centre)
