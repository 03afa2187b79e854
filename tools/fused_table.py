"""Markdown tables of tools/evaluate_fused.sh results, one per scene: a row per N, a column per
estimator with rotation accuracy at 5 deg / at 15 deg (± standard error over the view sets) /
camera-centre accuracy at 0.1, in %; then the mean seconds per view set of each estimator.

    .venv/bin/python tools/fused_table.py OUT_DIR
"""

import json
from pathlib import Path
import sys
from typing import Optional, Sequence

import numpy as np

ORDER = ('prior', 'matches_sift', 'matches_xfeat', 'matches_aliked', 'matches_sift_xfeat',
         'colmap', 'fused')


def rotation_standard_error(result: dict, n: str, threshold: float = 15.0) -> float:
    """Standard error over the view sets of N = ``n`` of their rotation accuracy at
    ``threshold`` degrees (ordered pairs); 0 with fewer than two sets."""
    per_set = [np.mean(np.asarray(v['rotation_errors_deg']) < threshold)
               for v in result['view_sets'] if v['num_views'] == int(n)]
    return float(np.std(per_set, ddof=1) / np.sqrt(len(per_set))) if len(per_set) > 1 else 0.0


def load_results(folder: Path, names: Optional[Sequence[str]] = None) -> dict[str, dict]:
    """``folder/<name>/results.json`` by name: of ``names`` in that order, or of every name
    present (sorted)."""
    if names is None:
        names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    return {name: json.loads((folder / name / 'results.json').read_text())
            for name in names if (folder / name / 'results.json').exists()}


def sizes(results: dict[str, dict]) -> list[str]:
    """The N (as strings) present in any of ``results``, ascending."""
    return sorted({n for r in results.values() for n in r['metrics_per_n']}, key=int)


def cell(result: dict, n: str) -> str:
    metrics = result['metrics_per_n'].get(n)
    if metrics is None:
        return '-'
    error = rotation_standard_error(result, n)
    at = metrics['rotation_accuracy_at_deg']
    return (f'{100 * at["5"]:.1f} / {100 * at["15"]:.1f} ± {100 * error:.1f} / '
            f'{100 * metrics["camera_center_accuracy"]:.1f}')


def mean_seconds(result: dict) -> float:
    return float(np.mean([m['seconds_per_set'] for m in result['metrics_per_n'].values()]))


def tables(out: Path) -> list[str]:
    lines = []
    for scene in sorted(p.name for p in out.iterdir() if p.is_dir()):
        results = load_results(out / scene, ORDER)
        lines += [f'**{scene}** (rotation acc@5 / acc@15 ± s.e. / centre acc@0.1, %)', '',
                  '| N | ' + ' | '.join(results) + ' |', '|---:' + '|---:' * len(results) + '|']
        for n in sizes(results):
            lines.append(f'| {n} | ' + ' | '.join(cell(r, n) for r in results.values()) + ' |')
        seconds = [f'{name} {mean_seconds(r):.2f}' for name, r in results.items()]
        lines += ['', 'Mean seconds per view set: ' + ', '.join(seconds) + '.', '']
    return lines


if __name__ == '__main__':
    print('\n'.join(tables(Path(sys.argv[1]))))
