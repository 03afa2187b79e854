"""Markdown table of tools/evaluate_fused.sh results: per scene, estimator and N, rotation
accuracy at 5 and 15 deg (with the standard error over view sets), camera-centre accuracy at
0.1 and seconds per view set.

    .venv/bin/python tools/fused_table.py OUT_DIR
"""

import json
from pathlib import Path
import sys

import numpy as np

ORDER = ('prior', 'matches_sift', 'matches_xfeat', 'matches_aliked', 'fused')


def rows(out: Path) -> list[str]:
    lines = ['| scene | estimator | N | rot. acc@5 | rot. acc@15 (± s.e.) | centre acc@0.1 | '
             's / set |', '|---|---|---:|---:|---:|---:|---:|']
    for scene in sorted(p.name for p in out.iterdir() if p.is_dir()):
        for name in ORDER:
            path = out / scene / name / 'results.json'
            if not path.exists():
                continue
            result = json.loads(path.read_text())
            for n, metrics in sorted(result['metrics_per_n'].items(), key=lambda kv: int(kv[0])):
                per_set = [np.mean(np.asarray(v['rotation_errors_deg']) < 15)
                           for v in result['view_sets'] if v['num_views'] == int(n)]
                error = np.std(per_set, ddof=1) / np.sqrt(len(per_set)) if len(per_set) > 1 else 0
                at = metrics['rotation_accuracy_at_deg']
                lines.append(f'| {scene} | {name} | {n} | {at["5"]:.2f} | {at["15"]:.2f} ± '
                             f'{error:.2f} | {metrics["camera_center_accuracy"]:.2f} | '
                             f'{metrics["seconds_per_set"]:.2f} |')
    return lines


if __name__ == '__main__':
    print('\n'.join(rows(Path(sys.argv[1]))))
