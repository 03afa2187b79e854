"""What every console command shares: exit codes, argument parsing, error reporting, progress.

Commands return their exit code from ``main(argv)`` instead of raising SystemExit, so tests
can call ``main([...])``; the console-script wrappers pass it to ``sys.exit``. Long-running
commands hand ``progress_bar`` to the library as its ``raydiff_ros.progress.Progress`` hook and
print their own lines with ``echo`` so that a bar on the terminal is not torn.
"""

import argparse
import sys
from typing import Callable, Optional, Sequence, Union

from tqdm import tqdm

from raydiff_ros.estimation import (
    EstimatorError,
    available_estimators,
    estimator_entry,
    parse_option,
)

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


def estimator_name(include_ground_truth: bool = True) -> Callable[[str], str]:
    """An argparse ``type`` for ``--estimator``: a registered name or ``python:<module>:<factory>``
    (a usage error naming the choices otherwise; without ``include_ground_truth`` the reference
    estimators that read the ground truth are refused)."""

    def check(text: str) -> str:
        names = available_estimators(include_ground_truth)
        try:
            entry = estimator_entry(text)
        except EstimatorError:
            entry = None
        if entry is None or (entry.needs_ground_truth and not include_ground_truth):
            raise argparse.ArgumentTypeError(
                f'{text!r} is not one of {", ".join(names)} or python:<module>:<factory>')
        return text

    check.__name__ = 'estimator'
    return check


def estimator_help(include_ground_truth: bool = True) -> str:
    """Help text of ``--estimator``: every registered name with its one-line description."""
    names = available_estimators(include_ground_truth)
    described = [f'{name}: {estimator_entry(name).description}'
                 if estimator_entry(name).description else name for name in names]
    return '; '.join(described) + '; or python:<module>:<factory>'


def estimator_option(text: str) -> tuple[str, object]:
    """An argparse ``type`` for ``--option KEY=VALUE`` (``raydiff_ros.estimation.parse_option``:
    the value is read as YAML, so ``8``, ``0.5``, ``false`` and ``aliked`` keep their types)."""
    try:
        return parse_option(text)
    except EstimatorError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def add_option_argument(parser: argparse.ArgumentParser) -> None:
    """``--option KEY=VALUE`` (repeatable): options of the chosen estimator by name."""
    parser.add_argument(
        '--option', dest='options', action='append', type=estimator_option, default=[],
        metavar='KEY=VALUE',
        help='an option of the estimator (repeatable), e.g. matcher=aliked or max_pairs=12 for '
        'fused and matches; an estimator refuses names it does not know')


def report_error(program: str, message: object, exit_code: int) -> int:
    """Print ``<program>: error: <message>`` to stderr; returns ``exit_code`` for ``main``."""
    print(f'{program}: error: {message}', file=sys.stderr)
    return exit_code


def progress_bar(description: str, total: Optional[int], unit: str,
                 initial: int = 0) -> tqdm:
    """A tqdm bar on stderr (the ``Progress`` hook); draws nothing when stderr is no terminal."""
    return tqdm(desc=description, total=total, unit=unit, initial=initial, file=sys.stderr,
                disable=None, dynamic_ncols=True)


def echo(line: str) -> None:
    """Print ``line`` to stdout now, above any progress bar on the terminal."""
    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()
