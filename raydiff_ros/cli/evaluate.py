"""``raydiff-eval``: evaluate a pose estimator on a dataset with known poses.

Example::

    raydiff-eval ../shared/data/temple_ring --estimator ground_truth --num-views 2..8 \\
        --sets-per-n 5 --seed 0 --output /tmp/eval --plot
    raydiff-eval /data/synthetic_val --estimator noisy_oracle --scene-type rig --output /tmp/e

A folder of synthetic shards (``index.json`` / ``shard_*.npz``, from ``raydiff-render``) is
evaluated view set by view set, each its own scene (``shard_source``).

Prints the markdown table and writes ``results.json``, ``results.md`` (and ``cameras.png``
with ``--plot``) into the output folder; a progress bar of the evaluated view sets goes to
stderr when it is a terminal. Exit codes: 0 success, 2 bad arguments, dataset or
estimator errors.
"""

import argparse
from pathlib import Path
import sys
from typing import Optional, Sequence

from raydiff_ros.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    add_option_argument,
    estimator_help,
    estimator_name,
    parse_arguments,
    progress_bar,
    report_error,
)
from raydiff_ros.estimation import (
    REFINEMENTS,
    EstimatorError,
    EstimatorOptions,
    create_estimator,
)
from raydiff_ros.evaluation.datasets import DEFAULT_BACKGROUND_RGB, DatasetError, load_dataset
from raydiff_ros.evaluation.harness import (
    DEFAULT_SETS_PER_N,
    DatasetViewSetSource,
    HarnessConfig,
    HarnessError,
    ViewSetSource,
    run_evaluation,
)
from raydiff_ros.evaluation.report import markdown_table, write_results
from raydiff_ros.evaluation.shard_source import (
    SCENE_TYPE_ALL,
    SCENE_TYPES,
    SET_CHOICES,
    ShardViewSetSource,
    is_shard_folder,
)
from raydiff_ros.geometry.metrics import MetricInputError

PROGRAM_NAME = 'raydiff-eval'
DEFAULT_NUM_VIEWS_SPEC = '2..8'
DEFAULT_SET_CHOICE = 'first'
DEFAULT_SEED = 0


def parse_num_views(spec: str) -> tuple[int, ...]:
    """Parse view counts: ``'2..8'`` (inclusive range), ``'2,4,8'`` or ``'5'``."""
    text = spec.strip()
    try:
        if '..' in text:
            low, high = (int(part) for part in text.split('..', 1))
            values = tuple(range(low, high + 1))
        else:
            values = tuple(int(part) for part in text.split(','))
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f'bad view counts {spec!r}: use "2..8", "2,4,8" or a single number'
        ) from error
    if not values:
        raise argparse.ArgumentTypeError(f'empty range {spec!r}')
    return values


def parse_rgb(spec: str) -> tuple[int, int, int]:
    """Parse a colour ``'R,G,B'`` with components 0..255."""
    try:
        values = tuple(int(part) for part in spec.split(','))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f'bad colour {spec!r}: use R,G,B') from error
    if len(values) != 3 or any(not 0 <= v <= 255 for v in values):
        raise argparse.ArgumentTypeError(f'bad colour {spec!r}: three values in 0..255')
    return values  # type: ignore[return-value]


def open_view_set_source(
    path: Path,
    background_rgb: Sequence[int] = DEFAULT_BACKGROUND_RGB,
    scene_type: str = SCENE_TYPE_ALL,
    set_choice: str = DEFAULT_SET_CHOICE,
) -> ViewSetSource:
    """A shard folder's ``ShardViewSetSource``, or the ``DatasetViewSetSource`` of a dataset.

    Raises:
        DatasetError: nothing readable at ``path``, or shard-only options for a dataset.
    """
    if is_shard_folder(path):
        return ShardViewSetSource(path, scene_type=scene_type, set_choice=set_choice)
    if scene_type != SCENE_TYPE_ALL or set_choice != DEFAULT_SET_CHOICE:
        raise DatasetError(f'{path} is not a shard folder: --scene-type and --set-choice '
                           'apply to shard folders (index.json, shard_*.npz) only')
    return DatasetViewSetSource(load_dataset(path, background_rgb=background_rgb))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM_NAME,
        description='Evaluate a camera pose estimator on sampled view sets of a dataset '
        'with known poses (RayDiffusion and PoseDiffusion metrics).',
    )
    parser.add_argument(
        'dataset', type=Path, metavar='DATASET_PATH',
        help='dataset folder or file: poses.json, transforms*.json (NeRF), *_par.txt '
        '(Middlebury), or a folder of synthetic shards (index.json, shard_*.npz)',
    )
    parser.add_argument(
        '--estimator', required=True, type=estimator_name(), metavar='NAME',
        help=estimator_help(),
    )
    parser.add_argument(
        '--num-views', type=parse_num_views, default=parse_num_views(DEFAULT_NUM_VIEWS_SPEC),
        metavar='SPEC', help='view-set sizes: "2..8", "2,4,8" or "5" (default 2..8)',
    )
    parser.add_argument(
        '--sets-per-n', type=int, default=None, metavar='K',
        help=f'view sets per N (default: {DEFAULT_SETS_PER_N} for one scene, every view set '
        'of a shard folder)',
    )
    parser.add_argument(
        '--scene-type', choices=SCENE_TYPES, default=SCENE_TYPE_ALL,
        help='shard folders: evaluate only view sets of this scene type (default all)',
    )
    parser.add_argument(
        '--set-choice', choices=SET_CHOICES, default=DEFAULT_SET_CHOICE,
        help='shard folders: with --sets-per-n K use the first K view sets or K drawn from '
        'the seed (default first)',
    )
    parser.add_argument(
        '--seed', type=int, default=DEFAULT_SEED,
        help='seed of view-set sampling and of random estimators',
    )
    add_option_argument(parser)
    parser.add_argument('--output', type=Path, required=True, metavar='DIR')
    parser.add_argument('--model', type=Path, metavar='DIR',
                        help="learned estimators: model folder (default: the estimator's "
                        'shipped model under models/)')
    parser.add_argument('--samples', type=int, default=1, metavar='K',
                        help='ray_diffusion: diffusion samples per view set')
    parser.add_argument('--device', default='auto',
                        help='ray models: auto, cpu, cuda or cuda:N')
    parser.add_argument('--plot', action='store_true', help='also write cameras.png')
    parser.add_argument(
        '--refine', choices=tuple(REFINEMENTS), default='none',
        help='refinement: none; guided (Sampson-error guidance of the last diffusion steps '
        'from SIFT matches; ray_diffusion only); bundle (SIFT matches + robust Sampson-error '
        'bundle adjustment after any estimator). Prints its mean time per view set',
    )
    parser.add_argument(
        '--unknown-intrinsics', action='store_true',
        help='do not give the true intrinsics to the estimator',
    )
    parser.add_argument(
        '--no-boxes', action='store_true',
        help='do not give the object boxes of object-centric synthetic sets to the estimator '
        '(whole-image crops, as the node sees images)',
    )
    parser.add_argument(
        '--background', type=parse_rgb, default=DEFAULT_BACKGROUND_RGB, metavar='R,G,B',
        help='colour for transparent pixels (default 255,255,255)',
    )
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``raydiff-eval``; returns the exit code (0 ok, 2 on any usage or input error)."""
    parser = build_parser()
    args = parse_arguments(parser, argv)
    if isinstance(args, int):
        return args

    try:
        source = open_view_set_source(args.dataset, args.background, args.scene_type,
                                      args.set_choice)
        sets_per_n = args.sets_per_n
        if sets_per_n is None and isinstance(source, DatasetViewSetSource):
            sets_per_n = DEFAULT_SETS_PER_N
        config = HarnessConfig(
            num_views=args.num_views,
            sets_per_n=sets_per_n,
            seed=args.seed,
            intrinsics_known=not args.unknown_intrinsics,
            object_boxes=not args.no_boxes,
        )
        estimator = create_estimator(args.estimator, EstimatorOptions(
            seed=args.seed, model_dir=args.model, device=args.device, num_samples=args.samples,
            refinement=args.refine, extra=dict(args.options)))
        result = run_evaluation(source, estimator, config, refinement=args.refine,
                                progress=progress_bar)
        paths = write_results(result, args.output, plot=args.plot)
    except (DatasetError, EstimatorError, HarnessError, MetricInputError, ValueError,
            RuntimeError, FileNotFoundError) as error:  # incl. model loading and inference
        return report_error(PROGRAM_NAME, error, EXIT_USAGE)
    except OSError as error:
        return report_error(PROGRAM_NAME, f'cannot write results: {error}', EXIT_USAGE)

    print(markdown_table(result), end='')
    refinement_times = [r.refinement_seconds for r in result.records
                        if r.refinement_seconds is not None]
    if refinement_times:
        print(f'refinement: {sum(refinement_times) / len(refinement_times):.3f} s per view set '
              f'(mean of {len(refinement_times)})')
    for kind, path in paths.items():
        print(f'{kind}: {path}')
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
