"""The engine behind the evaluation harness (raydiff-eval) and the node pipeline interfaces."""

import json

from inference_helpers import oracle_for, random_model, tiny_config
import numpy as np

from raydiff_ros.evaluation import cli as eval_cli
from raydiff_ros.inference.adapters import RayDiffusionEstimator
from raydiff_ros.inference.engine import EngineConfig, PoseEstimator
from raydiff_ros.model.checkpoint import save_model
from raydiff_ros.pipeline.poses import PoseSamples


def test_samples_interface_gives_the_true_relative_poses(rig):
    images, R, t, K = rig
    engine = PoseEstimator(oracle_for(images, R, t, K, tiny_config()),
                           EngineConfig(num_samples=2, warmup=False))
    samples = RayDiffusionEstimator(engine).estimate_samples_from_images(images, K)
    assert isinstance(samples, PoseSamples) and samples.num_samples == 2
    assert samples.K is None                      # the given intrinsics were used
    relative_true = R[1] @ R[0].T
    for s in range(2):
        np.testing.assert_allclose(samples.R[s, 1] @ samples.R[s, 0].T, relative_true,
                                   atol=1e-5)


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
