"""The camera_ray_token estimator: conventions, the registry, raydiff-estimate, errors."""

import json

from inference_helpers import look_at_rig, random_model, rig_images, rig_intrinsics, tiny_config
import numpy as np
from PIL import Image
import pytest
from tiny_camera_token import random_camera_token_model, tiny_camera_token_config
import torch

from raydiff_ros.cli import estimate as estimate_cli
from raydiff_ros.cli import evaluate as eval_cli
from raydiff_ros.estimation import (
    EstimationError,
    EstimatorError,
    EstimatorOptions,
    PoseEstimator,
    ViewSetInput,
    available_estimators,
    create_estimator,
)
from raydiff_ros.geometry.transforms import invert_transforms, make_transforms
from raydiff_ros.inference.camera_token import (
    CameraTokenEstimator,
    reference_poses_from_world_to_camera,
)
from raydiff_ros.inference.engine import EngineConfig
from raydiff_ros.model import default_models
from raydiff_ros.model.camera_token import (
    CameraTokenModel,
    CameraTokenOutput,
    rotation_to_6d,
    save_camera_token_model,
)
from raydiff_ros.model.checkpoint import save_model
from raydiff_ros.ros.estimator_plugins import build_estimator

NUM_VIEWS = 3


class OracleCameraTokenModel(CameraTokenModel):
    """Returns known ``camera_T_world`` poses (R (N, 3, 3), t (N, 3)) whatever the images."""

    def __init__(self, config, R: np.ndarray, t: np.ndarray) -> None:
        super().__init__(config)
        self.R = torch.from_numpy(R).float()
        self.t = torch.from_numpy(t).float()

    def forward(self, features, ndc=None):
        P = self.num_patches
        B, N = features.shape[:2]
        return CameraTokenOutput(self.R[None].expand(B, N, 3, 3), self.t[None].expand(B, N, 3),
                                 rotation_to_6d(self.R)[None], torch.zeros(B, N, 6, P, P))


@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path / 'camera_token'
    save_camera_token_model(random_camera_token_model(tiny_camera_token_config()), folder)
    return folder


def test_reference_poses_of_known_cameras():
    R = np.repeat(np.eye(3)[None], 3, axis=0)
    centers = np.array([[0.0, 0, 0], [2.0, 0, 0], [0.0, 2.0, 0]])
    poses = reference_poses_from_world_to_camera(R, -centers)    # t = -R C
    np.testing.assert_allclose(poses[:, :3, 3], [[0, 0, 0], [1, 0, 0], [0, 1, 0]], atol=1e-12)
    with pytest.raises(EstimationError, match='baseline'):
        reference_poses_from_world_to_camera(R, np.zeros((3, 3)))
    with pytest.raises(EstimationError, match='non-finite'):
        reference_poses_from_world_to_camera(R, np.full((3, 3), np.nan))


def test_oracle_poses_come_back_in_view_zero_frame():
    R, t = look_at_rig(NUM_VIEWS, seed=3)
    model = OracleCameraTokenModel(tiny_camera_token_config(), R, t).eval()
    estimator = CameraTokenEstimator(model, EngineConfig(device='cpu', warmup=False))
    K = rig_intrinsics(NUM_VIEWS)
    result = estimator.estimate(ViewSetInput(rig_images(NUM_VIEWS, seed=4), K))
    camera_T_world = make_transforms(R, t)
    expected = camera_T_world[0] @ invert_transforms(camera_T_world)   # camera0_T_camera
    expected[:, :3, 3] /= np.linalg.norm(expected[1:, :3, 3], axis=-1).mean()
    np.testing.assert_allclose(result.reference_T_camera, expected, atol=1e-5)
    np.testing.assert_allclose(result.K, K)
    assert not result.intrinsics_estimated and result.num_samples == 1
    assert result.pose_sources == ('reference', 'camera_ray_token', 'camera_ray_token')


def test_registry_builds_and_runs_a_saved_model(model_dir):
    assert 'camera_ray_token' in available_estimators(include_ground_truth=False)
    estimator = create_estimator('camera_ray_token', EstimatorOptions(
        model_dir=model_dir, device='cpu', warmup=True))
    assert isinstance(estimator, PoseEstimator) and estimator.name == 'camera_ray_token'
    images = [image[: 90 + 10 * k] for k, image in enumerate(rig_images(NUM_VIEWS, seed=7))]
    result = estimator.estimate(ViewSetInput(images))
    poses = result.reference_T_camera
    assert poses.shape == (NUM_VIEWS, 4, 4) and result.K is None
    np.testing.assert_allclose(poses[0], np.eye(4), atol=1e-9)
    assert np.linalg.norm(poses[1:, :3, 3], axis=-1).mean() == pytest.approx(1.0)
    assert np.linalg.norm(poses[1, :3, 3] - poses[2, :3, 3]) > 1e-4   # views differ
    again = estimator.estimate(ViewSetInput(images))
    np.testing.assert_allclose(again.reference_T_camera, poses)    # deterministic


def test_raydiff_estimate_runs_it(model_dir, tmp_path, capsys):
    paths = []
    for k, image in enumerate(rig_images(NUM_VIEWS, seed=8)):
        paths.append(tmp_path / f'view{k}.png')
        Image.fromarray(image).save(paths[-1])
    output = tmp_path / 'poses.json'
    status = estimate_cli.main([*map(str, paths), '--estimator', 'camera_ray_token',
                                '--model', str(model_dir), '--device', 'cpu',
                                '--output', str(output)])
    assert status == 0, capsys.readouterr().err
    assert 'camera_ray_token' in json.dumps(json.loads(output.read_text()))


def test_raydiff_eval_and_the_node_builder_take_it(model_dir, shared_dir, tmp_path, capsys):
    output = tmp_path / 'eval'
    status = eval_cli.main([str(shared_dir / 'data' / 'temple_ring'), '--estimator',
                            'camera_ray_token', '--model', str(model_dir), '--device', 'cpu',
                            '--num-views', '2,3', '--sets-per-n', '1', '--output', str(output)])
    assert status == 0, capsys.readouterr().err
    assert 'camera_ray_token' in (output / 'results.json').read_text()
    # the node's estimator parameter goes through the same registry (num_samples is ignored)
    estimator = build_estimator('camera_ray_token', str(model_dir), 'cpu', 'auto', 8, 0)
    assert estimator.name == 'camera_ray_token'


def test_bad_builds_and_inputs_are_named(model_dir, tmp_path, monkeypatch):
    # no model folder and no shipped models/camera_ray_token: the error says what was searched
    monkeypatch.setattr(default_models, '_candidates', lambda name: [tmp_path / name])
    with pytest.raises(EstimatorError, match="no default 'camera_ray_token' model"):
        create_estimator('camera_ray_token', EstimatorOptions(device='cpu', warmup=False))
    monkeypatch.undo()
    with pytest.raises(EstimatorError, match='takes no options'):
        create_estimator('camera_ray_token', EstimatorOptions(
            model_dir=model_dir, device='cpu', warmup=False, extra={'matcher': 'aliked'}))
    save_model(random_model(tiny_config()), tmp_path / 'ray_model')
    with pytest.raises(EstimatorError, match='camera_token'):
        create_estimator('camera_ray_token', EstimatorOptions(
            model_dir=tmp_path / 'ray_model', device='cpu', warmup=False))
    with pytest.raises(EstimatorError, match='not found'):
        create_estimator('camera_ray_token', EstimatorOptions(
            model_dir=tmp_path / 'missing', device='cpu', warmup=False))
    estimator = CameraTokenEstimator(model_dir, EngineConfig(device='cpu', max_views=2,
                                                             warmup=False))
    images = rig_images(NUM_VIEWS, seed=9)
    with pytest.raises(EstimationError, match='2 to 2'):
        estimator.estimate(ViewSetInput(images))
    with pytest.raises(EstimationError, match='uint8'):
        estimator.estimate(ViewSetInput([images[0], images[1].astype(np.float32)]))
