"""``raydiff-compare``: one side-by-side markdown table of several ``raydiff-eval`` results.

Usage::

    raydiff-compare A/results.json B/results.json --out table.md [--labels "model" "model + BA"]

Writes the table (layout: :mod:`raydiff_ros.evaluation.compare`) to ``--out`` and prints it.
Exit codes: 0 success, 2 bad arguments, unreadable results or an unwritable output.
"""

import argparse
from pathlib import Path
import sys
from typing import Optional, Sequence

from raydiff_ros.cli.common import EXIT_OK, EXIT_USAGE, parse_arguments, report_error
from raydiff_ros.evaluation.compare import CompareError, comparison_table, load_result

PROGRAM_NAME = 'raydiff-compare'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM_NAME,
        description='Write one side-by-side markdown table of several raydiff-eval results.',
    )
    parser.add_argument('results', nargs='+', type=Path, metavar='RESULT.json')
    parser.add_argument('--out', type=Path, required=True, metavar='TABLE.md')
    parser.add_argument('--labels', nargs='+', metavar='LABEL',
                        help='one column-group label per result (default: estimator name and '
                        'refinement from each JSON)')
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the comparison; returns the exit code (module docstring)."""
    args = parse_arguments(build_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        table = comparison_table([load_result(path) for path in args.results], args.labels)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table)
    except CompareError as error:
        return report_error(PROGRAM_NAME, error, EXIT_USAGE)
    except OSError as error:
        return report_error(PROGRAM_NAME, f'cannot write {args.out}: {error}', EXIT_USAGE)
    print(table, end='')
    return EXIT_OK


if __name__ == '__main__':
    sys.exit(main())
