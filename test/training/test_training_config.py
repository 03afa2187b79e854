"""The training configuration: YAML parsing, validation messages, model config building."""

from pathlib import Path

import pytest

from raydiff_ros.model.checkpoint import save_model
from raydiff_ros.model.config import BackboneConfig, DenoiserConfig, RayDiffusionConfig
from raydiff_ros.model.network import RayDiffusionModel
from raydiff_ros.training.config import (
    OptimSection,
    TrainConfigError,
    config_from_dict,
    load_train_config,
    save_train_config,
)
from raydiff_ros.training.trainer import build_model_config, lr_factor

REPO_TRAIN_CONFIGS = Path(__file__).resolve().parents[2] / 'config' / 'train'


def test_repository_tiny_config_parses(repo_config_dir):
    config = load_train_config(repo_config_dir / 'tiny_cpu.yaml')
    assert config.variant == 'diffusion' and config.device == 'cpu'
    model = build_model_config(config)
    assert model.backbone.image_size // model.backbone.patch_size == model.denoiser.num_patches
    assert model.denoiser.feature_dim == model.backbone.embed_dim
    assert not model.diffusion.regression


@pytest.mark.parametrize('name', sorted(p.name for p in REPO_TRAIN_CONFIGS.glob('*.yaml')))
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
    ({'optim': {'schedule': 'step'}}, 'optim.schedule'),
    ({'optim': {'final_lr_fraction': 1.5}}, 'final_lr_fraction'),
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


def test_constant_schedule_is_flat_after_the_warm_up():
    optim = OptimSection(iterations=100, warmup_iterations=10, schedule='constant')
    assert lr_factor(optim, 0) == pytest.approx(0.1)
    assert lr_factor(optim, 9) == pytest.approx(1.0)
    assert lr_factor(optim, 50) == lr_factor(optim, 99) == 1.0


def test_cosine_schedule_falls_from_one_to_the_final_fraction():
    optim = OptimSection(iterations=110, warmup_iterations=10, schedule='cosine',
                         final_lr_fraction=0.1)
    assert lr_factor(optim, 4) == pytest.approx(0.5)          # still warming up
    assert lr_factor(optim, 10) == pytest.approx(1.0)         # cosine starts at 1
    assert lr_factor(optim, 60) == pytest.approx(0.55)        # half way: (1 + 0.1) / 2
    assert lr_factor(optim, 110) == pytest.approx(0.1)        # the end
    assert lr_factor(optim, 500) == pytest.approx(0.1)        # past the end: stays there
    values = [lr_factor(optim, step) for step in range(10, 111)]
    assert all(a >= b for a, b in zip(values[:-1], values[1:], strict=True))
