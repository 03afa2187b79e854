"""What every console command shares: exit codes, argument parsing, error reporting.

Commands return their exit code from ``main(argv)`` instead of raising SystemExit, so tests
can call ``main([...])``; the console-script wrappers pass it to ``sys.exit``.
"""

import argparse
import sys
from typing import Optional, Sequence, Union

EXIT_OK = 0
"""The command did what was asked."""
EXIT_FAILURE = 1
"""The command was well formed but failed while running (rendering, training, writing...)."""
EXIT_USAGE = 2
"""Bad arguments or inputs (argparse's own code for usage errors)."""


def parse_arguments(parser: argparse.ArgumentParser,
                    argv: Optional[Sequence[str]]) -> Union[argparse.Namespace, int]:
    """The parsed arguments, or the exit code when argparse stopped (``--help``: 0, errors: 2).

    argparse has already printed its help or error message in that case.
    """
    try:
        return parser.parse_args(argv)
    except SystemExit as exit_request:
        return EXIT_OK if exit_request.code in (None, 0) else EXIT_USAGE


def report_error(program: str, message: object, exit_code: int) -> int:
    """Print ``<program>: error: <message>`` to stderr; returns ``exit_code`` for ``main``."""
    print(f'{program}: error: {message}', file=sys.stderr)
    return exit_code

