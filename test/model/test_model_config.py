"""Model configuration: presets, dict/YAML round trip, validation, official hydra config."""

from __future__ import annotations

import pytest
import torch
import yaml

from raydiff_ros.model.checkpoint import CheckpointError, read_official_config
from raydiff_ros.model.config import (
    PRESETS,
    ConfigError,
    DenoiserConfig,
    DiffusionConfig,
    RayDiffusionConfig,
    config_from_dict,
    load_config_yaml,
    preset,
    save_config_yaml,
    with_overrides,
)
from raydiff_ros.model.network import RayDiffusionModel

HYDRA_CONFIG = {
    'training': {'regression': False, 'lr': 1e-4, 'job_key': ''},
    'model': {'pred_x0': True, 'model_type': 'dit', 'num_patches_x': 16, 'num_patches_y': 16,
              'depth': 16, 'num_images': 8, 'feature_extractor': 'dino', 'append_ndc': True},
    'noise_scheduler': {'type': 'linear', 'max_timesteps': 100, 'beta_start': 0.0001,
                        'beta_end': 0.2},
    'hydra': {'run': {'dir': './output/${now:%m%d_%H%M%S_%f}${training.job_key}'}},
}


def count_parameters(config: RayDiffusionConfig, prefix: str) -> int:
    with torch.device('meta'):
        model = RayDiffusionModel(config)
    return sum(p.numel() for name, p in model.named_parameters() if name.startswith(prefix))


def test_official_preset_matches_the_released_model():
    config = preset('official')
    assert (config.backbone.embed_dim, config.backbone.depth, config.backbone.num_heads,
            config.backbone.mlp_hidden_dim, config.backbone.pos_embed_grid) == (384, 12, 6,
                                                                                1536, 37)
    assert (config.denoiser.depth, config.denoiser.hidden_size, config.denoiser.num_heads,
            config.denoiser.mlp_hidden_dim, config.denoiser.in_channels) == (16, 1152, 16,
                                                                             4608, 392)
    assert (config.diffusion.max_timesteps, config.diffusion.return_timestep,
            config.diffusion.sampling_stride) == (100, 29, 1)
    # Parameter counts of the official model (reference notes): DiT 387,222,918; DINOv2
    # 22,056,576 minus the 384 values of the unused mask token.
    assert count_parameters(config, 'denoiser.') == 387_222_918
    assert count_parameters(config, 'backbone.') == 22_056_576 - 384


def test_small_preset_is_smaller_and_samples_eight_steps():
    small = preset('small')
    assert small.backbone == preset('official').backbone  # pretrained DINOv2 stays usable
    assert count_parameters(small, 'denoiser.') < 0.02 * 387_222_918
    steps = range(small.diffusion.max_timesteps - 1, -1, -small.diffusion.sampling_stride)
    assert [t for t in steps if t >= small.diffusion.return_timestep] == [
        99, 89, 79, 69, 59, 49, 39, 29]


@pytest.mark.parametrize('name', sorted(PRESETS))
def test_presets_round_trip_through_dict_and_yaml(name, tmp_path):
    config = preset(name)
    assert config_from_dict(config.to_dict()) == config
    path = tmp_path / 'config.yaml'
    save_config_yaml(config, path)
    assert load_config_yaml(path) == config
    assert yaml.safe_load(path.read_text())['denoiser']['depth'] == config.denoiser.depth


def test_partial_dicts_take_defaults_and_ints_become_floats():
    config = config_from_dict({'denoiser': {'depth': 4, 'timestep_max_period': 5000},
                               'diffusion': {'max_timesteps': 50}})
    assert config.denoiser.depth == 4
    assert isinstance(config.denoiser.timestep_max_period, float)
    assert config.denoiser.timestep_max_period == 5000.0
    assert config.denoiser.hidden_size == 1152 and config.diffusion.beta_end == 0.2
    assert config.backbone == preset('official').backbone


@pytest.mark.parametrize('data,message', [
    ({'decoder': {}}, 'unknown model config section'),
    ({'denoiser': {'width': 3}}, r'unknown key\(s\) in denoiser'),
    ({'denoiser': {'depth': 2.5}}, 'denoiser.depth must be an integer'),
    ({'denoiser': {'append_ndc': 1}}, 'denoiser.append_ndc must be true or false'),
    ({'diffusion': {'beta_start': 'small'}}, 'diffusion.beta_start must be a number'),
    ({'diffusion': {'moment_normalization': 'exact'}}, 'moment_normalization must be one of'),
    ({'diffusion': {'return_timestep': 100}}, 'outside'),
    ({'diffusion': {'sampling_stride': 10, 'return_timestep': 30}}, 'sampling grid'),
    ({'denoiser': {'hidden_size': 100, 'num_heads': 16}}, 'not divisible'),
    ({'denoiser': {'feature_dim': 256}}, 'differs from the backbone feature channels'),
    ({'backbone': {'image_size': 225}}, 'not a multiple'),
    ({'diffusion': {'beta_start': 0.3, 'beta_end': 0.2}}, 'beta_start < beta_end'),
    ([1, 2], 'must be a mapping'),
])
def test_invalid_configs_are_named(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_with_overrides_and_unknown_preset():
    config = with_overrides(preset('official'), diffusion={'return_timestep': 0})
    assert config.diffusion.return_timestep == 0
    assert config.denoiser == DenoiserConfig()
    with pytest.raises(ConfigError, match='unknown model preset'):
        preset('huge')
    with pytest.raises(ConfigError, match='unknown model config section'):
        with_overrides(config, decoder={})


def write_hydra(tmp_path, data):
    (tmp_path / 'hydra').mkdir(exist_ok=True)
    (tmp_path / 'hydra' / 'config.yaml').write_text(yaml.safe_dump(data))
    return tmp_path


def test_read_official_config_maps_the_loader_keys(tmp_path):
    config = read_official_config(write_hydra(tmp_path, HYDRA_CONFIG))
    assert config == preset('official')
    data = yaml.safe_load(yaml.safe_dump(HYDRA_CONFIG))
    data['training']['regression'] = True
    data['model']['depth'] = 8
    data['model']['num_images'] = 15
    config = read_official_config(write_hydra(tmp_path, data))
    assert config.diffusion.regression and config.denoiser.depth == 8
    assert config.denoiser.max_num_images == 15
    del data['training']  # older configs without training.regression: diffusion model
    assert not read_official_config(write_hydra(tmp_path, data)).diffusion.regression


@pytest.mark.parametrize('section,key,value,message', [
    ('model', 'depth', None, 'lacks model.depth'),
    ('model', 'pred_x0', False, 'only x0-prediction'),
    ('model', 'feature_extractor', 'resnet', 'not supported'),
    ('model', 'append_ndc', 'yes', 'model.append_ndc must be true or false'),
    ('noise_scheduler', 'type', 'cosine', 'schedule must be one of'),
    ('noise_scheduler', 'beta_end', None, 'lacks noise_scheduler.beta_end'),
])
def test_read_official_config_errors(tmp_path, section, key, value, message):
    data = yaml.safe_load(yaml.safe_dump(HYDRA_CONFIG))
    if value is None:
        del data[section][key]
    else:
        data[section][key] = value
    with pytest.raises(CheckpointError, match=message):
        read_official_config(write_hydra(tmp_path, data))


def test_read_official_config_missing_or_invalid_file(tmp_path):
    with pytest.raises(CheckpointError, match='not found'):
        read_official_config(tmp_path)
    (tmp_path / 'hydra').mkdir()
    (tmp_path / 'hydra' / 'config.yaml').write_text('model: [unclosed')
    with pytest.raises(CheckpointError, match='not valid YAML'):
        read_official_config(tmp_path)


def test_diffusion_defaults_are_the_official_sampler():
    diffusion = DiffusionConfig()
    assert diffusion.moment_normalization == 'official'
    assert diffusion.normalize_directions and diffusion.clip_bound == 5.0
    assert not diffusion.regression
