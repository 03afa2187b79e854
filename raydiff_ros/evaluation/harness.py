"""Evaluation harness: sample view sets, run an estimator, pool the errors per N.

For every N in ``HarnessConfig.num_views`` the harness draws ``sets_per_n`` view sets of N
distinct images (without replacement within a set, in random order) from a
``numpy.random.Generator`` seeded with ``(seed, N)``, so the sets for one N do not depend on
which other N are evaluated. Each set goes to the estimator; its prediction is scored against
the ground truth with ``evaluate_view_set`` using the scene scale of the WHOLE dataset (all of
its cameras, as RayDiffusion does per sequence). Errors are pooled over the sets of one N and
then thresholded (``pool_view_set_errors``).
"""

from dataclasses import dataclass, field
import json
from pathlib import Path
from typing import Optional

import numpy as np

from raydiff_ros.evaluation.datasets import MultiViewDataset
from raydiff_ros.evaluation.estimators import EstimatorError, PoseEstimate, PoseEstimator
from raydiff_ros.evaluation.plotting import PLOT_FILE_NAME, plot_view_set
from raydiff_ros.evaluation.report import (
    JSON_FILE_NAME,
    MARKDOWN_FILE_NAME,
    markdown_report,
    result_to_json_dict,
)
from raydiff_ros.evaluation.view_set import ViewSet
from raydiff_ros.geometry.metrics import (
    MIN_VIEWS,
    MetricThresholds,
    PooledMetrics,
    ViewSetErrors,
    evaluate_view_set,
    pool_view_set_errors,
)

DEFAULT_NUM_VIEWS = tuple(range(2, 9))
"""N = 2..8, the RayDiffusion / RelPose++ protocol."""

DEFAULT_SETS_PER_N = 5
"""View sets per N (RayDiffusion draws 5 orderings per sequence)."""

DEFAULT_SEED = 0


class HarnessError(ValueError):
    """The harness configuration does not fit the dataset."""


@dataclass(frozen=True)
class HarnessConfig:
    """What to evaluate.

    Attributes:
        num_views: the view-set sizes N (each >= 2).
        sets_per_n: view sets drawn per N.
        seed: seed of the view-set sampling.
        intrinsics_known: whether estimators receive the true K.
        thresholds: accuracy thresholds.
    """

    num_views: tuple[int, ...] = DEFAULT_NUM_VIEWS
    sets_per_n: int = DEFAULT_SETS_PER_N
    seed: int = DEFAULT_SEED
    intrinsics_known: bool = True
    thresholds: MetricThresholds = field(default_factory=MetricThresholds)

    def __post_init__(self) -> None:
        num_views = tuple(int(n) for n in self.num_views)
        if not num_views:
            raise HarnessError('num_views is empty')
        if min(num_views) < MIN_VIEWS:
            raise HarnessError(f'every N must be at least {MIN_VIEWS}, got {num_views}')
        if len(set(num_views)) != len(num_views):
            raise HarnessError(f'num_views has duplicates: {num_views}')
        if self.sets_per_n < 1:
            raise HarnessError(f'sets_per_n must be at least 1, got {self.sets_per_n}')
        object.__setattr__(self, 'num_views', num_views)


def sample_view_sets(
    num_images: int, num_views: int, sets_per_n: int, seed: int
) -> list[tuple[int, ...]]:
    """Draw ``sets_per_n`` view sets of ``num_views`` distinct indices in [0, num_images).

    The generator is ``numpy.random.default_rng([seed, num_views])``; sets may repeat across
    draws (they are independent), indices within a set are distinct and in drawn order.
    """
    if num_views > num_images:
        raise HarnessError(f'cannot draw {num_views} views from {num_images} images')
    if num_views < MIN_VIEWS:
        raise HarnessError(f'a view set needs at least {MIN_VIEWS} views, got {num_views}')
    rng = np.random.default_rng([seed, num_views])
    return [
        tuple(int(i) for i in rng.choice(num_images, size=num_views, replace=False))
        for _ in range(sets_per_n)
    ]


@dataclass(frozen=True, eq=False)
class ViewSetRecord:
    """One evaluated view set: which images, what was predicted, and its errors.

    ``refinement_seconds`` is the time a refining estimator (one with a
    ``last_refinement_seconds`` attribute, e.g. ``raydiff-eval --refine bundle``) spent on
    refinement of this set; None for estimators that do not refine.
    """

    indices: tuple[int, ...]
    prediction: PoseEstimate
    errors: ViewSetErrors
    refinement_seconds: Optional[float] = None

    @property
    def num_views(self) -> int:
        return len(self.indices)


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Everything one harness run produced.

    Attributes:
        dataset: the evaluated dataset.
        estimator_name: ``name`` of the estimator.
        config: the harness configuration.
        metrics_per_n: pooled metrics per N, in the order of ``config.num_views``.
        records: every evaluated view set, grouped by N in the same order.
    """

    dataset: MultiViewDataset
    estimator_name: str
    config: HarnessConfig
    metrics_per_n: dict[int, PooledMetrics]
    records: tuple[ViewSetRecord, ...]

    def records_for(self, num_views: int) -> list[ViewSetRecord]:
        return [r for r in self.records if r.num_views == num_views]


def _check_prediction(prediction: PoseEstimate, view_set: ViewSet, name: str) -> None:
    if not isinstance(prediction, PoseEstimate):
        raise EstimatorError(f'estimator {name!r} returned {type(prediction).__name__}')
    if prediction.num_views != view_set.num_views:
        raise EstimatorError(
            f'estimator {name!r} returned {prediction.num_views} cameras for '
            f'{view_set.num_views} images'
        )


def run_evaluation(
    dataset: MultiViewDataset,
    estimator: PoseEstimator,
    config: Optional[HarnessConfig] = None,
) -> EvaluationResult:
    """Evaluate ``estimator`` on view sets sampled from ``dataset``.

    Args:
        dataset: images with ground-truth cameras.
        estimator: the estimator under test.
        config: what to sample and how to threshold; default ``HarnessConfig()``.

    Returns:
        Pooled metrics per N and every per-set record.
    """
    config = config or HarnessConfig()
    too_large = [n for n in config.num_views if n > len(dataset)]
    if too_large:
        raise HarnessError(
            f'dataset {dataset.name} has {len(dataset)} images; cannot draw N = {too_large}'
        )
    records: list[ViewSetRecord] = []
    metrics_per_n: dict[int, PooledMetrics] = {}
    for num_views in config.num_views:
        errors_for_n = []
        for indices in sample_view_sets(len(dataset), num_views, config.sets_per_n, config.seed):
            view_set = ViewSet(dataset, indices, config.intrinsics_known)
            prediction = estimator.estimate(view_set)
            _check_prediction(prediction, view_set, estimator.name)
            errors = evaluate_view_set(
                prediction.R,
                prediction.t,
                view_set.ground_truth_R,
                view_set.ground_truth_t,
                dataset.scene_scale,
            )
            records.append(ViewSetRecord(
                indices=indices, prediction=prediction, errors=errors,
                refinement_seconds=getattr(estimator, 'last_refinement_seconds', None)))
            errors_for_n.append(errors)
        metrics_per_n[num_views] = pool_view_set_errors(errors_for_n, config.thresholds)
    return EvaluationResult(
        dataset=dataset,
        estimator_name=estimator.name,
        config=config,
        metrics_per_n=metrics_per_n,
        records=tuple(records),
    )


def plotted_record(result: EvaluationResult) -> ViewSetRecord:
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
        paths['plot'] = plot_view_set(
            result.dataset, plotted_record(result), output_dir / PLOT_FILE_NAME
        )
    return paths
