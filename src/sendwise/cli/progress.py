"""Progress display for long CLI work: a spinner naming the current step, or a bar.

Descriptions (file names, step names) are printed literally, never as Rich markup; use
``OUT.steps`` / ``OUT.task_bar`` (sendwise.cli.output), which also honour ``--quiet``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)


@contextmanager
def steps(console: Console, title: str) -> Iterator[Callable[[str], None]]:
    """A spinner; the yielded function names the step under way."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(title)

        def say(step: str) -> None:
            bar.update(task, description=f"{title}: {step}")

        yield say


@contextmanager
def task_bar(console: Console, title: str, total: int) -> Iterator[Callable[[int, int], None]]:
    """A bar; the yielded function takes (done, total)."""
    with Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(title, total=total)

        def advance(done: int, new_total: int) -> None:
            bar.update(task, completed=done, total=new_total)

        yield advance
