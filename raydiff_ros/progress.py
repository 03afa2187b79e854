"""The progress hook of long-running library functions (no terminal code: the commands draw).

A function that renders, caches, trains or evaluates for a while takes ``progress: Progress``
and, around its loop, opens one bar and advances it::

    with progress('render', total=num_sets, unit='set', initial=sets_kept) as bar:
        for ...:
            bar.update(sets_done_now)

The default ``no_progress`` does nothing; the console commands pass ``progress_bar`` of
``raydiff_ros/cli/common.py`` (tqdm on stderr, silent when it is not a terminal). A
``tqdm.tqdm`` instance is a ``ProgressBar`` as it is.
"""

from types import TracebackType
from typing import Optional, Protocol


class ProgressBar(Protocol):
    """One running bar: advanced by ``update``, closed when its ``with`` block ends."""

    def update(self, n: int = 1) -> object:
        """Count ``n`` more units done."""

    def __enter__(self) -> 'ProgressBar':
        ...

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 traceback: Optional[TracebackType], /) -> object:
        ...


class Progress(Protocol):
    """Opens a bar of ``total`` units (None: unknown) named ``description``, at ``initial``."""

    def __call__(self, description: str, total: Optional[int], unit: str,
                 initial: int = 0) -> ProgressBar:
        ...


class _NoBar:
    """A bar that shows nothing."""

    def update(self, n: int = 1) -> None:
        del n

    def __enter__(self) -> '_NoBar':
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]],
                 exc: Optional[BaseException], traceback: Optional[TracebackType]) -> None:
        del exc_type, exc, traceback


def no_progress(description: str, total: Optional[int], unit: str,
                initial: int = 0) -> ProgressBar:
    """The default hook: no output."""
    del description, total, unit, initial
    return _NoBar()
