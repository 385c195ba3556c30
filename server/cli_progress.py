"""The CLI's progress bar: what is happening, how far, how fast and how long is left."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

if TYPE_CHECKING:
    from alloop.tools.base import ProgressFn


class RateColumn(ProgressColumn):
    """Steps a second (items embedded, rounds run), blank until there is a rate to show."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None or task.total is None:
            return Text("")
        return Text(f"{speed:.1f} it/s" if speed >= 0.1 else f"{60 * speed:.1f} it/min", style="progress.data.speed")


@contextmanager
def progress_bar(label: str, console: Console) -> Iterator[ProgressFn]:
    """A bar on `console` that vanishes when the work ends, and the ProgressFn that moves it.

    A message with no total (a model loading) shows as a line with a pulsing bar and no count.
    """
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def progress(done: float, total: float | None, message: str) -> None:
            if total is None and bar.tasks[task].total is not None:  # a new phase: its rate starts afresh
                bar.reset(task, total=None)
            bar.update(task, completed=done, total=total, description=message[:60])

        yield progress
