"""Side-by-side markdown table of several ``raydiff-eval`` results (``results.json`` files).

The library behind ``raydiff-compare`` (``raydiff_ros/cli/compare.py``). One row per N (the
union of the N of all results, ascending) and a ``mean`` row (the unweighted mean over the N
rows a result has). For each result a group of columns: rotation accuracy at each of
``report.REPORTED_ROTATION_THRESHOLDS_DEG`` (ordered pairs), camera-centre accuracy at the
result's threshold, mean estimator seconds per view set, and, when the result was refined, mean
refinement seconds per view set. Groups are labelled by the given labels or by the estimator
name and refinement stored in each JSON. Accuracies are in percent; a result
without an N shows ``-`` there.
"""

import json
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from raydiff_ros.evaluation.report import (
    JSON_FORMAT_TAG,
    PERCENT,
    REPORTED_ROTATION_THRESHOLDS_DEG,
)

MISSING = '-'
MEAN_ROW = 'mean'
REFINEMENT_NONE = 'none'
REQUIRED_KEYS = ('estimator', 'dataset', 'config', 'metrics_per_n')


class CompareError(ValueError):
    """A result file is missing or not a ``raydiff-eval`` result, or the labels do not fit."""


def load_result(path: Path) -> dict[str, Any]:
    """Read and check one ``results.json`` (format tag, required keys, per-N entries)."""
    path = Path(path)
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise CompareError(f'result file {path} does not exist') from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CompareError(f'{path} is not valid JSON: {error}') from error
    if not isinstance(content, dict) or content.get('format') != JSON_FORMAT_TAG:
        raise CompareError(f'{path} is not a raydiff-eval result (format {JSON_FORMAT_TAG!r})')
    missing = [key for key in REQUIRED_KEYS if key not in content]
    if missing:
        raise CompareError(f'{path} lacks {missing}')
    if not isinstance(content['metrics_per_n'], dict) or not content['metrics_per_n']:
        raise CompareError(f'{path} has no metrics per N')
    for n, metrics in content['metrics_per_n'].items():
        if 'rotation_accuracy_at_deg' not in metrics:
            raise CompareError(f'{path}: N = {n} has no rotation_accuracy_at_deg (written by '
                               'an older raydiff-eval; run it again)')
    return content


def result_label(result: dict[str, Any]) -> str:
    """Estimator name, plus the refinement unless none or already part of the name."""
    name = str(result['estimator'])
    refinement = str(result.get('refinement', REFINEMENT_NONE))
    if refinement == REFINEMENT_NONE or name.endswith(f'+{refinement}'):
        return name
    return f'{name}+{refinement}'


def _has_refinement(result: dict[str, Any]) -> bool:
    return any(m.get('refinement_seconds_per_set') is not None
               for m in result['metrics_per_n'].values())


def _column_values(metrics: dict[str, Any], refined: bool) -> list[Optional[float]]:
    """The numbers of one result's column group for one N (accuracies in percent)."""
    at = metrics['rotation_accuracy_at_deg']
    values = [PERCENT * at[f'{t:g}'] for t in REPORTED_ROTATION_THRESHOLDS_DEG]
    values.append(PERCENT * metrics['camera_center_accuracy'])
    values.append(metrics.get('seconds_per_set'))
    if refined:
        values.append(metrics.get('refinement_seconds_per_set'))
    return values


def _headers(label: str, result: dict[str, Any], refined: bool) -> list[str]:
    center = result['config']['thresholds']['camera_center']
    headers = [f'{label} rot. acc@{t:g}° (%)' for t in REPORTED_ROTATION_THRESHOLDS_DEG]
    headers += [f'{label} centre acc@{center:g} (%)', f'{label} s/set']
    if refined:
        headers.append(f'{label} refine s/set')
    return headers


def _format(values: Sequence[Optional[float]], num_accuracies: int) -> list[str]:
    cells = []
    for k, value in enumerate(values):
        if value is None:
            cells.append(MISSING)
        else:
            cells.append(f'{value:.1f}' if k < num_accuracies else f'{value:.3f}')
    return cells


def comparison_table(
    results: Sequence[dict[str, Any]], labels: Optional[Sequence[str]] = None
) -> str:
    """The side-by-side markdown table (module docstring) of loaded results.

    Args:
        results: ``load_result`` outputs, one column group each, in this order.
        labels: one label per result; default ``result_label`` of each.

    Returns:
        A markdown document: the table, then one line per result naming its dataset.
    """
    if not results:
        raise CompareError('no results to compare')
    labels = [result_label(r) for r in results] if labels is None else list(labels)
    if len(labels) != len(results):
        raise CompareError(f'{len(labels)} labels for {len(results)} results')
    refined = [_has_refinement(r) for r in results]
    num_accuracies = len(REPORTED_ROTATION_THRESHOLDS_DEG) + 1
    all_n = sorted({int(n) for r in results for n in r['metrics_per_n']})
    header = ['N']
    for label, result, refine in zip(labels, results, refined, strict=True):
        header += _headers(label, result, refine)
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---:|' * len(header)]
    per_result_rows: list[list[list[Optional[float]]]] = [[] for _ in results]
    for n in all_n:
        row = [str(n)]
        for k, (result, refine) in enumerate(zip(results, refined, strict=True)):
            metrics = result['metrics_per_n'].get(str(n))
            width = len(_headers('', result, refine))
            if metrics is None:
                row += [MISSING] * width
                continue
            values = _column_values(metrics, refine)
            per_result_rows[k].append(values)
            row += _format(values, num_accuracies)
        lines.append('| ' + ' | '.join(row) + ' |')
    mean_row = [MEAN_ROW]
    for rows in per_result_rows:
        columns = zip(*rows, strict=True)
        means = [None if any(v is None for v in column) else float(np.mean(column))
                 for column in columns]
        mean_row += _format(means, num_accuracies)
    lines.append('| ' + ' | '.join(mean_row) + ' |')
    legend = [
        f'* {label}: estimator {r["estimator"]}, refinement '
        f'{r.get("refinement", REFINEMENT_NONE)}, dataset {r["dataset"].get("name")} '
        f'({r["dataset"].get("source_format")}), seed {r["config"].get("seed")}'
        for label, r in zip(labels, results, strict=True)
    ]
    return '\n'.join(lines) + '\n\n' + '\n'.join(legend) + '\n'

