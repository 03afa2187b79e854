"""``raydiff-import-official``: convert an official RayDiffusion release to our model format.

Usage: ``raydiff-import-official <official_dir> <out_dir> [--step N] [--overwrite]``

``official_dir`` holds ``hydra/config.yaml`` and ``checkpoints/ckpt_*.pth`` (e.g. the unzipped
``models/co3d_diffusion``); ``out_dir`` receives ``config.yaml`` and ``model.safetensors``
(the conversion itself: :func:`raydiff_ros.model.checkpoint.import_official`). Exit codes:
0 success, 2 bad arguments, 1 a release that cannot be found, read or written.
"""

import argparse
import sys
from typing import Optional, Sequence

from raydiff_ros.cli.common import EXIT_FAILURE, EXIT_OK, parse_arguments, report_error
from raydiff_ros.model.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    find_official_checkpoint,
    import_official,
)

PROGRAM_NAME = 'raydiff-import-official'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM_NAME,
        description='Convert an official RayDiffusion checkpoint folder (hydra/config.yaml + '
                    f'checkpoints/ckpt_*.pth) to {CONFIG_FILE} + {WEIGHTS_FILE}.')
    parser.add_argument('official_dir', help='official release folder, e.g. co3d_diffusion')
    parser.add_argument('out_dir', help='output folder for the converted model')
    parser.add_argument('--step', type=int, default=None,
                        help='training step to import (ckpt_{step:08d}.pth); default: the '
                             'lexicographically last checkpoint')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing converted model in out_dir')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the importer; returns the exit code (module docstring)."""
    args = parse_arguments(build_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        checkpoint = find_official_checkpoint(args.official_dir, args.step)
        out = import_official(args.official_dir, args.out_dir, step=args.step,
                              overwrite=args.overwrite)
    except (CheckpointError, OSError) as error:
        return report_error(PROGRAM_NAME, error, EXIT_FAILURE)
    print(f'imported {checkpoint} -> {out / WEIGHTS_FILE}, {out / CONFIG_FILE}')
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
