"""Fixtures of the training tests: tiny rendered shards and a tiny training configuration."""

from pathlib import Path
from types import SimpleNamespace

import pytest

TRAIN_SETS = 4
VAL_SETS = 2
VIEWS = 4
IMAGE_SIZE = (48, 36)
TINY_MODEL_OVERRIDES = {
    'backbone': {'image_size': 56, 'embed_dim': 32, 'depth': 1, 'num_heads': 2,
                 'pos_embed_grid': 4},
    'denoiser': {'depth': 1, 'hidden_size': 32, 'num_heads': 2, 'num_patches': 4,
                 'feature_dim': 32, 'max_num_images': 8},
    'diffusion': {'sampling_stride': 10},
}


@pytest.fixture(scope='session')
def training_shards(tmp_path_factory) -> SimpleNamespace:
    """Rendered train (4 sets) and validation (2 sets) folders of 4 views, 48 x 36 pixels."""
    pytest.importorskip('pybullet', reason='pybullet (pip install pybullet==3.2.7) renders the '
                        'training data of these tests')
    from raydiff_ros.data.generate import GeneratorConfig, generate_dataset
    root = tmp_path_factory.mktemp('training_shards')
    config = GeneratorConfig(image_width=IMAGE_SIZE[0], image_height=IMAGE_SIZE[1],
                             views_per_set=VIEWS)
    generate_dataset(root / 'train', TRAIN_SETS, 21, config, sets_per_shard=2)
    generate_dataset(root / 'val', VAL_SETS, 22, config, sets_per_shard=2)
    return SimpleNamespace(train=root / 'train', val=root / 'val', views=VIEWS)


@pytest.fixture
def tiny_train_dict(training_shards, tmp_path):
    """make(**top_level_overrides) -> a training config dict for the tiny model."""
    def make(**overrides) -> dict:
        config = {
            'output_dir': str(tmp_path / 'run'),
            'seed': 3,
            'device': 'cpu',
            'log_interval': 2,
            'checkpoint_interval': 3,
            'keep_checkpoints': 2,
            'model': {'preset': 'small', 'train_backbone': True,
                      'overrides': {k: dict(v) for k, v in TINY_MODEL_OVERRIDES.items()}},
            'data': {'train': [str(training_shards.train)], 'val': [str(training_shards.val)],
                     'views_per_sample': VIEWS, 'min_views': 2, 'max_views': 3},
            'optim': {'iterations': 6, 'batch_size': 2, 'lr': 1e-3, 'warmup_iterations': 2},
            'validation': {'interval': 3, 'num_sets': 1, 'num_views': 2},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
        return config
    return make


@pytest.fixture(scope='session')
def repo_config_dir(repo_root) -> Path:
    return repo_root / 'config' / 'train'


@pytest.fixture(scope='session')
def tiny_model_config():
    """The tiny model of these tests as a RayDiffusionConfig."""
    from raydiff_ros.model.config import preset, with_overrides
    return with_overrides(preset('small'), **TINY_MODEL_OVERRIDES)
