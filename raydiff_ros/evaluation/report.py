"""Serialise a harness run: a JSON document, a markdown table and a plot (``write_results``).

``results.json`` holds the data summary (``ViewSetSource.describe``), the estimator name and
refinement, the configuration, the pooled metrics per N (plus the rotation accuracy at each of
``REPORTED_ROTATION_THRESHOLDS_DEG`` and the mean estimator and refinement seconds per view
set) and every view set (scene, indices, per-pair / per-camera errors, the true angle between
the views of each unordered pair, seconds). The unordered-pair rotation errors are also broken
down by that true angle (``ANGLE_BIN_EDGES_DEG``): per N (``per_angle_bin``) and over all N
(``metrics_per_angle_bin``). ``results.md`` holds one table row per N with the accuracies
(RayDiffusion rotation and camera-centre accuracy, PoseDiffusion RRA, RTA and AUC) and the
mean errors, then one row per true-angle bin (all N pooled).
"""

from __future__ import annotations

from dataclasses import asdict
import json
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from raydiff_ros.evaluation.harness import EvaluatedViewSet, EvaluationResult
from raydiff_ros.evaluation.plotting import PLOT_FILE_NAME, plot_view_set
from raydiff_ros.geometry.metrics import accuracy, per_angle_bin_metrics

JSON_FILE_NAME = 'results.json'
MARKDOWN_FILE_NAME = 'results.md'
JSON_FORMAT_TAG = 'raydiff_ros.evaluation.v1'
PERCENT = 100.0
REPORTED_ROTATION_THRESHOLDS_DEG = (5.0, 15.0)
"""Thresholds of the extra per-N ``rotation_accuracy_at_deg`` entries of ``results.json``."""


def _mean_or_none(values: Sequence[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def angle_bin_metrics(records: Sequence[EvaluatedViewSet]) -> dict[str, dict]:
    """``per_angle_bin_metrics`` of the pooled unordered pairs of ``records`` (at least one),
    at ``REPORTED_ROTATION_THRESHOLDS_DEG``."""
    return per_angle_bin_metrics(
        np.concatenate([r.errors.pair_true_angles_deg for r in records]),
        np.concatenate([r.errors.pair_rotation_errors_deg for r in records]),
        REPORTED_ROTATION_THRESHOLDS_DEG,
    )


def per_n_extras(records: Sequence[EvaluatedViewSet]) -> dict[str, Any]:
    """Per-N entries beyond ``PooledMetrics`` for the view sets of one N.

    Returns:
        ``rotation_accuracy_at_deg``: {f'{threshold:g}': fraction of the pooled ordered-pair
        rotation errors below it}; ``seconds_per_set``: mean estimator wall time;
        ``refinement_seconds_per_set``: mean refinement time, None without refinement;
        ``per_angle_bin``: ``angle_bin_metrics`` of these view sets.
    """
    rotation_errors = np.concatenate([r.errors.rotation_errors_deg for r in records])
    return {
        'rotation_accuracy_at_deg': {
            f'{threshold:g}': accuracy(rotation_errors, threshold)
            for threshold in REPORTED_ROTATION_THRESHOLDS_DEG
        },
        'seconds_per_set': _mean_or_none([r.seconds for r in records]),
        'refinement_seconds_per_set': _mean_or_none([r.refinement_seconds for r in records]),
        'per_angle_bin': angle_bin_metrics(records),
    }


def result_to_json_dict(result: EvaluationResult) -> dict[str, Any]:
    """A JSON-serialisable description of a harness run (plain lists, floats and strings)."""
    return {
        'format': JSON_FORMAT_TAG,
        'dataset': result.source.describe(),
        'estimator': result.estimator_name,
        'refinement': result.refinement,
        'config': {
            'num_views': list(result.config.num_views),
            'sets_per_n': result.config.sets_per_n,
            'seed': result.config.seed,
            'intrinsics_known': result.config.intrinsics_known,
            'object_boxes': result.config.object_boxes,
            'thresholds': asdict(result.config.thresholds),
        },
        'metrics_per_n': {
            str(n): {
                **{k: v for k, v in asdict(m).items() if k != 'thresholds'},
                **per_n_extras(result.records_for(n)),
            }
            for n, m in result.metrics_per_n.items()
        },
        'metrics_per_angle_bin': angle_bin_metrics(result.records),
        'view_sets': [
            {
                'num_views': record.num_views,
                'scene': record.scene.name,
                'scene_scale': record.scene.scene_scale,
                'indices': list(record.indices),
                'images': [record.scene.image_paths[i].name for i in record.indices],
                'seconds': record.seconds,
                'refinement_seconds': record.refinement_seconds,
                'rotation_errors_deg': record.errors.rotation_errors_deg.tolist(),
                'ordered_pairs': record.errors.ordered_pairs.tolist(),
                'pair_rotation_errors_deg': record.errors.pair_rotation_errors_deg.tolist(),
                'pair_translation_errors_deg': record.errors.pair_translation_errors_deg.tolist(),
                'unordered_pairs': record.errors.unordered_pairs.tolist(),
                'pair_true_angles_deg': record.errors.pair_true_angles_deg.tolist(),
                'camera_center_errors': record.errors.camera_center_errors.tolist(),
            }
            for record in result.records
        ],
    }


def markdown_table(result: EvaluationResult) -> str:
    """One row per N: accuracies in percent, then mean errors."""
    thresholds = result.config.thresholds
    header = [
        'N',
        'sets',
        f'rot. acc@{thresholds.rotation_deg:g}° (%)',
        f'cam. centre acc@{thresholds.camera_center:g} (%)',
        f'RRA@{thresholds.rotation_deg:g} (%)',
        f'RTA@{thresholds.translation_angle_deg:g} (%)',
        f'AUC@{thresholds.auc_max_deg:g} (%)',
        'mean rot. err (°)',
        'mean centre err (scene)',
        'mean transl. angle err (°)',
    ]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---:|' * len(header)]
    for n, m in result.metrics_per_n.items():
        row = [
            str(n),
            str(m.num_view_sets),
            f'{PERCENT * m.rotation_accuracy:.1f}',
            f'{PERCENT * m.camera_center_accuracy:.1f}',
            f'{PERCENT * m.rra:.1f}',
            f'{PERCENT * m.rta:.1f}',
            f'{PERCENT * m.auc:.1f}',
            f'{m.mean_rotation_error_deg:.2f}',
            f'{m.mean_camera_center_error:.3f}',
            f'{m.mean_translation_angle_error_deg:.2f}',
        ]
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines) + '\n'


def _percent_or_dash(value: Optional[float]) -> str:
    return '-' if value is None else f'{PERCENT * value:.1f}'


def angle_bin_table(result: EvaluationResult) -> str:
    """One row per true-angle bin (all N pooled): pairs, rotation accuracies, median error."""
    bins = angle_bin_metrics(result.records)
    header = ['true angle (°)', 'pairs'] + [
        f'rot. acc@{threshold:g}° (%)' for threshold in REPORTED_ROTATION_THRESHOLDS_DEG
    ] + ['median rot. err (°)']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---:|' * len(header)]
    for label, entry in bins.items():
        median = entry['median_rotation_error_deg']
        row = [label, str(entry['num_pairs'])] + [
            _percent_or_dash(value) for value in entry['rotation_accuracy_at_deg'].values()
        ] + ['-' if median is None else f'{median:.2f}']
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines) + '\n'


def markdown_report(result: EvaluationResult) -> str:
    """``results.md``: a heading naming data, estimator and settings, then the table."""
    config = result.config
    intrinsics = 'known' if config.intrinsics_known else 'unknown'
    sets = 'all' if config.sets_per_n is None else str(config.sets_per_n)
    refinement = '' if result.refinement == 'none' else f' (refinement: {result.refinement})'
    boxes = '' if config.object_boxes else ', object boxes withheld'
    return (
        f'# {result.estimator_name}{refinement} on {result.source.name}\n\n'
        f'{result.source.summary()}, {sets} view sets per N, seed {config.seed}, '
        f'intrinsics {intrinsics}{boxes}.\n\n'
        + markdown_table(result)
        + '\nBy the true angle between the two views of a pair (unordered pairs, all N):\n\n'
        + angle_bin_table(result)
    )


def plotted_record(result: EvaluationResult) -> EvaluatedViewSet:
    """The view set ``write_results`` plots: the first one of the largest N."""
    return result.records_for(max(result.config.num_views))[0]


def write_results(
    result: EvaluationResult, output_dir: Path, plot: bool = True
) -> dict[str, Path]:
    """Write ``results.json``, ``results.md`` and (with ``plot``) ``cameras.png``.

    Args:
        result: a harness run.
        output_dir: folder to write into (created if missing).
        plot: also draw the predicted (aligned) against the true cameras of
            ``plotted_record(result)``.

    Returns:
        The written paths by kind: ``'json'``, ``'markdown'`` and ``'plot'``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {'json': output_dir / JSON_FILE_NAME, 'markdown': output_dir / MARKDOWN_FILE_NAME}
    paths['json'].write_text(json.dumps(result_to_json_dict(result), indent=1) + '\n')
    paths['markdown'].write_text(markdown_report(result))
    if plot:
        record = plotted_record(result)
        paths['plot'] = plot_view_set(record.scene, record, output_dir / PLOT_FILE_NAME)
    return paths
