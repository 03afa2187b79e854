"""``raydiff-train``: train (or fine-tune) the ray-diffusion model from a YAML configuration.

Examples::

    raydiff-render --num-sets 96 --views-per-set 8 --image-size 160x120 --workers 2 \\
        --out build/synthetic/tiny
    raydiff-train config/train/tiny_cpu.yaml
    raydiff-train config/train/tiny_cpu.yaml --resume --iterations 400
    torchrun --nproc_per_node 2 -m raydiff_ros.cli.train config/train/tiny_cpu.yaml

The configuration format is documented in :mod:`raydiff_ros.training.config`. Fine-tuning an
imported official checkpoint is the same command with ``model.init_from`` set to the imported
model folder. The log lines go to stdout; progress bars of the feature caching and of the
iterations go to stderr when it is a terminal. Exit codes: 0 success, 2 bad arguments or
configuration, 1 a training error.

Launched by ``torchrun``, the same command trains data-parallel
(:mod:`raydiff_ros.training.distributed`): ``batch_size`` per process, rank 0 logs and writes.
"""

import argparse
from dataclasses import replace
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
from raydiff_ros.data.shards import ShardError
from raydiff_ros.model.checkpoint import CheckpointError
from raydiff_ros.model.config import ConfigError
from raydiff_ros.training import distributed
from raydiff_ros.training.checkpointing import TrainingCheckpointError
from raydiff_ros.training.config import TrainConfig, TrainConfigError, load_train_config
from raydiff_ros.training.trainer import Trainer, TrainingError

PROGRAM_NAME = 'raydiff-train'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM_NAME,
                                     description='Train the ray-diffusion (or regression) '
                                     'model on rendered shards.')
    parser.add_argument('config', type=Path, metavar='CONFIG.yaml', help='training config')
    parser.add_argument('--resume', action='store_true',
                        help='continue from the newest checkpoint in output_dir')
    parser.add_argument('--iterations', type=int, help='override optim.iterations')
    parser.add_argument('--output-dir', type=Path, help='override output_dir')
    parser.add_argument('--device', help='override device (auto, cpu, cuda, cuda:N)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point; returns the exit code."""
    parser = build_parser()
    args = parse_arguments(parser, argv)
    if isinstance(args, int):
        return args
    try:
        config = load_train_config(args.config)
        overrides = {}
        if args.output_dir is not None:
            overrides['output_dir'] = str(args.output_dir)
        if args.device is not None:
            overrides['device'] = args.device
        if overrides:
            config = replace(config, **overrides)
        if args.iterations is not None:
            config = replace(config, optim=replace(config.optim, iterations=args.iterations))
    except (TrainConfigError, ConfigError) as error:
        return report_error(PROGRAM_NAME, error, EXIT_USAGE)
    try:
        return _train(config, args.resume)
    finally:
        distributed.shutdown()  # under torchrun: leave the process group the trainer joined


def _train(config: TrainConfig, resume: bool) -> int:
    try:
        trainer = Trainer(config, resume=resume, log=echo, progress=progress_bar)
    except (ShardError, CheckpointError, TrainingCheckpointError, TrainingError,
            ValueError) as error:  # a setup problem: data, weights, output folder, values
        return report_error(PROGRAM_NAME, error, EXIT_USAGE)
    try:
        result = trainer.run()
    except TrainingError as error:
        return report_error(PROGRAM_NAME, error, EXIT_FAILURE)
    if trainer.dist.is_main:
        print(f'done: {result.iteration} iterations, last loss {result.last_loss:.4f}, '
              f'checkpoint {result.checkpoint}, curves {result.curves}')
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
