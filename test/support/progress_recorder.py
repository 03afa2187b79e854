"""A ``raydiff_ros.progress.Progress`` hook for tests: records every bar and its updates."""

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class RecordedBar:
    """One bar opened by the code under test."""

    description: str
    total: Optional[int]
    unit: str
    initial: int
    updates: list[int] = field(default_factory=list)
    closed: bool = False

    @property
    def count(self) -> int:
        """Units done when the bar was last updated (``initial`` plus every update)."""
        return self.initial + sum(self.updates)

    def update(self, n: int = 1) -> None:
        assert not self.closed, f'{self.description}: update after the bar was closed'
        self.updates.append(n)

    def __enter__(self) -> 'RecordedBar':
        return self

    def __exit__(self, *exc_info) -> None:
        self.closed = True


class RecordingProgress:
    """The hook: ``bars`` in the order they were opened."""

    def __init__(self) -> None:
        self.bars: list[RecordedBar] = []

    def __call__(self, description: str, total: Optional[int], unit: str,
                 initial: int = 0) -> RecordedBar:
        bar = RecordedBar(description, total, unit, initial)
        self.bars.append(bar)
        return bar

    def descriptions(self) -> list[str]:
        return [bar.description for bar in self.bars]
