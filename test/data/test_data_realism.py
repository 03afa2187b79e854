"""Photometric variation, photo textures, outward ring rigs and furnished rooms."""

import numpy as np
import pytest

from raydiff_ros.data.assets import MeshLibrary
from raydiff_ros.data.photometric import (
    PhotometricConfig,
    PhotometricParams,
    apply_photometric,
    sample_photometric,
)
from raydiff_ros.data.scene_sampling import (
    RigSceneConfig,
    SceneConfig,
    sample_camera,
    sample_rig_scene,
)
from raydiff_ros.data.textures import photo_texture

GREY = np.full((60, 80, 3), 100, dtype=np.uint8)


def test_gain_scales_the_mean_brightness():
    brighter = apply_photometric(GREY, PhotometricParams(gain=1.5))
    assert brighter.mean() == pytest.approx(150, abs=1)
    darker = apply_photometric(GREY, PhotometricParams(gain=0.5))
    assert darker.mean() == pytest.approx(50, abs=1)


def test_noise_std_is_near_the_configured_one():
    noisy = apply_photometric(GREY, PhotometricParams(read_noise_std=0.04, noise_seed=3))
    assert noisy.astype(float).std() == pytest.approx(0.04 * 255, rel=0.1)
    assert noisy.mean() == pytest.approx(100, abs=1)


def test_sampled_parameters_stay_in_their_ranges():
    config = PhotometricConfig(probability=1.0)
    rng = np.random.default_rng(0)
    for _ in range(50):
        params = sample_photometric(rng, config)
        assert config.gain[0] <= params.gain <= config.gain[1]
        assert config.gamma[0] <= params.gamma <= config.gamma[1]
        assert all(config.white_balance[0] <= g <= config.white_balance[1]
                   for g in params.white_balance)
        assert params.blur_sigma == 0 or config.blur_sigma[0] <= params.blur_sigma
        assert params.read_noise_std <= config.read_noise_std[1]


def test_photo_texture_is_deterministic_and_varied():
    rng = np.random.default_rng(1)
    source = rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)
    first = photo_texture(source, 5, 32)
    assert first.shape == (32, 32, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, photo_texture(source, 5, 32))
    assert not np.array_equal(first, photo_texture(source, 6, 32))


def outward_config(jitter_deg: float = 4.0) -> SceneConfig:
    return SceneConfig(object_scene_probability=0.0, rig_scene=RigSceneConfig(
        outward_probability=1.0, outward_jitter_deg=jitter_deg))


def test_outward_cameras_sit_on_the_mount_and_spread_in_yaw(pybullet_module, tmp_path):
    library = MeshLibrary(tmp_path)
    rng = np.random.default_rng(2)
    config = outward_config(jitter_deg=1.0)
    for _ in range(3):
        scene = sample_rig_scene(rng, library, config)
        layout = scene.layout
        assert layout.kind == 'outward'
        assert 0.05 <= layout.cluster_radius <= 0.3
        cameras = [sample_camera(rng, scene, config, 160, 120, k) for k in range(6)]
        centers = np.array([-c.R.T @ c.t for c in cameras])
        offsets = np.linalg.norm(centers - layout.rig_center, axis=1)
        assert np.all(offsets <= layout.cluster_radius + 1e-9)
        axes = np.array([c.R[2] for c in cameras])  # optical axes in the world
        yaws = np.unwrap(np.arctan2(axes[:, 1], axes[:, 0]))
        steps = np.degrees(np.diff(yaws))
        hfov = np.degrees(2 * np.arctan(80 / cameras[0].K[0, 0]))
        # neighbours overlap by 20-70 % of the field of view (+ 1 deg jitter)
        assert np.all(steps > 0.3 * hfov - 8) and np.all(steps < 0.8 * hfov + 8)
        radial = centers[:, :2] - layout.rig_center[:2]
        assert np.all(np.sum(radial * axes[:, :2], axis=1) > 0)  # looking outwards


def test_rooms_have_walls_on_all_sides_and_furniture(pybullet_module, tmp_path):
    library = MeshLibrary(tmp_path)
    rng = np.random.default_rng(3)
    scenes = [sample_rig_scene(rng, library, outward_config()) for _ in range(2)]
    inward = SceneConfig(object_scene_probability=0.0, rig_scene=RigSceneConfig(
        outward_probability=0.0, room_probability=1.0))
    scenes += [sample_rig_scene(rng, library, inward) for _ in range(2)]
    for scene in scenes:
        d = scene.room.wall_distance
        assert d is not None and scene.room.floor_half_size >= d  # the four walls at |x|,|y|=d
        furniture = [o for o in scene.objects if o.mesh.source == 'box']
        assert len(furniture) >= 3
        for box in furniture:  # inside the room, on the floor
            corners = np.abs(box.position[:2]) + np.abs(box.rotation[:2, :2]) @ box.scale[:2]
            assert np.all(corners <= d + 1e-6)
            assert box.position[2] == pytest.approx(box.scale[2])
