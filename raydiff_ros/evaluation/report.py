"""Serialise a harness run: a JSON document and a markdown table.

``results.json`` holds the dataset summary, the configuration, the pooled metrics per N and
every view set (indices and per-pair / per-camera errors). ``results.md`` holds one table row
per N with the accuracies (RayDiffusion rotation and camera-centre accuracy, PoseDiffusion
RRA, RTA and AUC) and the mean errors.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from raydiff_ros.evaluation.harness import EvaluationResult

JSON_FILE_NAME = 'results.json'
MARKDOWN_FILE_NAME = 'results.md'
JSON_FORMAT_TAG = 'raydiff_ros.evaluation.v1'
PERCENT = 100.0


def result_to_json_dict(result: EvaluationResult) -> dict[str, Any]:
    """A JSON-serialisable description of a harness run (plain lists, floats and strings)."""
    dataset = result.dataset
    return {
        'format': JSON_FORMAT_TAG,
        'dataset': {
            'name': dataset.name,
            'root': str(dataset.root),
            'source_format': dataset.source_format,
            'num_images': len(dataset),
            'scene_scale': dataset.scene_scale,
        },
        'estimator': result.estimator_name,
        'config': {
            'num_views': list(result.config.num_views),
            'sets_per_n': result.config.sets_per_n,
            'seed': result.config.seed,
            'intrinsics_known': result.config.intrinsics_known,
            'thresholds': asdict(result.config.thresholds),
        },
        'metrics_per_n': {
            str(n): {k: v for k, v in asdict(m).items() if k != 'thresholds'}
            for n, m in result.metrics_per_n.items()
        },
        'view_sets': [
            {
                'num_views': record.num_views,
                'indices': list(record.indices),
                'images': [dataset.image_paths[i].name for i in record.indices],
                'rotation_errors_deg': record.errors.rotation_errors_deg.tolist(),
                'ordered_pairs': record.errors.ordered_pairs.tolist(),
                'pair_rotation_errors_deg': record.errors.pair_rotation_errors_deg.tolist(),
                'pair_translation_errors_deg': record.errors.pair_translation_errors_deg.tolist(),
                'unordered_pairs': record.errors.unordered_pairs.tolist(),
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


def markdown_report(result: EvaluationResult) -> str:
    """``results.md``: a heading naming dataset, estimator and settings, then the table."""
    config = result.config
    intrinsics = 'known' if config.intrinsics_known else 'unknown'
    return (
        f'# {result.estimator_name} on {result.dataset.name}\n\n'
        f'{len(result.dataset)} images ({result.dataset.source_format}), '
        f'{config.sets_per_n} view sets per N, seed {config.seed}, intrinsics {intrinsics}.\n\n'
        + markdown_table(result)
    )
