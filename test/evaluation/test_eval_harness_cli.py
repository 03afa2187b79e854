"""Harness sampling and pooling, the written reports, and the raydiff-eval command."""

import json

import numpy as np
from PIL import Image
from progress_recorder import RecordingProgress
import pytest

from raydiff_ros.cli.evaluate import main
from raydiff_ros.estimation.reference import NoisyOracleEstimator, RandomPoseEstimator
from raydiff_ros.evaluation.datasets import write_poses_json
from raydiff_ros.evaluation.harness import (
    HarnessConfig,
    HarnessError,
    run_evaluation,
    sample_view_sets,
)
from raydiff_ros.evaluation.report import write_results

METRIC_KEYS = ('rotation_accuracy', 'camera_center_accuracy', 'rra', 'rta', 'auc')


# --- sampling -------------------------------------------------------------------------------


def test_view_sets_are_distinct_in_range_and_reproducible():
    sets = sample_view_sets(num_images=10, num_views=4, sets_per_n=20, seed=3)
    assert len(sets) == 20
    assert all(len(set(s)) == 4 and all(0 <= i < 10 for i in s) for s in sets)
    assert sets == sample_view_sets(10, 4, 20, 3)
    assert sets != sample_view_sets(10, 4, 20, 4)
    # Each N has its own stream: the N = 4 sets do not depend on other N being drawn.
    config_a = HarnessConfig(num_views=(4,), sets_per_n=5)
    config_b = HarnessConfig(num_views=(2, 3, 4), sets_per_n=5)
    assert sample_view_sets(10, 4, config_a.sets_per_n, config_a.seed) == sample_view_sets(
        10, 4, config_b.sets_per_n, config_b.seed)


def test_sampling_and_config_errors():
    with pytest.raises(HarnessError, match='cannot draw 5 views from 4 images'):
        sample_view_sets(4, 5, 1, 0)
    with pytest.raises(HarnessError, match='at least 2'):
        HarnessConfig(num_views=(1, 2))
    with pytest.raises(HarnessError, match='sets_per_n'):
        HarnessConfig(sets_per_n=0)
    with pytest.raises(HarnessError, match='duplicates'):
        HarnessConfig(num_views=(3, 3))


# --- harness --------------------------------------------------------------------------------


def test_harness_pools_per_n_with_the_whole_sequence_scale(synth):
    dataset = synth.in_memory_dataset(*synth.ring_cameras(10))
    config = HarnessConfig(num_views=(2, 3, 5), sets_per_n=4, seed=1)
    estimator = NoisyOracleEstimator(seed=2, rotation_noise_deg=3.0, center_noise=0.01)
    progress = RecordingProgress()
    result = run_evaluation(dataset, estimator, config, progress=progress)
    assert list(result.metrics_per_n) == [2, 3, 5]
    assert [r.num_views for r in result.records] == [2] * 4 + [3] * 4 + [5] * 4
    [bar] = progress.bars  # one bar over every view set of every N
    assert (bar.description, bar.total, bar.updates, bar.closed) == ('evaluate', 12, [1] * 12,
                                                                     True)
    metrics = result.metrics_per_n[5]
    assert (metrics.num_view_sets, metrics.num_ordered_pairs, metrics.num_pairs,
            metrics.num_cameras) == (4, 80, 40, 20)
    # Rotation noise of 3 degrees per camera: every pair is within 6 degrees.
    assert metrics.rotation_accuracy == 1.0
    assert result.metrics_per_n[2].camera_center_accuracy == 1.0
    # Camera-centre errors are normalised by the scale of all 10 cameras, not the sampled 5.
    record = result.records_for(5)[0]
    pooled_mean = np.mean([r.errors.camera_center_errors.mean() for r in result.records_for(5)])
    assert metrics.mean_camera_center_error == pytest.approx(pooled_mean)
    subset_centers = dataset.camera_centers[list(record.indices)]
    subset_scale = np.linalg.norm(subset_centers - subset_centers.mean(0), axis=1).max()
    assert subset_scale != pytest.approx(dataset.scene_scale)


def test_harness_rejects_n_larger_than_the_dataset(synth):
    dataset = synth.in_memory_dataset(*synth.ring_cameras(4))
    with pytest.raises(HarnessError, match=r'has 4 images; cannot draw N = \[5\]'):
        run_evaluation(dataset, RandomPoseEstimator(), HarnessConfig(num_views=(2, 5)))


def test_write_results_for_a_random_run(tmp_path, synth):
    dataset = synth.in_memory_dataset(*synth.ring_cameras(9))
    result = run_evaluation(dataset, RandomPoseEstimator(seed=0),
                            HarnessConfig(num_views=(2, 3), sets_per_n=3))
    paths = write_results(result, tmp_path / 'out', plot=False)
    assert set(paths) == {'json', 'markdown'}
    content = json.loads(paths['json'].read_text())
    assert content['estimator'] == 'random'
    assert len(content['view_sets']) == 6
    assert len(content['view_sets'][5]['rotation_errors_deg']) == 6
    assert content['metrics_per_n']['3']['num_cameras'] == 9
    table = paths['markdown'].read_text()
    assert table.count('\n| 2 |') == 1 and table.count('\n| 3 |') == 1
    assert not (tmp_path / 'out' / 'cameras.png').exists()


# --- raydiff-eval ---------------------------------------------------------------------------


@pytest.mark.parametrize('dataset_name', ['temple_ring', 'nerf_lego'])
def test_ground_truth_scores_100_percent_on_shared_data(shared_dir, tmp_path, capsys,
                                                         dataset_name):
    output = tmp_path / 'eval'
    code = main([str(shared_dir / 'data' / dataset_name), '--estimator', 'ground_truth',
                 '--num-views', '2..8', '--sets-per-n', '3', '--seed', '0',
                 '--output', str(output), '--plot'])
    assert code == 0
    content = json.loads((output / 'results.json').read_text())
    assert list(content['metrics_per_n']) == [str(n) for n in range(2, 9)]
    for metrics in content['metrics_per_n'].values():
        assert metrics['num_view_sets'] == 3
        for key in METRIC_KEYS:
            assert metrics[key] == 1.0, (key, metrics)
        assert metrics['mean_rotation_error_deg'] < 1e-4
        assert metrics['mean_camera_center_error'] < 1e-9
    table = (output / 'results.md').read_text()
    assert table.count('| 100.0 | 100.0 | 100.0 | 100.0 | 100.0 |') == 7
    printed = capsys.readouterr().out
    assert '| 8 | 3 | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 |' in printed
    with Image.open(output / 'cameras.png') as png:
        assert png.format == 'PNG' and png.size[0] > 300 and png.size[1] > 300


def test_cli_noisy_oracle_scores_between_floor_and_ceiling(shared_dir, tmp_path):
    output = tmp_path / 'eval'
    assert main([str(shared_dir / 'data' / 'temple_ring'), '--estimator', 'noisy_oracle',
                 '--num-views', '4', '--sets-per-n', '5', '--output', str(output)]) == 0
    metrics = json.loads((output / 'results.json').read_text())['metrics_per_n']['4']
    assert metrics['rotation_accuracy'] == 1.0  # 5 degrees per camera: pairs within 10
    assert 0.0 < metrics['auc'] < 1.0


@pytest.mark.parametrize(
    ('arguments', 'message'),
    [
        (['--estimator', 'ground_truth'], 'required: --output'),
        (['--estimator', 'nope', '--output', 'X'], "'nope' is not one of"),
        (['--estimator', 'random', '--num-views', 'a..b', '--output', 'X'], 'bad view counts'),
        (['--estimator', 'random', '--num-views', '1..3', '--output', 'X'], 'at least 2'),
        (['--estimator', 'random', '--num-views', '60', '--output', 'X'], 'cannot draw'),
        (['--estimator', 'random', '--sets-per-n', '0', '--output', 'X'], 'sets_per_n'),
        (['--estimator', 'random', '--background', '1,2', '--output', 'X'], 'bad colour'),
    ],
)
def test_cli_bad_arguments_exit_with_2(synth, tmp_path, capsys, arguments, message):
    names = synth.write_images(tmp_path / 'data', 3)
    write_poses_json(tmp_path / 'data' / 'poses.json', names, synth.synthetic_K(3),
                     *synth.ring_cameras(3))
    arguments = [a.replace('X', str(tmp_path / 'out')) for a in arguments]
    assert main([str(tmp_path / 'data')] + arguments) == 2
    assert message in capsys.readouterr().err


def test_cli_missing_and_corrupt_datasets_exit_with_2(tmp_path, capsys):
    assert main([str(tmp_path / 'absent'), '--estimator', 'random', '--output',
                 str(tmp_path / 'out')]) == 2
    assert 'does not exist' in capsys.readouterr().err
    (tmp_path / 'poses.json').write_text('[1, 2')
    assert main([str(tmp_path), '--estimator', 'random', '--output', str(tmp_path / 'o')]) == 2
    assert 'raydiff-eval: error:' in capsys.readouterr().err


def test_cli_help_exits_with_0(capsys):
    assert main(['--help']) == 0
    assert 'DATASET_PATH' in capsys.readouterr().out
