"""Relocalization against a synthetic mapped trajectory with a similarity-transformed estimate.

The map: cameras on an arc of radius 2 m around a target, looking at it. The "estimate" of a
relocalization view set (query + stored keyframes) is expressed in another world frame (random
rotation and translation) at another scale (0.37 units per metre), optionally with noise per
sample: rotations perturbed by ``rotation_noise_deg`` about random axes and centres moved by
``center_noise_m`` (metres before scaling) per axis.
"""

import numpy as np
import pytest

from raydiff_ros.estimation import EstimationResult
from raydiff_ros.geometry.transforms import (
    invert_transforms,
    make_transforms,
    rotation_angle,
    rotation_exp,
)
from raydiff_ros.pipeline.relocalization import (
    RelocalizationConfig,
    RelocalizationError,
    minimal_rotation,
    relocalize,
)

TARGET = np.array([0.0, 0.0, 0.5])
GAUGE_SCALE = 0.37


def _map_pose(poses, angle_deg, height=1.5, radius=2.0):
    angle = np.radians(angle_deg)
    center = np.array([radius * np.cos(angle), radius * np.sin(angle), height])
    return poses.look_at(center, TARGET)


def _estimate(map_T_cameras, rng, num_samples=1, rotation_noise_deg=0.0, center_noise_m=0.0):
    """(S, N, 4, 4) ``reference_T_camera`` of a noisy, similarity-transformed estimate."""
    gauge = rotation_exp(rng.normal(size=3))
    offset = rng.normal(size=3)
    samples_R, samples_t = [], []
    for _ in range(num_samples):
        axes = rng.normal(size=(len(map_T_cameras), 3))
        axes /= np.linalg.norm(axes, axis=1, keepdims=True)
        noise = rotation_exp(axes * np.radians(rotation_noise_deg))
        world_T_cameras = []
        for map_T_camera, rotation_noise in zip(map_T_cameras, noise, strict=True):
            center = map_T_camera[:3, 3] + rng.normal(scale=center_noise_m, size=3)
            rotation = map_T_camera[:3, :3] @ rotation_noise
            world_T_cameras.append(
                make_transforms(gauge @ rotation, GAUGE_SCALE * gauge @ center + offset)
            )
        cameras_T_world = invert_transforms(np.stack(world_T_cameras))
        samples_R.append(cameras_T_world[:, :3, :3])
        samples_t.append(cameras_T_world[:, :3, 3])
    return EstimationResult.from_world_to_camera(
        np.stack(samples_R), np.stack(samples_t)).samples_reference_T_camera


@pytest.fixture
def scene(poses):
    """Map poses: the query (view 0, at 50 deg, lower) and five stored keyframes."""
    query = _map_pose(poses, 50.0, height=1.2)
    stored = [_map_pose(poses, a, height=1.5 + 0.1 * i) for i, a in enumerate(range(0, 100, 20))]
    return query, stored


def _errors(result, map_T_query):
    position = np.linalg.norm(result.map_T_query[:3, 3] - map_T_query[:3, 3])
    angle = np.degrees(rotation_angle(result.map_T_query[:3, :3] @ map_T_query[:3, :3].T))
    return position, angle


def test_an_exact_estimate_recovers_the_query_pose_and_the_scale(scene, rng):
    query, stored = scene
    estimate = _estimate([query] + stored, rng)
    result = relocalize(estimate, [None] + stored)
    np.testing.assert_allclose(result.map_T_query, query, atol=1e-9)
    np.testing.assert_allclose(result.scales, [1.0 / GAUGE_SCALE], rtol=1e-9)
    assert result.residual_rms_m < 1e-9 and not result.collinear
    assert result.num_known_poses == 5
    # One sample, zero residual: exactly the floors.
    config = RelocalizationConfig()
    np.testing.assert_allclose(result.covariance, np.diag(config.variance_floors), atol=1e-12)
    np.testing.assert_allclose(result.map_T_cameras[1:], np.stack(stored), atol=1e-9)


def test_a_noisy_estimate_is_within_the_stated_tolerance(scene, rng):
    """Noise 2 deg and 2 cm per camera, 8 samples: the query within 10 cm and 3 deg."""
    query, stored = scene
    estimate = _estimate([query] + stored, rng, num_samples=8, rotation_noise_deg=2.0,
                         center_noise_m=0.02)
    result = relocalize(estimate, [None] + stored)
    position_error, angle_error = _errors(result, query)
    assert position_error < 0.10 and angle_error < 3.0
    assert 0.0 < result.residual_rms_m < 0.1
    assert 0.0 < np.degrees(result.rotation_residual_rms_rad) < 5.0
    covariance = result.covariance
    np.testing.assert_allclose(covariance, covariance.T, atol=1e-15)
    assert np.all(np.linalg.eigvalsh(covariance) > 0.0)
    assert np.all(np.diag(covariance) >= RelocalizationConfig().variance_floors)


def test_large_noise_raises_the_covariance_above_the_floors(scene, rng):
    query, stored = scene
    estimate = _estimate([query] + stored, rng, num_samples=16, rotation_noise_deg=6.0,
                         center_noise_m=0.15)
    result = relocalize(estimate, [None] + stored)
    floors = RelocalizationConfig().variance_floors
    assert np.all(np.diag(result.covariance)[:3] > floors[:3])
    assert np.all(np.diag(result.covariance)[3:] > floors[3:])
    # The actual error stays within 3 standard deviations per axis.
    position_error = result.map_T_query[:3, 3] - query[:3, 3]
    assert np.all(np.abs(position_error) < 3.0 * np.sqrt(np.diag(result.covariance)[:3]))


def test_two_stored_poses_use_the_orientations_for_the_rotation_about_their_line(scene, rng):
    query, stored = scene
    two = stored[1:3]
    estimate = _estimate([query] + two, rng)
    result = relocalize(estimate, [None] + two)
    assert result.collinear and result.num_known_poses == 2
    np.testing.assert_allclose(result.map_T_query, query, atol=1e-9)


def test_collinear_stored_poses_are_handled(poses, rng):
    query = poses.look_at(np.array([1.0, -2.0, 1.0]), TARGET)
    stored = [poses.look_at(np.array([x, 2.0, 1.0]), TARGET) for x in (-1.0, 0.0, 1.0)]
    estimate = _estimate([query] + stored, rng, num_samples=4, rotation_noise_deg=0.5,
                         center_noise_m=0.005)
    result = relocalize(estimate, [None] + stored)
    assert result.collinear
    position_error, angle_error = _errors(result, query)
    assert position_error < 0.05 and angle_error < 1.0


def test_the_query_map_pose_is_ignored_and_a_later_query_index_works(scene, rng):
    query, stored = scene
    views = stored[:2] + [query] + stored[2:]
    estimate = _estimate(views, rng)
    wrong = np.eye(4)
    result = relocalize(estimate, stored[:2] + [wrong] + stored[2:], query_index=2)
    np.testing.assert_allclose(result.map_T_query, query, atol=1e-9)


def test_refusals(scene, rng):
    query, stored = scene
    estimate = _estimate([query] + stored[:3], rng)
    with pytest.raises(RelocalizationError, match='at least 2'):
        relocalize(estimate, [None, stored[0], None, None])
    same_place = [stored[0], stored[0] @ make_transforms(rotation_exp([0, 0.3, 0]), np.zeros(3))]
    with pytest.raises(RelocalizationError, match='degenerate'):
        relocalize(estimate[:, :3], [None] + same_place)
    collapsed = estimate.copy()
    collapsed[:, 1:, :3, 3] = 0.5
    with pytest.raises(RelocalizationError, match='coincident'):
        relocalize(collapsed, [None] + stored[:3])
    # Three stored positions always fit a mirrored triangle (a flip), but the orientations
    # then disagree by 180 degrees.
    with pytest.raises(RelocalizationError, match='orientation residual'):
        relocalize(estimate, [None, stored[2], stored[1], stored[0]])
    # Five non-coplanar stored positions with two swapped: the positions disagree.
    estimate = _estimate([query] + stored, rng)
    with pytest.raises(RelocalizationError, match='RMS residual'):
        relocalize(estimate, [None, stored[4]] + stored[1:4] + [stored[0]])
    with pytest.raises(RelocalizationError, match='map poses for'):
        relocalize(_estimate([query] + stored[:3], rng), [None] + stored[:2])
    with pytest.raises(RelocalizationError, match='relocalization_min_map_extent_m'):
        RelocalizationConfig(relocalization_min_map_extent_m=0.0)


def test_minimal_rotation_maps_a_onto_b(rng):
    for a, b in [(rng.normal(size=3), rng.normal(size=3)), (np.array([1.0, 0, 0]),) * 2,
                 (np.array([0, 0, 1.0]), np.array([0, 0, -1.0]))]:
        R = minimal_rotation(a, b)
        np.testing.assert_allclose(R @ (a / np.linalg.norm(a)), b / np.linalg.norm(b),
                                   atol=1e-12)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
