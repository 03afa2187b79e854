"""The synthetic generator: determinism, projection geometry, visibility, resume, CLI."""

import hashlib

import numpy as np
from progress_recorder import RecordingProgress
import pytest

from raydiff_ros.cli.render import main as render_main
from raydiff_ros.data.assets import MeshLibrary, MeshRef
from raydiff_ros.data.camera_models import (
    intrinsics_from_vertical_fov,
    look_at_rotation,
    project_points,
)
from raydiff_ros.data.generate import (
    GeneratorConfig,
    focus_bbox,
    generate_dataset,
    render_view_set,
)
from raydiff_ros.data.renderer import PyBulletRenderer
from raydiff_ros.data.scene_sampling import (
    CameraSpec,
    LightSpec,
    ObjectSpec,
    OrbitLayout,
    RoomSpec,
    SceneConfig,
    SceneSpec,
    TextureSpec,
    sample_scene,
)
from raydiff_ros.data.shards import read_shard, read_view_set

SPHERE_RADIUS = 0.1
SPHERE_CENTER = np.array([0.2, -0.1, SPHERE_RADIUS])
PROJECTION_IMAGE = (160, 120)
MAX_CENTROID_ERROR_PX = 1.0


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, pybullet_module):
    config = GeneratorConfig(image_width=48, image_height=36, views_per_set=3)
    digests = {}
    for name, seed in (('a', 11), ('b', 11), ('c', 12)):
        generate_dataset(tmp_path / name, 2, seed, config, sets_per_shard=2)
        digests[name] = sha256(tmp_path / name / 'shard_00000.npz')
    assert digests['a'] == digests['b']
    assert digests['a'] != digests['c']


def test_a_set_does_not_depend_on_sharding(tiny_dataset_dir, tiny_generator_config, tiny_spec,
                                           tmp_path):
    # the last set lives in the last shard; rendering it alone gives the same arrays
    last = tiny_spec.num_sets - 1
    shard = tiny_dataset_dir / f'shard_{last // tiny_spec.sets_per_shard:05d}.npz'
    stored = read_view_set(shard, last % tiny_spec.sets_per_shard)
    with PyBulletRenderer(MeshLibrary(tmp_path), texture_size=128) as renderer:
        alone = render_view_set(tiny_spec.seed, last, tiny_generator_config, renderer)
    for name in ('images', 'masks', 'K', 'R', 't', 'bboxes'):
        np.testing.assert_array_equal(getattr(alone, name), getattr(stored, name))
    assert stored.metadata['set_index'] == last


def test_views_show_their_objects_and_boxes_match_masks(tiny_dataset_dir,
                                                       tiny_generator_config):
    min_pixels = tiny_generator_config.min_visible_fraction * 64 * 48
    for shard in sorted(tiny_dataset_dir.glob('shard_*.npz')):
        for record in read_shard(shard):
            labels = tuple(record.metadata['bbox_labels'])
            for view in range(record.num_views):
                assert np.isin(record.masks[view], labels).sum() >= min_pixels
                np.testing.assert_array_equal(record.bboxes[view],
                                              focus_bbox(record.masks[view], labels))
            assert record.scene_type in ('object', 'rig')
            assert record.images.std() > 0


def test_scene_types_follow_the_probability(pybullet_module, tmp_path):
    library = MeshLibrary(tmp_path)
    rng = np.random.default_rng(0)
    objects = [sample_scene(rng, library, SceneConfig(object_scene_probability=1.0))
               for _ in range(3)]
    rigs = [sample_scene(rng, library, SceneConfig(object_scene_probability=0.0))
            for _ in range(3)]
    assert {s.scene_type for s in objects} == {'object'}
    assert {s.scene_type for s in rigs} == {'rig'}
    assert all(s.bbox_labels == (1,) for s in objects)
    assert all(len(s.bbox_labels) == len(s.objects) >= 1 for s in rigs)
    for scene in objects + rigs:  # every object rests on its floor or table
        for spec in scene.objects:
            vertices = (library.mesh(spec.mesh).vertices * spec.scale) @ spec.rotation.T
            floor = scene.room.table.scale[2] * 2 if scene.room.table is not None else 0.0
            assert (vertices[:, 2] + spec.position[2]).min() == pytest.approx(floor, abs=1e-9)


def sphere_scene() -> SceneSpec:
    sphere = ObjectSpec(
        mesh=MeshRef('superquadric', 'sphere', (1.0, 1.0, 1.0, 1.0, 1.0)),
        texture=TextureSpec('checker', seed=1), rgba=(1.0, 1.0, 1.0, 1.0),
        scale=np.full(3, SPHERE_RADIUS), rotation=np.eye(3), position=SPHERE_CENTER, label=1)
    room = RoomSpec(floor_half_size=5.0, floor_texture=TextureSpec('noise', seed=2),
                    floor_repeats=2.0, floor_rgba=(1.0, 1.0, 1.0, 1.0), wall_distance=None,
                    wall_height=1.0, wall_texture=TextureSpec('dots', seed=3), wall_repeats=1.0)
    light = LightSpec(direction=(0.3, 0.2, 1.0), color=(1.0, 1.0, 1.0), ambient=0.5,
                      diffuse=0.5, specular=0.1, shadow=False, background_rgb=(0, 0, 0))
    layout = OrbitLayout(target=SPHERE_CENTER, radius=SPHERE_RADIUS, base_distance=1.0,
                         vertical_fov_deg=50.0, floor_clearance=0.01)
    return SceneSpec('object', (sphere,), room, light, layout, (1,))


def test_projected_sphere_centre_is_the_centroid_of_its_mask(pybullet_module, tmp_path):
    width, height = PROJECTION_IMAGE
    rng = np.random.default_rng(5)
    with PyBulletRenderer(MeshLibrary(tmp_path), texture_size=32) as renderer:
        renderer.build(sphere_scene())
        for _ in range(6):
            azimuth, elevation = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 1.0)
            distance = rng.uniform(0.8, 1.5)
            center = SPHERE_CENTER + distance * np.array([
                np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                np.sin(elevation)])
            target = SPHERE_CENTER + rng.normal(0, 0.1, 3)  # sphere off the optical axis
            K = intrinsics_from_vertical_fov(rng.uniform(40, 70), width, height,
                                             principal_offset=rng.uniform(-8, 8, 2))
            R = look_at_rotation(center, target, roll_rad=rng.normal(0, 0.2))
            camera = CameraSpec(K=K, R=R, t=-R @ center)
            view = renderer.render(camera, width, height)
            rows, cols = np.nonzero(view.labels == 1)
            assert rows.size > 100
            centroid = np.array([cols.mean() + 0.5, rows.mean() + 0.5])
            projected = project_points(K, R, camera.t, SPHERE_CENTER[None])[0]
            assert np.linalg.norm(centroid - projected) < MAX_CENTROID_ERROR_PX


def test_resume_keeps_matching_shards(tiny_dataset_dir, tiny_generator_config, tiny_spec):
    before = {path.name: sha256(path) for path in tiny_dataset_dir.glob('shard_*.npz')}
    summary = generate_dataset(tiny_dataset_dir, tiny_spec.num_sets, tiny_spec.seed,
                               tiny_generator_config, sets_per_shard=tiny_spec.sets_per_shard)
    assert (summary.shards_written, summary.shards_kept) == (0, len(before))
    assert {path.name: sha256(path) for path in tiny_dataset_dir.glob('shard_*.npz')} == before


def test_progress_counts_rendered_and_kept_sets(tmp_path, pybullet_module):
    config = GeneratorConfig(image_width=40, image_height=30, views_per_set=2)
    shards, progress = [], RecordingProgress()
    generate_dataset(tmp_path, 3, 5, config, sets_per_shard=2, on_shard=shards.append,
                     progress=progress)
    [bar] = progress.bars
    assert (bar.description, bar.total, bar.unit, bar.initial) == ('render', 3, 'set', 0)
    assert bar.updates == [2, 1] and bar.closed
    assert [shard['num_sets'] for shard in shards] == [2, 1]
    resumed = RecordingProgress()
    generate_dataset(tmp_path, 3, 5, config, sets_per_shard=2, progress=resumed)
    assert (resumed.bars[0].initial, resumed.bars[0].updates) == (3, [])


def test_cli_renders_and_rejects_bad_arguments(tmp_path, pybullet_module, capsys):
    out = tmp_path / 'cli'
    code = render_main(['--num-sets', '2', '--views-per-set', '2', '--seed', '1', '--workers',
                        '1', '--image-size', '40x30', '--sets-per-shard', '1', '--out',
                        str(out)])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ['index.json', 'shard_00000.npz',
                                                     'shard_00001.npz']
    assert read_view_set(out / 'shard_00001.npz', 0).images.shape == (2, 30, 40, 3)
    captured = capsys.readouterr()
    assert '2 view sets' in captured.out and 'shard_00001.npz (1 sets' in captured.out
    assert captured.err == ''  # no progress bar when stderr is not a terminal
    assert render_main(['--num-sets', '0', '--out', str(out)]) == 2
    assert render_main(['--num-sets', '1', '--image-size', 'big', '--out', str(out)]) == 2
    assert render_main(['--num-sets', '1', '--views-per-set', '1', '--out', str(out)]) == 2
    assert render_main(['--help']) == 0
