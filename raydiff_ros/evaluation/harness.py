"""Evaluation harness: draw view sets from a source, run an estimator, pool the errors per N.

The harness draws view sets from a ``ViewSetSource``. ``DatasetViewSetSource`` samples them
from ONE multi-view scene (a ``MultiViewDataset``): for every N in ``HarnessConfig.num_views``
it draws ``sets_per_n`` view sets of N distinct images (without replacement within a set, in
random order) from a ``numpy.random.Generator`` seeded with ``(seed, N)``, so the sets for one
N do not depend on which other N are evaluated. Other sources (``shard_source``: many scenes,
one per view set) draw from several scenes. Each set goes to the estimator
(``estimator.estimate(view_set.estimation_input())``); its point estimate is
scored against the ground truth with ``evaluate_view_set`` using the scene scale of the WHOLE
scene the set was drawn from (all of its cameras, as RayDiffusion does per sequence). Errors
are pooled over the sets of one N and then thresholded (``pool_view_set_errors``). The wall
time of each ``estimate`` call is recorded.
"""

from dataclasses import dataclass, field, replace
import time
from typing import Any, Iterator, Optional, Protocol, Sequence, Union

import numpy as np

from raydiff_ros.estimation.contract import EstimationResult, EstimatorError, PoseEstimator
from raydiff_ros.evaluation.datasets import MultiViewDataset
from raydiff_ros.evaluation.view_set import SceneViewSet
from raydiff_ros.geometry.metrics import (
    MIN_VIEWS,
    MetricThresholds,
    PooledMetrics,
    ViewSetErrors,
    evaluate_view_set,
    pool_view_set_errors,
)
from raydiff_ros.progress import Progress, no_progress

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
        sets_per_n: view sets drawn per N; None lets the source decide (a single dataset:
            ``DEFAULT_SETS_PER_N``; shards: every selected view set).
        seed: seed of the view-set sampling.
        intrinsics_known: whether estimators receive the true K.
        object_boxes: whether estimators receive the object boxes of object-centric synthetic
            sets (off: they crop whole images, as the node does on a robot).
        thresholds: accuracy thresholds.
    """

    num_views: tuple[int, ...] = DEFAULT_NUM_VIEWS
    sets_per_n: Optional[int] = DEFAULT_SETS_PER_N
    seed: int = DEFAULT_SEED
    intrinsics_known: bool = True
    object_boxes: bool = True
    thresholds: MetricThresholds = field(default_factory=MetricThresholds)

    def __post_init__(self) -> None:
        num_views = tuple(int(n) for n in self.num_views)
        if not num_views:
            raise HarnessError('num_views is empty')
        if min(num_views) < MIN_VIEWS:
            raise HarnessError(f'every N must be at least {MIN_VIEWS}, got {num_views}')
        if len(set(num_views)) != len(num_views):
            raise HarnessError(f'num_views has duplicates: {num_views}')
        if self.sets_per_n is not None and self.sets_per_n < 1:
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


class ViewSetSource(Protocol):
    """Where the harness draws view sets from (one scene, or many scenes of one view set each).

    Attributes:
        name: name of the data (printed in reports).
    """

    name: str

    def check_num_views(
        self, num_views: Sequence[int], sets_per_n: Optional[int], seed: int
    ) -> None:
        """Raise ``HarnessError`` unless every N can be drawn for every set to be drawn."""

    def num_sets(self, sets_per_n: Optional[int], seed: int) -> int:
        """How many view sets ``draw`` yields for each N."""

    def draw(
        self, num_views: int, sets_per_n: Optional[int], seed: int
    ) -> Iterator[SceneViewSet]:
        """The view sets of N views, one at a time (a source may read each set lazily), with
        everything the data has marked known (the harness withholds what its config says)."""

    def describe(self) -> dict[str, Any]:
        """A JSON-serialisable summary (name, format, folder, sizes)."""

    def summary(self) -> str:
        """One line describing the data, for ``results.md``."""


class DatasetViewSetSource:
    """View sets of one ``MultiViewDataset``, sampled by ``sample_view_sets``."""

    def __init__(self, dataset: MultiViewDataset) -> None:
        self.dataset = dataset
        self.name = dataset.name

    def check_num_views(
        self, num_views: Sequence[int], sets_per_n: Optional[int], seed: int
    ) -> None:
        del sets_per_n, seed  # every set is drawn from the same images
        too_large = [n for n in num_views if n > len(self.dataset)]
        if too_large:
            raise HarnessError(
                f'dataset {self.dataset.name} has {len(self.dataset)} images; cannot draw '
                f'N = {too_large}'
            )

    def num_sets(self, sets_per_n: Optional[int], seed: int) -> int:
        del seed  # the count does not depend on the draw
        return DEFAULT_SETS_PER_N if sets_per_n is None else sets_per_n

    def draw(
        self, num_views: int, sets_per_n: Optional[int], seed: int
    ) -> Iterator[SceneViewSet]:
        count = self.num_sets(sets_per_n, seed)
        for indices in sample_view_sets(len(self.dataset), num_views, count, seed):
            yield SceneViewSet(self.dataset, indices)

    def describe(self) -> dict[str, Any]:
        return {
            'name': self.dataset.name,
            'root': str(self.dataset.root),
            'source_format': self.dataset.source_format,
            'num_images': len(self.dataset),
            'scene_scale': self.dataset.scene_scale,
        }

    def summary(self) -> str:
        return f'{len(self.dataset)} images ({self.dataset.source_format})'


@dataclass(frozen=True, eq=False)
class EvaluatedViewSet:
    """One evaluated view set: which images of which scene, what was predicted, its errors.

    ``scene`` is the dataset the set was drawn from (its ground truth and scene scale);
    ``prediction`` the estimator's result and ``pred_R``, ``pred_t`` its point estimate as
    world-to-camera (N, 3, 3), (N, 3) with the world = view 0 (what the metrics take);
    ``seconds`` the wall time of the estimator's ``estimate`` call (refinement included);
    ``refinement_seconds`` the part a refinement (``raydiff-eval --refine``) spent, from the
    result's ``timings_s['refinement']``; None for estimators that do not refine.
    """

    indices: tuple[int, ...]
    prediction: EstimationResult
    pred_R: np.ndarray
    pred_t: np.ndarray
    errors: ViewSetErrors
    scene: MultiViewDataset
    seconds: float
    refinement_seconds: Optional[float] = None

    @property
    def num_views(self) -> int:
        return len(self.indices)


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Everything one harness run produced.

    Attributes:
        source: where the view sets were drawn from.
        estimator_name: ``name`` of the estimator.
        config: the harness configuration.
        metrics_per_n: pooled metrics per N, in the order of ``config.num_views``.
        records: every evaluated view set, grouped by N in the same order.
        refinement: the refinement applied after the estimator (``'none'``, ``'bundle'``).
    """

    source: ViewSetSource
    estimator_name: str
    config: HarnessConfig
    metrics_per_n: dict[int, PooledMetrics]
    records: tuple[EvaluatedViewSet, ...]
    refinement: str = 'none'

    def records_for(self, num_views: int) -> list[EvaluatedViewSet]:
        return [r for r in self.records if r.num_views == num_views]


def _check_prediction(prediction: EstimationResult, view_set: SceneViewSet, name: str) -> None:
    if not isinstance(prediction, EstimationResult):
        raise EstimatorError(f'estimator {name!r} returned {type(prediction).__name__}')
    if prediction.num_views != view_set.num_views:
        raise EstimatorError(
            f'estimator {name!r} returned {prediction.num_views} cameras for '
            f'{view_set.num_views} images'
        )


def _evaluate_view_set(estimator: PoseEstimator, view_set: SceneViewSet) -> EvaluatedViewSet:
    """Run the estimator on one view set (timed) and score its point estimate."""
    inputs = view_set.estimation_input()
    start = time.perf_counter()
    prediction = estimator.estimate(inputs)
    seconds = time.perf_counter() - start
    _check_prediction(prediction, view_set, estimator.name)
    pred_R, pred_t = prediction.world_to_camera()
    errors = evaluate_view_set(
        pred_R,
        pred_t,
        view_set.ground_truth_R,
        view_set.ground_truth_t,
        view_set.dataset.scene_scale,
    )
    return EvaluatedViewSet(
        indices=view_set.indices, prediction=prediction, pred_R=pred_R, pred_t=pred_t,
        errors=errors, scene=view_set.dataset, seconds=seconds,
        refinement_seconds=prediction.timings_s.get('refinement'))


def run_evaluation(
    source: Union[MultiViewDataset, ViewSetSource],
    estimator: PoseEstimator,
    config: Optional[HarnessConfig] = None,
    refinement: str = 'none',
    progress: Progress = no_progress,
) -> EvaluationResult:
    """Evaluate ``estimator`` on view sets drawn from ``source``.

    Args:
        source: a dataset (one scene; wrapped in ``DatasetViewSetSource``) or any
            ``ViewSetSource``.
        estimator: the estimator under test.
        config: what to sample and how to threshold; default ``HarnessConfig()``.
        refinement: name of the refinement wrapped around the estimator (for the reports).
        progress: hook counting the evaluated view sets (all N together).

    Returns:
        Pooled metrics per N and every per-set record.
    """
    config = config or HarnessConfig()
    if isinstance(source, MultiViewDataset):
        source = DatasetViewSetSource(source)
    source.check_num_views(config.num_views, config.sets_per_n, config.seed)
    records: list[EvaluatedViewSet] = []
    metrics_per_n: dict[int, PooledMetrics] = {}
    total = len(config.num_views) * source.num_sets(config.sets_per_n, config.seed)
    with progress('evaluate', total=total, unit='set') as bar:
        for num_views in config.num_views:
            errors_for_n = []
            for view_set in source.draw(num_views, config.sets_per_n, config.seed):
                view_set = replace(view_set, intrinsics_known=config.intrinsics_known,
                                   boxes_known=config.object_boxes)
                record = _evaluate_view_set(estimator, view_set)
                records.append(record)
                errors_for_n.append(record.errors)
                bar.update()
            if not errors_for_n:
                raise HarnessError(f'{source.name}: no view sets of N = {num_views} to evaluate')
            metrics_per_n[num_views] = pool_view_set_errors(errors_for_n, config.thresholds)
    return EvaluationResult(
        source=source,
        estimator_name=estimator.name,
        config=config,
        metrics_per_n=metrics_per_n,
        records=tuple(records),
        refinement=refinement,
    )
