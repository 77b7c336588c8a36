"""Progress of a simulation: the caller's callback and, if asked, a terminal progress bar."""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType

from rich.progress import Progress, TaskID

logger = logging.getLogger(__name__)


class ProgressReporter:
    """Counts simulated days, then built tables, towards ``total`` and reports each step."""

    def __init__(self, total: int, show: bool, callback: Callable[[int, int], None] | None) -> None:
        self.total = total
        self.done = 0
        self._callback = callback
        self._bar = Progress(transient=True) if show else None
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressReporter:
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task("simulating the shop", total=self.total)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def step(self, done: int, _loop_total: int) -> None:
        """Callback for the day loop: ``done`` days so far."""
        self._set(done)

    def advance(self) -> None:
        self._set(self.done + 1)

    def _set(self, done: int) -> None:
        self.done = min(done, self.total)
        if self._callback is not None:
            self._callback(self.done, self.total)
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done)
