"""Breakdown of the rotation errors by the true angle between the two views of each pair."""

import json

import numpy as np
import pytest

from raydiff_ros.estimation.reference import GroundTruthEstimator, RandomPoseEstimator
from raydiff_ros.evaluation.harness import HarnessConfig, run_evaluation
from raydiff_ros.evaluation.report import write_results
from raydiff_ros.geometry.metrics import (
    ANGLE_BIN_EDGES_DEG,
    MetricInputError,
    angle_bin_indices,
    angle_bin_labels,
    per_angle_bin_metrics,
    relative_rotation_angles_deg,
)
from raydiff_ros.geometry.transforms import axis_angle_rotations, rotation_angle_deg


def test_known_angles_fall_into_their_bins():
    assert ANGLE_BIN_EDGES_DEG == (0.0, 30.0, 60.0, 90.0, 180.0)
    assert angle_bin_labels() == ['0-30', '30-60', '60-90', '90-180']
    assert angle_bin_indices(np.array([10.0, 45.0, 75.0, 120.0])).tolist() == [0, 1, 2, 3]
    # Lower edges belong to their bin; 180 degrees to the last one.
    assert angle_bin_indices(np.array([0.0, 30.0, 60.0, 90.0, 180.0])).tolist() == [
        0, 1, 2, 3, 3]
    with pytest.raises(MetricInputError):
        angle_bin_indices(np.array([-1.0]))
    with pytest.raises(MetricInputError):
        angle_bin_indices(np.array([181.0]))


def test_relative_rotation_angles_of_known_rotations():
    R = axis_angle_rotations(np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),
                             np.radians([0.0, 40.0, 100.0]))
    angles = relative_rotation_angles_deg(R)
    assert angles[:2] == pytest.approx([40.0, 100.0])
    assert angles[2] == pytest.approx(float(rotation_angle_deg(R[1], R[2])))
    assert 60.0 < angles[2] < 140.0


def test_per_bin_accuracy_of_hand_built_pairs():
    angles = [10.0, 20.0, 45.0, 100.0, 170.0]
    errors = [1.0, 10.0, 20.0, 3.0, 50.0]
    bins = per_angle_bin_metrics(angles, errors, (5.0, 15.0))
    assert list(bins) == ['0-30', '30-60', '60-90', '90-180']
    assert bins['0-30'] == {'num_pairs': 2, 'rotation_accuracy_at_deg': {'5': 0.5, '15': 1.0},
                            'median_rotation_error_deg': 5.5}
    assert bins['30-60'] == {'num_pairs': 1, 'rotation_accuracy_at_deg': {'5': 0.0, '15': 0.0},
                             'median_rotation_error_deg': 20.0}
    assert bins['60-90'] == {'num_pairs': 0,
                             'rotation_accuracy_at_deg': {'5': None, '15': None},
                             'median_rotation_error_deg': None}
    assert bins['90-180'] == {'num_pairs': 2,
                              'rotation_accuracy_at_deg': {'5': 0.5, '15': 0.5},
                              'median_rotation_error_deg': 26.5}
    with pytest.raises(MetricInputError, match='differ in length'):
        per_angle_bin_metrics(angles, errors[:-1], (15.0,))


def test_ground_truth_run_stores_the_true_angles_of_the_dataset(tmp_path, synth):
    dataset = synth.in_memory_dataset(*synth.ring_cameras(12))
    result = run_evaluation(dataset, GroundTruthEstimator(),
                            HarnessConfig(num_views=(2, 3, 4), sets_per_n=4, seed=3))
    content = json.loads(write_results(result, tmp_path, plot=False)['json'].read_text())
    expected_all = []
    for view_set in content['view_sets']:
        R = dataset.R[view_set['indices']]
        expected = [float(rotation_angle_deg(R[i], R[j])) for i, j in view_set['unordered_pairs']]
        assert view_set['pair_true_angles_deg'] == pytest.approx(expected, abs=1e-9)
        assert max(view_set['pair_rotation_errors_deg']) < 1e-4
        expected_all += expected
    counts, _ = np.histogram(expected_all, bins=ANGLE_BIN_EDGES_DEG)
    pooled = content['metrics_per_angle_bin']
    assert [b['num_pairs'] for b in pooled.values()] == counts.tolist()
    assert sum(counts[:-1]) > 0 and counts[-1] > 0  # the ring gives small and large angles
    for entry in pooled.values():
        if entry['num_pairs']:
            assert entry['rotation_accuracy_at_deg'] == {'5': 1.0, '15': 1.0}
            assert entry['median_rotation_error_deg'] < 1e-4
    per_n = [content['metrics_per_n'][n]['per_angle_bin'] for n in ('2', '3', '4')]
    assert [sum(b[label]['num_pairs'] for b in per_n) for label in pooled] == counts.tolist()
    assert sum(b['num_pairs'] for b in per_n[2].values()) == 4 * 6
    assert '| 90-180 |' in (tmp_path / 'results.md').read_text()


def test_true_angles_come_from_the_truth_not_the_prediction(synth):
    dataset = synth.in_memory_dataset(*synth.ring_cameras(8))
    result = run_evaluation(dataset, RandomPoseEstimator(seed=0),
                            HarnessConfig(num_views=(4,), sets_per_n=2))
    for record in result.records:
        expected = relative_rotation_angles_deg(dataset.R[list(record.indices)])
        assert record.errors.pair_true_angles_deg == pytest.approx(expected)
        assert relative_rotation_angles_deg(record.pred_R) != pytest.approx(expected)
