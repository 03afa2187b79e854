"""Markdown tables of tools/evaluate_prior.sh results (any OUT_DIR/<scene>/<name>/results.json).

Per scene, a row per name (every name present): (a) rotation accuracy at 15 deg per N ± the
standard error over the view sets, and the mean over N; rotation accuracy at 5 deg, camera-centre
accuracy at 0.1 and seconds per view set, each per N with the mean; (b) the per-true-angle-bin
rotation accuracy at 15 deg (all N pooled), cells ``acc@15 (pairs)``. Names whose results.json
predates ``pair_true_angles_deg`` are left out of (b) with a note. All accuracies in %.

    .venv/bin/python tools/prior_table.py OUT_DIR
"""

from pathlib import Path
import sys
from typing import Optional

from fused_table import load_results, rotation_standard_error, sizes
import numpy as np

ORDER = ('prior_dinov2', 'prior_shipped_lite', 'ray_regression', 'pose_diffusion_unguided',
         'pose_diffusion_guided', 'camera_ray_token', 'classical_sift', 'fused', 'random')
"""Names listed first, in this order; any other name present follows, sorted."""


def ordered_results(folder: Path) -> dict[str, dict]:
    """Every results.json of ``folder/<name>/``, names of ``ORDER`` first."""
    results = load_results(folder)
    return {**{n: results[n] for n in ORDER if n in results},
            **{n: r for n, r in results.items() if n not in ORDER}}


def _percent(value: Optional[float]) -> str:
    return '-' if value is None else f'{100 * value:.1f}'


def accuracy_table(results: dict[str, dict], kind: str) -> list[str]:
    """Rows = names, columns = N and the mean over N. ``kind``: 'rotation' (acc@15 ± s.e.),
    'rotation5' (acc@5), 'centre' (camera-centre acc@0.1) or 'seconds' (per view set)."""
    columns = sizes(results)
    lines = ['| name | ' + ' | '.join(f'N={n}' for n in columns) + ' | mean |',
             '|---' + '|---:' * (len(columns) + 1) + '|']
    for name, result in results.items():
        cells, values = [], []
        for n in columns:
            metrics = result['metrics_per_n'].get(n)
            if metrics is None:
                cells.append('-')
                continue
            if kind == 'rotation':
                value = metrics['rotation_accuracy_at_deg']['15']
                error = rotation_standard_error(result, n, 15.0)
                cells.append(f'{_percent(value)} ± {_percent(error)}')
            elif kind == 'rotation5':
                value = metrics['rotation_accuracy_at_deg']['5']
                cells.append(_percent(value))
            elif kind == 'seconds':
                value = metrics['seconds_per_set']
                cells.append(f'{value:.2f}')
            else:
                value = metrics['camera_center_accuracy']
                cells.append(_percent(value))
            values.append(value)
        mean = '-' if not values else (f'{np.mean(values):.2f}' if kind == 'seconds'
                                        else _percent(float(np.mean(values))))
        lines.append(f'| {name} | ' + ' | '.join(cells) + f' | {mean} |')
    if kind in ('rotation', 'rotation5'):
        lines += constant_rotation_row(results, columns, 15.0 if kind == 'rotation' else 5.0)
    return lines


def constant_rotation_row(results: dict[str, dict], columns: list[str],
                          threshold: float) -> list[str]:
    """The row of a predictor that gives every view the same rotation (computed, not run):
    its relative rotation error is the true angle between the views, so its accuracy is the
    share of pairs closer than ``threshold`` degrees. From the view sets of the first result
    that stored ``pair_true_angles_deg`` (every run draws the same sets for a seed); none: no
    row."""
    source = next((r for r in results.values() if has_true_angles(r)), None)
    if source is None:
        return []
    cells, values = [], []
    for n in columns:
        per_set = [np.mean(np.asarray(v['pair_true_angles_deg']) < threshold)
                   for v in source['view_sets'] if v['num_views'] == int(n)]
        if not per_set:
            cells.append('-')
            continue
        value = float(np.mean(per_set))
        error = float(np.std(per_set, ddof=1) / np.sqrt(len(per_set))) if len(per_set) > 1 else 0
        values.append(value)
        cells.append(f'{_percent(value)} ± {_percent(error)}' if threshold == 15.0
                     else _percent(value))
    mean = _percent(float(np.mean(values))) if values else '-'
    return ['| same rotation for all views (computed) | ' + ' | '.join(cells) + f' | {mean} |']


def has_true_angles(result: dict) -> bool:
    """Whether the run stored ``pair_true_angles_deg`` (and so ``metrics_per_angle_bin``)."""
    return 'metrics_per_angle_bin' in result and all(
        'pair_true_angles_deg' in v for v in result['view_sets'])


def angle_bin_table(results: dict[str, dict]) -> list[str]:
    """Rows = names, columns = true-angle bins, cells ``acc@15 (pairs)`` (all N pooled); names
    without true angles are skipped with a note."""
    binned = {name: r['metrics_per_angle_bin'] for name, r in results.items()
              if has_true_angles(r)}
    skipped = [name for name in results if name not in binned]
    lines = []
    if binned:
        labels = list(next(iter(binned.values())))
        lines += ['| name | ' + ' | '.join(f'{label}°' for label in labels) + ' |',
                  '|---' + '|---:' * len(labels) + '|']
        for name, bins in binned.items():
            cells = [f'{_percent(bins[label]["rotation_accuracy_at_deg"]["15"])} '
                     f'({bins[label]["num_pairs"]})' for label in labels]
            lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    if skipped:
        lines += ['', 'Skipped (results.json without pair_true_angles_deg): '
                  + ', '.join(skipped) + '.']
    return lines


def tables(out: Path) -> list[str]:
    lines = []
    for scene in sorted(p.name for p in out.iterdir() if p.is_dir()):
        results = ordered_results(out / scene)
        if not results:
            continue
        lines += [f'**{scene}**: rotation acc@15 ± s.e. over view sets, %', '',
                  *accuracy_table(results, 'rotation'), '',
                  f'**{scene}**: rotation acc@5, %', '',
                  *accuracy_table(results, 'rotation5'), '',
                  f'**{scene}**: camera-centre acc@0.1, %', '',
                  *accuracy_table(results, 'centre'), '',
                  f'**{scene}**: seconds per view set', '',
                  *accuracy_table(results, 'seconds'), '',
                  f'**{scene}**: rotation acc@15 (pairs) by true angle between the views, '
                  'all N, %', '', *angle_bin_table(results), '']
    return lines


if __name__ == '__main__':
    print('\n'.join(tables(Path(sys.argv[1]))))
