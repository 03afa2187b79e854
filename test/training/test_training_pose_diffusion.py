"""``raydiff-train`` with ``variant: pose_diffusion`` on cached features: run, validate,
checkpoint, resume, and the checkpoint built as the ``pose_diffusion`` estimator."""

import json

import numpy as np
import pytest

from raydiff_ros.estimation import EstimatorOptions, ViewSetInput, create_estimator
from raydiff_ros.model.pose_diffusion import PoseDiffusionModel, load_pose_model
from raydiff_ros.training.config import TrainConfigError, config_from_dict
from raydiff_ros.training.trainer import Trainer

POSE_OVERRIDES = {
    'backbone': {'image_size': 56, 'embed_dim': 32, 'depth': 1, 'num_heads': 2,
                 'pos_embed_grid': 4},
    'denoiser': {'depth': 1, 'hidden_size': 32, 'num_heads': 2, 'num_patches': 4},
}


def pose_dict(tiny_train_dict, tmp_path, iterations: int = 4) -> dict:
    data = tiny_train_dict(
        variant='pose_diffusion',
        model={'preset': 'small', 'train_backbone': False, 'overrides': POSE_OVERRIDES},
        optim={'iterations': iterations, 'batch_size': 2, 'lr': 1e-3, 'warmup_iterations': 1},
        validation={'interval': 2, 'num_sets': 1, 'num_views': 2})
    data['data']['feature_cache'] = str(tmp_path / 'features.pt')
    data['checkpoint_interval'] = 2
    return data


def test_pose_diffusion_variant_trains_validates_and_resumes(tiny_train_dict, tmp_path):
    trainer = Trainer(config_from_dict(pose_dict(tiny_train_dict, tmp_path)), log=lambda _: None)
    assert isinstance(trainer.model, PoseDiffusionModel)
    assert trainer.model.config.pose_denoiser.feature_dim == 32
    result = trainer.run()
    assert result.iteration == 4 and np.isfinite(result.last_loss)
    records = [json.loads(line)
               for line in (tmp_path / 'run' / 'metrics.jsonl').read_text().splitlines()]
    validated = [r for r in records if 'val_loss' in r]
    assert [r['iteration'] for r in validated] == [2, 4]
    assert all(np.isfinite(r['val_loss']) and 0 <= r['val_rotation_accuracy'] <= 1
               for r in validated)
    model = load_pose_model(result.checkpoint)
    assert model.config == trainer.model.config

    longer = config_from_dict(pose_dict(tiny_train_dict, tmp_path, iterations=6))
    resumed = Trainer(longer, resume=True, log=lambda _: None)
    assert resumed.iteration == 4
    assert resumed.run().iteration == 6

    estimator = create_estimator('pose_diffusion', EstimatorOptions(
        model_dir=result.checkpoint, device='cpu', warmup=False, extra={'guidance': False}))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (36, 48, 3), dtype=np.uint8) for _ in range(3)]
    K = np.array([[50.0, 0, 24], [0, 50.0, 18], [0, 0, 1]])
    estimate = estimator.estimate(ViewSetInput(images, K))
    assert estimate.reference_T_camera.shape == (3, 4, 4)


def test_pose_diffusion_variant_refuses_init_from(tiny_train_dict, tmp_path):
    data = pose_dict(tiny_train_dict, tmp_path)
    data['model']['init_from'] = str(tmp_path)
    with pytest.raises(TrainConfigError, match='pose_diffusion'):
        config_from_dict(data)
