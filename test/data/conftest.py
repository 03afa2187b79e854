"""Fixtures of the data tests: a tiny rendered dataset (needs pybullet) and camera helpers."""

from pathlib import Path
from types import SimpleNamespace

import pytest

TINY_SEED = 7
TINY_NUM_SETS = 4
TINY_VIEWS = 4
TINY_IMAGE_SIZE = (64, 48)
TINY_SETS_PER_SHARD = 2


@pytest.fixture(scope='session')
def pybullet_module():
    """The pybullet module, or a skip when it is not installed."""
    return pytest.importorskip('pybullet', reason='pybullet (pip install pybullet==3.2.7) is '
                               'needed to render synthetic data')


@pytest.fixture(scope='session')
def tiny_spec() -> SimpleNamespace:
    """Settings of ``tiny_dataset_dir`` (conftest modules are not importable in importlib mode)."""
    return SimpleNamespace(seed=TINY_SEED, num_sets=TINY_NUM_SETS, views=TINY_VIEWS,
                           image_size=TINY_IMAGE_SIZE, sets_per_shard=TINY_SETS_PER_SHARD)


@pytest.fixture(scope='session')
def tiny_generator_config():
    from raydiff_ros.data.generate import GeneratorConfig
    return GeneratorConfig(image_width=TINY_IMAGE_SIZE[0], image_height=TINY_IMAGE_SIZE[1],
                           views_per_set=TINY_VIEWS)


@pytest.fixture(scope='session')
def tiny_dataset_dir(tmp_path_factory, pybullet_module, tiny_generator_config) -> Path:
    """A rendered folder: 4 view sets (object and rig scenes) of 4 views, 64 x 48, 2 shards."""
    from raydiff_ros.data.generate import generate_dataset
    out = tmp_path_factory.mktemp('tiny_synthetic')
    generate_dataset(out, TINY_NUM_SETS, TINY_SEED, tiny_generator_config,
                     sets_per_shard=TINY_SETS_PER_SHARD, workers=1)
    return out
