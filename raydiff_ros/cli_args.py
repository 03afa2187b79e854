"""Argument parsing shared by the console commands: parse without letting argparse exit."""

import argparse
from typing import Optional, Sequence, Union

EXIT_OK = 0
EXIT_USAGE = 2


def parse_arguments(parser: argparse.ArgumentParser,
                    argv: Optional[Sequence[str]]) -> Union[argparse.Namespace, int]:
    """The parsed arguments, or the exit code when argparse stopped (``--help``: 0, errors: 2).

    argparse has already printed its help or error message in that case; commands return the
    code from ``main`` instead of raising SystemExit, so tests can call ``main([...])``.
    """
    try:
        return parser.parse_args(argv)
    except SystemExit as exit_request:
        return EXIT_OK if exit_request.code in (None, 0) else EXIT_USAGE
