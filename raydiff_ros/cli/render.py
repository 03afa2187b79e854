"""``raydiff-render``: render synthetic multi-view training data into shards.

Example::

    raydiff-render --num-sets 2000 --views-per-set 8 --seed 0 --workers 16 \\
        --out build/synthetic/train

Writes ``shard_*.npz`` and ``index.json`` into ``--out`` (format: ``raydiff_ros/data/README.md``)
and prints a summary; a progress bar of the view sets goes to stderr when it is a terminal.
Re-running the same command keeps finished shards (resume). Exit codes:
0 success, 2 bad arguments, 1 a generation error.
"""

import argparse
from pathlib import Path
import sys
from typing import Optional, Sequence

from raydiff_ros.cli.common import (
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    echo,
    parse_arguments,
    progress_bar,
    report_error,
)
from raydiff_ros.data.assets import AssetError
from raydiff_ros.data.generate import (
    MAX_VIEWS_PER_SET,
    MIN_VIEWS_PER_SET,
    GenerationError,
    GeneratorConfig,
    generate_dataset,
)
from raydiff_ros.data.scene_sampling import RigSceneConfig, SceneConfig
from raydiff_ros.data.shards import ShardError

PROGRAM_NAME = 'raydiff-render'
DEFAULT_SETS_PER_SHARD = 16


def parse_image_size(spec: str) -> tuple[int, int]:
    """Parse ``'WxH'`` (e.g. ``320x240``) into ``(W, H)``."""
    try:
        width, height = (int(part) for part in spec.lower().split('x'))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f'bad image size {spec!r}: use WxH, e.g. 320x240') \
            from error
    return width, height


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f'{text} is not a probability in [0, 1]')
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM_NAME,
        description='Render synthetic multi-view scenes (object-centric and robot-rig) with '
        'pybullet TinyRenderer into training shards.',
    )
    parser.add_argument('--num-sets', type=int, required=True, help='view sets to render')
    parser.add_argument('--views-per-set', type=int, default=8,
                        help=f'views per set, {MIN_VIEWS_PER_SET}..{MAX_VIEWS_PER_SET} '
                        '(default 8)')
    parser.add_argument('--seed', type=int, default=0, help='run seed (default 0)')
    parser.add_argument('--workers', type=int, default=1,
                        help='parallel render processes (default 1)')
    parser.add_argument('--out', type=Path, required=True, help='output folder')
    parser.add_argument('--image-size', type=parse_image_size, default=(320, 240),
                        help='rendered image size WxH (default 320x240)')
    parser.add_argument('--sets-per-shard', type=int, default=DEFAULT_SETS_PER_SHARD,
                        help=f'view sets per shard file (default {DEFAULT_SETS_PER_SHARD})')
    parser.add_argument('--object-fraction', type=_probability,
                        default=SceneConfig.object_scene_probability,
                        help='probability of an object-centric scene, else a robot rig '
                        f'(default {SceneConfig.object_scene_probability})')
    parser.add_argument('--outward-fraction', type=_probability,
                        default=RigSceneConfig.outward_probability,
                        help='probability that a rig scene is an outward-looking ring in a '
                        f'furnished room (default {RigSceneConfig.outward_probability})')
    parser.add_argument('--overwrite', action='store_true',
                        help='re-render shards that already exist')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit code."""
    parser = build_parser()
    args = parse_arguments(parser, argv)
    if isinstance(args, int):
        return args
    if args.num_sets < 1 or args.workers < 1 or args.sets_per_shard < 1:
        return report_error(PROGRAM_NAME, '--num-sets, --workers and --sets-per-shard must be '
                            'positive', EXIT_USAGE)
    try:
        config = GeneratorConfig(
            image_width=args.image_size[0], image_height=args.image_size[1],
            views_per_set=args.views_per_set,
            scene=SceneConfig(object_scene_probability=args.object_fraction,
                              rig_scene=RigSceneConfig(outward_probability=args.outward_fraction)),
        )
    except ValueError as error:
        return report_error(PROGRAM_NAME, error, EXIT_USAGE)

    def report(shard: dict) -> None:
        echo(f'wrote {shard["path"]} ({shard["num_sets"]} sets, {shard["seconds"]:.1f} s)')

    try:
        summary = generate_dataset(args.out, args.num_sets, args.seed, config,
                                   sets_per_shard=args.sets_per_shard, workers=args.workers,
                                   overwrite=args.overwrite, on_shard=report,
                                   progress=progress_bar)
    except (AssetError, GenerationError, ShardError, OSError) as error:
        return report_error(PROGRAM_NAME, error, EXIT_FAILURE)
    print(f'{summary.num_sets} view sets ({summary.num_views} views) in {summary.out_dir}: '
          f'{summary.shards_written} shards written, {summary.shards_kept} kept, '
          f'{summary.seconds:.1f} s ({summary.views_per_second:.1f} views/s)')
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
