"""The training configuration: YAML parsing, validation messages, model config building."""

import pytest

from raydiff_ros.model.checkpoint import save_model
from raydiff_ros.model.config import BackboneConfig, DenoiserConfig, RayDiffusionConfig
from raydiff_ros.model.network import RayDiffusionModel
from raydiff_ros.training.config import (
    TrainConfigError,
    config_from_dict,
    load_train_config,
    save_train_config,
)
from raydiff_ros.training.trainer import build_model_config


def test_repository_tiny_config_parses(repo_config_dir):
    config = load_train_config(repo_config_dir / 'tiny_cpu.yaml')
    assert config.variant == 'diffusion' and config.device == 'cpu'
    model = build_model_config(config)
    assert model.backbone.image_size // model.backbone.patch_size == model.denoiser.num_patches
    assert model.denoiser.feature_dim == model.backbone.embed_dim
    assert not model.diffusion.regression


@pytest.mark.parametrize('name', ['tiny_cpu.yaml', 'small_gpu.yaml', 'finetune_official.yaml'])
def test_every_repository_config_parses(repo_config_dir, name):
    config = load_train_config(repo_config_dir / name)
    assert config.data.train and config.output_dir.startswith('build/')


def test_round_trip_through_yaml(tiny_train_dict, tmp_path):
    config = config_from_dict(tiny_train_dict())
    save_train_config(config, tmp_path / 'c.yaml')
    assert load_train_config(tmp_path / 'c.yaml') == config
    assert isinstance(config.data.train, tuple)


@pytest.mark.parametrize('change, message', [
    ({'colour': 'blue'}, 'unknown key'),
    ({'data': {'train': [], 'shuffle': True}}, 'unknown key'),
    ({'optim': {'lr': 'fast'}}, 'optim.lr must be a number'),
    ({'optim': {'iterations': 2.5}}, 'optim.iterations must be an integer'),
    ({'data': {'train': ['x'], 'min_views': 5, 'max_views': 3}}, 'min_views'),
    ({'variant': 'gan'}, 'variant'),
    ({'optim': {'amp': 'fp8'}}, 'optim.amp'),
    ({'model': {'overrides': {'decoder': {}}}}, 'unknown section'),
    ({'data': {'train': []}}, 'data.train'),
    ({'output_dir': ''}, 'output_dir'),
    ({'model': {'init_from': 'a', 'backbone_from': 'b'}}, 'drop model.backbone_from'),
])
def test_bad_values_name_the_key(tiny_train_dict, change, message):
    with pytest.raises(TrainConfigError, match=message):
        config_from_dict(tiny_train_dict(**change))


def test_bad_yaml_files(tmp_path):
    (tmp_path / 'bad.yaml').write_text('output_dir: [unclosed\n')
    with pytest.raises(TrainConfigError, match='not valid YAML'):
        load_train_config(tmp_path / 'bad.yaml')
    with pytest.raises(TrainConfigError, match='cannot read'):
        load_train_config(tmp_path / 'missing.yaml')


def test_variant_and_init_from_shape_the_model_config(tiny_train_dict, tmp_path):
    regression = build_model_config(config_from_dict(tiny_train_dict(variant='regression')))
    assert regression.diffusion.regression
    folder = tmp_path / 'imported'
    imported = RayDiffusionConfig(
        backbone=BackboneConfig(image_size=28, embed_dim=16, depth=1, num_heads=2,
                                pos_embed_grid=2),
        denoiser=DenoiserConfig(depth=1, hidden_size=16, num_heads=2, num_patches=2,
                                feature_dim=16))
    save_model(RayDiffusionModel(imported), folder)
    data = tiny_train_dict(model={'init_from': str(folder), 'overrides': {
        'diffusion': {'sampling_stride': 10}}})
    config = build_model_config(config_from_dict(data))
    # the imported folder's config is the base; overrides and the variant apply on top
    assert config.backbone == imported.backbone and config.denoiser == imported.denoiser
    assert config.diffusion.sampling_stride == 10 and not config.diffusion.regression
