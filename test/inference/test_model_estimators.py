"""The ray-model estimator through the contract, the registry and raydiff-eval."""

import json

from inference_helpers import oracle_for, random_model, tiny_config
import numpy as np

from raydiff_ros.cli import evaluate as eval_cli
from raydiff_ros.estimation import PoseEstimator, ViewSetInput
from raydiff_ros.inference.engine import EngineConfig, RayDiffusionEngine
from raydiff_ros.model.checkpoint import save_model


def test_every_sample_gives_the_true_relative_poses(rig):
    images, R, t, K = rig
    engine = RayDiffusionEngine(oracle_for(images, R, t, K, tiny_config()),
                                EngineConfig(num_samples=2, warmup=False))
    result = engine.estimate(ViewSetInput(images, K))
    assert isinstance(engine, PoseEstimator) and result.num_samples == 2
    assert not result.intrinsics_estimated        # the given intrinsics were used
    np.testing.assert_allclose(result.K, K)
    assert result.pose_sources == ('reference',) + ('ray_diffusion',) * (len(images) - 1)
    relative_true = R[0] @ R[1].T                  # rotation of camera0_T_camera1
    for s in range(2):
        np.testing.assert_allclose(result.samples_reference_T_camera[s, 1, :3, :3],
                                   relative_true, atol=1e-5)


def test_raydiff_eval_runs_the_model_on_shared_data(shared_dir, tmp_path, capsys):
    model_dir = tmp_path / 'model'
    save_model(random_model(tiny_config()), model_dir)
    output = tmp_path / 'eval'
    status = eval_cli.main([str(shared_dir / 'data' / 'temple_ring'), '--estimator',
                            'ray_diffusion', '--model', str(model_dir), '--num-views', '2,3',
                            '--sets-per-n', '1', '--output', str(output)])
    assert status == 0, capsys.readouterr().err
    results = json.loads((output / 'results.json').read_text())
    assert 'ray_diffusion' in json.dumps(results)
    assert (output / 'results.md').is_file()


def test_raydiff_eval_reports_a_missing_model(tmp_path, shared_dir, capsys):
    status = eval_cli.main([str(shared_dir / 'data' / 'temple_ring'), '--estimator',
                            'ray_diffusion', '--model', str(tmp_path / 'none'),
                            '--output', str(tmp_path / 'out')])
    assert status == 2
    assert 'error' in capsys.readouterr().err
