"""Side-by-side tables of several raydiff-eval results (evaluation.compare, raydiff-compare)."""

import json

import numpy as np
import pytest

from raydiff_ros.cli import compare as compare_cli
from raydiff_ros.cli.evaluate import main as eval_main
from raydiff_ros.evaluation import compare
from raydiff_ros.evaluation.datasets import write_poses_json
from raydiff_ros.evaluation.report import JSON_FORMAT_TAG


def hand_result(estimator, refinement, per_n):
    """A minimal results.json: per_n maps N to (acc@5, acc@15, centre acc, s, refine s)."""
    return {
        'format': JSON_FORMAT_TAG,
        'dataset': {'name': 'scenes', 'source_format': 'synthetic_shards'},
        'estimator': estimator,
        'refinement': refinement,
        'config': {'seed': 0, 'thresholds': {'camera_center': 0.1}},
        'metrics_per_n': {
            str(n): {'rotation_accuracy_at_deg': {'5': a5, '15': a15},
                     'camera_center_accuracy': centre, 'seconds_per_set': seconds,
                     'refinement_seconds_per_set': refine}
            for n, (a5, a15, centre, seconds, refine) in per_n.items()
        },
    }


PLAIN = hand_result('ray_diffusion', 'none', {
    2: (0.25, 0.5, 1.0, 0.5, None),
    3: (0.5, 0.75, 0.5, 1.5, None),
    4: (0.0, 0.25, 0.75, 2.5, None),
})
REFINED = hand_result('ray_diffusion+bundle', 'bundle', {
    2: (0.25, 1.0, 1.0, 3.0, 2.0),
    3: (0.75, 0.5, 0.5, 5.0, 4.0),
})


def write_json(path, content):
    path.write_text(json.dumps(content))
    return path


def test_table_holds_the_numbers_of_both_results(tmp_path, capsys):
    paths = [write_json(tmp_path / 'a.json', PLAIN), write_json(tmp_path / 'b.json', REFINED)]
    out = tmp_path / 'tables' / 'table.md'
    assert compare_cli.main([str(p) for p in paths] + ['--out', str(out)]) == 0
    table = out.read_text()
    assert table == capsys.readouterr().out
    lines = table.splitlines()
    assert lines[0] == (
        '| N | ray_diffusion rot. acc@5° (%) | ray_diffusion rot. acc@15° (%) | '
        'ray_diffusion centre acc@0.1 (%) | ray_diffusion s/set | '
        'ray_diffusion+bundle rot. acc@5° (%) | ray_diffusion+bundle rot. acc@15° (%) | '
        'ray_diffusion+bundle centre acc@0.1 (%) | ray_diffusion+bundle s/set | '
        'ray_diffusion+bundle refine s/set |')
    assert lines[2:6] == [
        '| 2 | 25.0 | 50.0 | 100.0 | 0.500 | 25.0 | 100.0 | 100.0 | 3.000 | 2.000 |',
        '| 3 | 50.0 | 75.0 | 50.0 | 1.500 | 75.0 | 50.0 | 50.0 | 5.000 | 4.000 |',
        '| 4 | 0.0 | 25.0 | 75.0 | 2.500 | - | - | - | - | - |',
        '| mean | 25.0 | 50.0 | 75.0 | 1.500 | 50.0 | 75.0 | 75.0 | 4.000 | 3.000 |',
    ]
    assert '* ray_diffusion+bundle: estimator ray_diffusion+bundle, refinement bundle' in table


def test_labels_option_and_default_labels(tmp_path):
    paths = [write_json(tmp_path / 'a.json', PLAIN), write_json(tmp_path / 'b.json', PLAIN)]
    out = tmp_path / 'table.md'
    assert compare_cli.main([str(p) for p in paths]
                            + ['--out', str(out), '--labels', 'A', 'B']) == 0
    header = out.read_text().splitlines()[0]
    assert header.count('| A rot. acc@5° (%) |') == 1 and 'B s/set' in header
    assert 'refine s/set' not in header
    assert compare.result_label({'estimator': 'model', 'refinement': 'bundle'}) == 'model+bundle'
    assert compare.result_label({'estimator': 'model', 'refinement': 'none'}) == 'model'


def test_bad_inputs_exit_with_2(tmp_path, capsys):
    good = write_json(tmp_path / 'a.json', PLAIN)
    out = ['--out', str(tmp_path / 't.md')]
    assert compare_cli.main([str(tmp_path / 'absent.json')] + out) == 2
    assert 'does not exist' in capsys.readouterr().err
    other = write_json(tmp_path / 'other.json', {'format': 'something else'})
    assert compare_cli.main([str(other)] + out) == 2
    assert 'is not a raydiff-eval result' in capsys.readouterr().err
    old = dict(PLAIN, metrics_per_n={'2': {'rotation_accuracy': 1.0}})
    assert compare_cli.main([str(write_json(tmp_path / 'old.json', old))] + out) == 2
    assert 'no rotation_accuracy_at_deg' in capsys.readouterr().err
    assert compare_cli.main([str(good), '--labels', 'A', 'B'] + out) == 2
    assert '2 labels for 1 results' in capsys.readouterr().err
    assert not (tmp_path / 't.md').exists()


def test_tables_of_real_raydiff_eval_results(tmp_path, synth):
    names = synth.write_images(tmp_path / 'data', 9)
    write_poses_json(tmp_path / 'data' / 'poses.json', names, synth.synthetic_K(9),
                     *synth.ring_cameras(9))
    paths = []
    for estimator, sets in (('ground_truth', ['--sets-per-n', '3']), ('random', [])):
        assert eval_main([str(tmp_path / 'data'), '--estimator', estimator, '--num-views',
                          '2,3', '--output', str(tmp_path / estimator)] + sets) == 0
        paths.append(tmp_path / estimator / 'results.json')
    out = tmp_path / 'table.md'
    assert compare_cli.main([str(p) for p in paths] + ['--out', str(out)]) == 0
    rows = {line.split(' | ')[0][2:]: line.strip('| ').split(' | ')
            for line in out.read_text().splitlines()[2:5]}
    random_result = json.loads(paths[1].read_text())
    assert random_result['config']['sets_per_n'] == 5  # the default for one scene
    for n in ('2', '3'):
        errors = np.concatenate([v['rotation_errors_deg'] for v in random_result['view_sets']
                                 if v['num_views'] == int(n)])
        metrics = random_result['metrics_per_n'][n]
        assert metrics['rotation_accuracy_at_deg']['15'] == metrics['rotation_accuracy']
        assert rows[n][1:4] == ['100.0', '100.0', '100.0']
        assert rows[n][5:8] == [f'{100 * np.mean(errors < 5):.1f}',
                                f'{100 * np.mean(errors < 15):.1f}',
                                f'{100 * metrics["camera_center_accuracy"]:.1f}']
        assert float(rows[n][8]) == pytest.approx(metrics['seconds_per_set'], abs=1e-3)
    assert rows['mean'][1:4] == ['100.0', '100.0', '100.0']
