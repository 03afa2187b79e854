"""The training dataset: sample shapes, target rays that give back the true cameras, crops."""

import numpy as np
import pytest
import torch

from raydiff_ros.data.shards import ShardError
from raydiff_ros.data.training_samples import (
    SampleConfig,
    SyntheticViewSetDataset,
    index_view_sets,
    jittered_crop_box,
    split_entries,
    truncate_views,
)
from raydiff_ros.geometry.crop import crop_parameters
from raydiff_ros.geometry.metrics import relative_rotation_errors_deg
from raydiff_ros.geometry.rays import rays_from_spatial, rays_to_cameras_procrustes
from raydiff_ros.geometry.transforms import camera_centers

IMAGE_SIZE = 56
PATCHES = 4
RECOVERY_ATOL = 1e-4


@pytest.fixture(scope='module')
def dataset(tiny_dataset_dir) -> SyntheticViewSetDataset:
    config = SampleConfig(image_size=IMAGE_SIZE, num_patches=PATCHES, views_per_sample=3)
    return SyntheticViewSetDataset(index_view_sets([tiny_dataset_dir]), config)


def test_index_lists_every_view_set(tiny_dataset_dir, tiny_spec):
    entries = index_view_sets([tiny_dataset_dir])
    assert len(entries) == tiny_spec.num_sets
    assert all(entry.num_views == tiny_spec.views for entry in entries)
    assert [entry.index for entry in entries] == [0, 1] * (tiny_spec.num_sets // 2)
    single = index_view_sets([tiny_dataset_dir / 'shard_00000.npz'])
    assert len(single) == tiny_spec.sets_per_shard
    train, held_out = split_entries(entries, 1)
    assert len(train) == tiny_spec.num_sets - 1 and held_out == entries[-1:]
    with pytest.raises(ShardError, match='does not exist'):
        index_view_sets([tiny_dataset_dir / 'nothing'])


def test_sample_shapes_and_ranges(dataset):
    sample = dataset[0]
    expected = {'images': (3, 3, IMAGE_SIZE, IMAGE_SIZE), 'rays': (3, 6, PATCHES, PATCHES),
                'ndc': (3, 2, PATCHES, PATCHES), 'crop_params': (3, 4), 'crop_boxes': (3, 4),
                'R': (3, 3, 3), 't': (3, 3), 'K': (3, 3, 3), 'image_size': (3, 2)}
    assert {key: tuple(sample[key].shape) for key in expected} == expected
    assert sample['images'].min() >= -1 and sample['images'].max() <= 1
    directions = sample['rays'][:, :3]
    torch.testing.assert_close(directions.norm(dim=1), torch.ones(3, PATCHES, PATCHES))
    assert float((directions * sample['rays'][:, 3:]).sum(dim=1).abs().max()) < 1e-5


def test_target_rays_give_back_the_true_cameras(dataset):
    for index in range(len(dataset)):
        sample = dataset[index]
        cameras = rays_to_cameras_procrustes(
            rays_from_spatial(sample['rays'].double()), sample['K'].double(),
            sample['image_size'].double(), sample['crop_params'].double())
        np.testing.assert_allclose(cameras.R.numpy(), sample['R'].double().numpy(),
                                   atol=RECOVERY_ATOL)
        np.testing.assert_allclose(cameras.t.numpy(), sample['t'].double().numpy(),
                                   atol=RECOVERY_ATOL)


def test_cameras_are_normalised_and_equal_the_stored_ones_up_to_a_similarity(dataset):
    key = (1, 99)
    sample = dataset[key]
    R, t = sample['R'].double().numpy(), sample['t'].double().numpy()
    np.testing.assert_allclose(R[0], np.diag([-1.0, -1.0, 1.0]), atol=1e-6)
    assert np.linalg.norm(camera_centers(R[:1], t[:1])) == pytest.approx(1.0, abs=1e-6)
    # the views come from the stored set: relative rotations match for some view choice
    record = dataset.view_set(1)
    rng = np.random.default_rng(np.random.SeedSequence([99, 1]))
    views = rng.permutation(record.num_views)[:3]
    errors = relative_rotation_errors_deg(R, record.R[views])
    # samples hold float32 rotations and the error is an arccos near 1: its resolution is
    # about sqrt(2 * 2**-24) rad = 0.02 deg, so a tighter bound depends on the data drawn
    assert errors.max() < 0.05


def test_samples_are_reproducible_and_seed_dependent(dataset):
    first, again, other = dataset[(2, 5)], dataset[(2, 5)], dataset[(2, 6)]
    torch.testing.assert_close(first['images'], again['images'])
    torch.testing.assert_close(first['rays'], again['rays'])
    assert not torch.equal(first['crop_boxes'], other['crop_boxes'])


def test_crops_follow_the_scene_type(dataset):
    fixed = SyntheticViewSetDataset(dataset.entries, SampleConfig(
        image_size=IMAGE_SIZE, num_patches=PATCHES, views_per_sample=2, augment=False,
        shuffle_views=False))
    for index in range(len(fixed)):
        record = fixed.view_set(index)
        boxes = fixed[index]['crop_boxes'].numpy()
        width, height = record.image_size
        if record.scene_type == 'object':
            expected = jittered_crop_box(record.bboxes[0], 1.15, np.zeros(2))
        else:
            expected = jittered_crop_box(np.array([0.0, 0.0, width, height]), 1.0, np.zeros(2))
        np.testing.assert_array_equal(boxes[0], expected)


def test_jittered_crop_box_hand_computed():
    # bbox 40 x 20 -> square [10, 10, 50, 50]; shift (0.05, -0.05) * 40 = (2, -2); side x 1.1
    box = jittered_crop_box(np.array([10.0, 20.0, 50.0, 40.0]), 1.1, np.array([0.05, -0.05]))
    np.testing.assert_array_equal(box, [10, 6, 54, 50])
    assert box.dtype == np.int64


def test_training_crop_parameters_match_the_official_fixture(shared_dir):
    fixture = np.load(shared_dir / 'reference' / 'raydiffusion_equivalence' / 'fixture.npz')
    params = crop_parameters(torch.from_numpy(fixture['crop_boxes_xyxy']).double(),
                             torch.from_numpy(fixture['image_sizes_wh']).double())
    np.testing.assert_allclose(params.numpy(), fixture['crop_params_trainformula'], atol=1e-6)


def test_truncate_views_keeps_the_first_views_of_per_view_tensors(dataset):
    batch = torch.utils.data.default_collate([dataset[0], dataset[1]])
    short = truncate_views(batch, 2)
    assert short['images'].shape[:2] == (2, 2) and short['rays'].shape[:2] == (2, 2)
    torch.testing.assert_close(short['R'], batch['R'][:, :2])
    assert torch.equal(short['index'], batch['index'])
    with pytest.raises(ValueError, match='at least 2'):
        truncate_views(batch, 1)


def test_sample_config_validation():
    with pytest.raises(ValueError, match='crop_mode'):
        SampleConfig(crop_mode='center')
    with pytest.raises(ValueError, match='views_per_sample'):
        SampleConfig(views_per_sample=1)
    with pytest.raises(ValueError, match='first_camera_frame'):
        SampleConfig(first_camera_frame='blender')
