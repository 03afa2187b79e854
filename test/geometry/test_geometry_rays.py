"""Plücker rays and camera recovery on hand-computed cases (raydiff_ros.geometry.rays)."""

import math

import pytest
import torch

from raydiff_ros.geometry import rays
from raydiff_ros.geometry.camera import Cameras
from raydiff_ros.geometry.checks import DegenerateGeometryError, GeometryInputError

F64 = torch.float64
# Camera looking along world +x: camera x = world +y, camera y (down) = world +z.
LOOK_ALONG_X = [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> torch.Tensor:
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=F64)


def test_identity_camera_central_ray():
    """R = I, centre (1, 2, 3): the principal-point ray is d = (0, 0, 1), m = C x d = (2, -1, 0).
    """
    cameras = Cameras(torch.eye(3, dtype=F64), -torch.tensor([1.0, 2.0, 3.0], dtype=F64),
                      intrinsics(100, 100, 50, 50), (100, 100))
    ray = rays.rays_from_pixels(cameras, torch.tensor([[50.0, 50.0]], dtype=F64))
    torch.testing.assert_close(ray[0], torch.tensor([0.0, 0.0, 1.0, 2.0, -1.0, 0.0], dtype=F64))


def test_rotated_camera_rays_hand_values():
    """Camera looking along world +x (centre at the origin): the centre pixel looks along +x;
    the pixel one focal length to the right looks along (1, 1, 0)/sqrt(2) (image right = +y)."""
    cameras = Cameras(torch.tensor(LOOK_ALONG_X, dtype=F64), torch.zeros(3, dtype=F64),
                      intrinsics(100, 100, 50, 50), (100, 100))
    ray = rays.rays_from_pixels(cameras, torch.tensor([[50.0, 50.0], [150.0, 50.0]], dtype=F64))
    half = 1 / math.sqrt(2)
    torch.testing.assert_close(ray[0, :3], torch.tensor([1.0, 0.0, 0.0], dtype=F64))
    torch.testing.assert_close(ray[1, :3], torch.tensor([half, half, 0.0], dtype=F64))
    torch.testing.assert_close(ray[:, 3:], torch.zeros(2, 3, dtype=F64))


def test_rays_are_unit_with_moment_orthogonal_to_direction():
    translation = torch.tensor([0.3, -1.0, 2.0], dtype=F64)
    cameras = Cameras(torch.tensor(LOOK_ALONG_X, dtype=F64), translation,
                      intrinsics(300, 280, 170, 110), (320, 240))
    bundle = rays.cameras_to_rays(cameras, torch.tensor([0.1, 0.2, 0.8, 4 / 3], dtype=F64))
    assert bundle.shape == (256, 6)
    torch.testing.assert_close(bundle[:, :3].norm(dim=-1), torch.ones(256, dtype=F64))
    torch.testing.assert_close((bundle[:, :3] * bundle[:, 3:]).sum(-1), torch.zeros(256).double())


def test_spatial_layout_round_trip_and_index_order():
    """rays_to_spatial puts ray p = 16 i + j at [..., :, i, j]; rays_from_spatial inverts it."""
    flat = torch.randn(2, 3, 256, 6, generator=torch.Generator().manual_seed(0))
    spatial = rays.rays_to_spatial(flat)
    assert spatial.shape == (2, 3, 6, 16, 16)
    torch.testing.assert_close(spatial[1, 2, :, 4, 9], flat[1, 2, 16 * 4 + 9])
    torch.testing.assert_close(rays.rays_from_spatial(spatial), flat)


def test_intersection_of_crossing_and_skew_lines():
    """Lines along x and y through (1, 2, 3) meet there; skew lines along x at z = 0 and along
    y at z = 2 have their least-squares point midway, (0, 0, 1)."""
    crossing = rays.plucker_rays(
        torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], dtype=F64),
        torch.tensor([[2.0, 0.0, 0.0], [0.0, -1.0, 0.0]], dtype=F64),
    )
    torch.testing.assert_close(rays.intersect_rays(crossing), torch.tensor([1.0, 2, 3]).double())
    skew = rays.plucker_rays(
        torch.tensor([[5.0, 0.0, 0.0], [0.0, -4.0, 2.0]], dtype=F64),
        torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=F64),
    )
    torch.testing.assert_close(rays.intersect_rays(skew), torch.tensor([0.0, 0.0, 1.0]).double())


def test_procrustes_recovers_a_90_degree_rotation():
    rotation = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=F64)
    source = torch.nn.functional.normalize(
        torch.tensor([[1.0, 0.0, 0.2], [0.0, 1.0, 0.5], [0.3, 0.3, 1.0], [-1.0, 0.2, 0.0]]), dim=-1
    ).double()
    torch.testing.assert_close(rays.procrustes_rotation(source, source @ rotation.T), rotation)


def test_qr_decomposition_of_a_hand_built_homography():
    """H = -3 R^T K^-1 (any scale and sign) -> exactly R and K, off-centre principal point."""
    R = torch.tensor(LOOK_ALONG_X, dtype=F64)
    K = intrinsics(500.0, 450.0, 300.0, 180.0)
    recovered_R, recovered_K = rays.decompose_homography_qr(-3 * R.T @ torch.linalg.inv(K))
    torch.testing.assert_close(recovered_R, R)
    torch.testing.assert_close(recovered_K, K)


def test_ql_compat_is_exact_only_for_a_centred_principal_point():
    """H = R_p3d K_ndc^-1: with pp = 0 the QL factors are (R_p3d, 1/f, 0); with pp != 0 the
    rotation is wrong (the documented official quirk)."""
    R = torch.tensor(LOOK_ALONG_X, dtype=F64)
    centred = torch.linalg.inv(intrinsics(2.0, 2.5, 0.0, 0.0))
    factors = rays.decompose_homography_ql_compat(R @ centred)
    torch.testing.assert_close(factors.rotation, R)
    torch.testing.assert_close(factors.inverse_focal_length, torch.tensor([0.5, 0.4]).double())
    torch.testing.assert_close(factors.principal_point, torch.zeros(2, dtype=F64))
    off_centre = torch.linalg.inv(intrinsics(2.0, 2.5, 0.2, -0.1))
    wrong = rays.decompose_homography_ql_compat(R @ off_centre)
    assert float((wrong.rotation - R).abs().max()) > 1e-2


def test_procrustes_recovers_rotated_camera():
    K = intrinsics(320, 300, 150, 130)
    truth = Cameras(torch.tensor(LOOK_ALONG_X, dtype=F64), torch.tensor([0.5, -0.2, 3.0]).double(),
                    K, (320, 240))
    params = torch.tensor([0.05, 0.1, 1.2, 4 / 3], dtype=F64)
    recovered = rays.rays_to_cameras_procrustes(rays.cameras_to_rays(truth, params), K,
                                                (320, 240), params)
    torch.testing.assert_close(recovered.R, truth.R, atol=1e-10, rtol=0)
    torch.testing.assert_close(recovered.t, truth.t, atol=1e-10, rtol=0)


def test_homography_path_on_camera_looking_along_world_x():
    """A camera orthogonal to world z (half its rays near infinity on the world plane z = 1):
    the default fit (mean-direction frame) still recovers R, centre and K."""
    K = intrinsics(320, 300, 150, 130)
    truth = Cameras(torch.tensor(LOOK_ALONG_X, dtype=F64), torch.tensor([0.5, -0.2, 3.0]).double(),
                    K, (320, 240))
    estimate = rays.rays_to_cameras_homography(rays.cameras_to_rays(truth), (320, 240))
    torch.testing.assert_close(estimate.cameras.R, truth.R, atol=1e-9, rtol=0)
    torch.testing.assert_close(estimate.cameras.centers, truth.centers, atol=1e-9, rtol=0)
    torch.testing.assert_close(estimate.cameras.K, K, atol=1e-6, rtol=0)
    assert int(estimate.fit.num_inliers) == int(estimate.fit.num_points) == 256


def parallel_rays() -> torch.Tensor:
    origins = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=F64)
    return rays.plucker_rays(origins, torch.tensor([0.0, 0.0, 1.0], dtype=F64).expand(3, 3))


@pytest.mark.parametrize(
    'call, error, message',
    [
        (lambda: rays.intersect_rays(parallel_rays()), DegenerateGeometryError, 'parallel'),
        (lambda: rays.intersect_rays(parallel_rays()[:1]), GeometryInputError, 'at least 2'),
        (lambda: rays.intersect_rays(torch.full((4, 6), math.nan)), GeometryInputError,
         'non-finite'),
        (lambda: rays.intersect_rays(torch.zeros(4, 6)), GeometryInputError, 'zero direction'),
        (lambda: rays.intersect_rays(torch.ones(4, 5)), GeometryInputError, 'shape'),
        (lambda: rays.plucker_rays(torch.zeros(3), torch.zeros(3)), GeometryInputError, 'zero'),
        (lambda: rays.rays_to_spatial(torch.ones(10, 6)), GeometryInputError, 'square grid'),
        (lambda: rays.rays_from_spatial(torch.ones(5, 4, 4)), GeometryInputError, 'shape'),
        (lambda: rays.rays_to_cameras_procrustes(torch.ones(1, 15, 6), torch.eye(3), (4, 4)),
         GeometryInputError, 'square grid'),
        (lambda: rays.rays_to_cameras_procrustes(parallel_rays()[None, :1].expand(1, 4, 6),
                                                 torch.eye(3), (4, 4)),
         DegenerateGeometryError, 'parallel'),
        (lambda: rays.rays_to_cameras_procrustes(
            rays.plucker_rays(torch.eye(3)[:, None].expand(3, 4, 3) * 0, torch.randn(3, 4, 3)),
            -torch.eye(3), (4, 4)), GeometryInputError, 'positive focal'),
        (lambda: rays.decompose_homography_qr(torch.ones(3, 3)), DegenerateGeometryError,
         'singular'),
        (lambda: rays.decompose_homography_ql_compat(torch.eye(3) * math.inf),
         GeometryInputError, 'non-finite'),
        (lambda: rays.fit_ray_homography(torch.zeros(3, 2), torch.ones(3, 3)),
         DegenerateGeometryError, 'usable'),
        (lambda: rays.fit_ray_homography(torch.zeros(4, 2), torch.ones(5, 3)), GeometryInputError,
         'points'),
        (lambda: rays.HomographyFitConfig(ransac_threshold=0.0), GeometryInputError,
         'ransac_threshold'),
    ],
)
def test_degenerate_input_raises(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_homography_fit_rejects_rays_at_infinity_of_the_world_plane():
    """Official world-frame fit: rays with |d_z| <= 1e-4 are dropped; all dropped -> error."""
    directions = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0],
                               [1.0, -1.0, 0.0], [1.0, 2.0, 0.0]], dtype=F64)
    with pytest.raises(DegenerateGeometryError, match='only 0 rays usable'):
        rays.fit_ray_homography(torch.randn(5, 2).double(), directions,
                                rays.HomographyFitConfig.official())


def round_trip_on(device: torch.device, dtype: torch.dtype) -> tuple[Cameras, Cameras]:
    """Rays of a rotated camera and its Procrustes / homography recoveries on device, dtype."""
    truth = Cameras(torch.tensor(LOOK_ALONG_X), torch.tensor([0.5, -0.2, 3.0]),
                    intrinsics(320, 300, 150, 130), (320, 240)).to(device, dtype)
    params = torch.tensor([0.05, 0.1, 1.2, 4 / 3], device=device, dtype=dtype)
    bundle = rays.cameras_to_rays(truth, params)
    known = rays.rays_to_cameras_procrustes(bundle, truth.K, truth.image_size, params)
    unknown = rays.rays_to_cameras_homography(bundle, truth.image_size, params).cameras
    return known, unknown


def test_results_keep_dtype_and_float32_matches_float64():
    """float32 inputs give float32 cameras that agree with the float64 run to 1e-4."""
    cpu = torch.device('cpu')
    for single, double in zip(round_trip_on(cpu, torch.float32), round_trip_on(cpu, F64),
                              strict=True):
        assert single.R.dtype == single.K.dtype == torch.float32
        torch.testing.assert_close(single.R, double.R.float(), atol=1e-4, rtol=0)
        torch.testing.assert_close(single.centers, double.centers.float(), atol=1e-4, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_gpu_results_match_cpu():
    """The whole chain runs on CUDA tensors and agrees with the CPU (float64) to 1e-9."""
    for gpu, cpu in zip(round_trip_on(torch.device('cuda'), F64),
                        round_trip_on(torch.device('cpu'), F64), strict=True):
        assert gpu.R.device.type == 'cuda'
        torch.testing.assert_close(gpu.R.cpu(), cpu.R, atol=1e-9, rtol=0)
        torch.testing.assert_close(gpu.t.cpu(), cpu.t, atol=1e-9, rtol=0)
        torch.testing.assert_close(gpu.K.cpu(), cpu.K, atol=1e-6, rtol=0)
