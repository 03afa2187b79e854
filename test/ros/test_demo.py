"""The rig demo end to end: bag written and read back, node run, summary and plot written."""

import json

import numpy as np
import pytest

pytestmark = pytest.mark.ros

pytest.importorskip('rclpy', reason='rclpy is not installed (run: make test)')

from raydiff_ros.demos import rig_demo  # noqa: E402

#: The issue's bar for the default (fused) estimator on the demo rig.
MEDIAN_ROTATION_TOL_DEG = 1.0


def test_demo_bag_round_trips_the_true_rig(tmp_path):
    bag = rig_demo.build_demo_bag(tmp_path / 'bag')
    truth = rig_demo.read_truth(bag)
    assert sorted(truth) == list(range(rig_demo.NUM_CAMERAS))
    np.testing.assert_allclose(truth[0], np.eye(4))
    baselines = [np.linalg.norm(truth[k][:3, 3]) for k in range(1, rig_demo.NUM_CAMERAS)]
    assert all(b > 0.5 for b in baselines)


@pytest.mark.slow  # 15 to 25 s on 2 cores
def test_demo_runs_the_default_node_and_reports_errors(tmp_path, capsys):
    status = rig_demo.main(['--output', str(tmp_path), '--timeout', '240'])
    assert status == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert summary['estimator'] == 'fused'
    assert len(summary['pairs']) == rig_demo.NUM_CAMERAS * (rig_demo.NUM_CAMERAS - 1) // 2
    assert summary['median_rotation_error_deg'] < MEDIAN_ROTATION_TOL_DEG
    assert summary['pose_sources'] == {'cam0': 'reference', 'cam1': 'verified_matches',
                                       'cam2': 'verified_matches', 'cam3': 'verified_matches'}
    first = next(p for p in summary['pairs'] if p['pair'] == [0, 1])
    # metric scale from the known cam0-cam1 distance
    np.testing.assert_allclose(np.linalg.norm(first['estimated_translation_m']),
                               np.linalg.norm(first['true_translation_m']), rtol=1e-6)
    assert (tmp_path / 'cameras.png').read_bytes()[:4] == b'\x89PNG'
    assert 'rot err' in capsys.readouterr().out


def test_demo_refuses_guided_refinement_without_a_diffusion_model(tmp_path, capsys):
    status = rig_demo.main(['--estimator', 'classical_sift', '--refinement', 'guided',
                            '--output', str(tmp_path)])
    assert status == rig_demo.EXIT_NO_GUIDANCE
    assert 'needs a ray-diffusion model' in capsys.readouterr().err
    assert not (tmp_path / rig_demo.BAG_NAME).exists()
