"""Progress bars (rich) for the long CLI jobs, on stderr and only on a terminal: a pipe or a
log file gets the summary lines alone."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any


class Bar:
    def __init__(self, progress: Any, task: Any) -> None:
        self._progress, self._task = progress, task

    def __call__(self, n: int = 1) -> None:
        """Advance by n."""
        self._progress.advance(self._task, n)

    def set(self, done: int, total: int | None = None) -> None:
        self._progress.update(self._task, completed=done, total=total)


@contextlib.contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Bar]:
    """Yields a Bar: `bar(n)` advances, `bar.set(done, total)` sets; the bar shows label,
    done/total, elapsed and remaining time."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(file=sys.stderr)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True,
                  disable=not console.is_terminal) as progress:
        yield Bar(progress, progress.add_task(label, total=total))
