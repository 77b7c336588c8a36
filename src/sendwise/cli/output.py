"""Terminal output that never interprets untrusted text.

Everything the CLI prints goes through a :class:`SafeConsole`: Rich markup and emoji codes are
off for every string (a ``[/bold]`` in a customer's name is printed as ``[/bold]``, never parsed),
and control characters (ANSI escape sequences, carriage returns, bells, bidirectional overrides)
are shown as visible escapes such as ``\\x1b`` instead of reaching the terminal. Style is never
parsed out of text: the CLI's own emphasis is explicit, with :func:`styled` and :func:`line`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Text

# C0 controls except tab and newline, DEL, C1 controls, and the Unicode marks that reorder or
# hide text on a terminal (bidirectional embeddings, overrides and isolates).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_LINE = re.compile(f"{_UNSAFE.pattern[:-1]}\n\t]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return {9: "\\t", 10: "\\n", 13: "\\r"}.get(code) or (
        f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    )


def neutralise(text: object) -> str:
    """``text`` as it should reach a terminal: control characters become visible escapes
    (``\\x1b``, ``\\r``, ``\\u202e``); newlines and tabs stay."""
    return _UNSAFE.sub(_escape, str(text))


def one_line(text: object) -> str:
    """Like :func:`neutralise`, and newlines and tabs are shown as ``\\n`` and ``\\t`` too."""
    return _UNSAFE_LINE.sub(_escape, str(text))


def styled(value: object, style: str) -> Text:
    """``value`` printed literally in ``style`` (e.g. ``"bold"``, ``"red"``)."""
    return Text(neutralise(value), style=style)


def line(*parts: object) -> Text:
    """One line from pieces: a string is printed literally, a ``Text`` keeps its style, and a
    ``(value, style)`` pair is :func:`styled`."""
    text = Text()
    for part in parts:
        if isinstance(part, Text):
            text.append_text(part)
        elif isinstance(part, tuple) and len(part) == 2:
            text.append(neutralise(part[0]), style=str(part[1]))
        else:
            text.append(neutralise(part))
    return text


class SafeConsole(Console):
    """A Rich console that prints every string literally (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.update(markup=False, emoji=False, highlight=False)
        super().__init__(**kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs.update(markup=False, emoji=False, highlight=False)
        return super().render_str(neutralise(text), **kwargs)

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        # The last line of defence: a Text built from an untrusted value without neutralise().
        for segment in super().render(renderable, options):
            if segment.control or not _UNSAFE.search(segment.text):
                yield segment
            else:
                yield Segment(neutralise(segment.text), segment.style)


@dataclass
class Output:
    """Where a command prints: results on stdout, errors on stderr, progress unless quiet."""

    quiet: bool = False
    console: SafeConsole = field(default_factory=SafeConsole)
    err: SafeConsole = field(default_factory=lambda: SafeConsole(stderr=True))

    def configure(self, *, quiet: bool = False) -> None:
        """Fresh consoles for one command (they read the terminal's width now)."""
        self.quiet = quiet
        self.console = SafeConsole()
        self.err = SafeConsole(stderr=True)

    def print(self, *parts: Any, **kwargs: Any) -> None:
        self.console.print(*parts, **kwargs)

    def error(self, message: object) -> None:
        """A user error: one line on stderr, ``error: `` in bold red, the message literally."""
        try:
            text = one_line(message)
        except Exception:  # a message whose str() itself fails must not become a traceback
            text = f"<{type(message).__name__} whose message cannot be printed>"
        self.err.print(line(("error:", "bold red"), " ", text), soft_wrap=True)

    def steps(self, title: str) -> AbstractContextManager[Callable[[str], None]]:
        """A spinner naming the step under way (nothing when quiet)."""
        from sendwise.cli.progress import steps

        return nullcontext(_ignore) if self.quiet else steps(self.console, title)

    def task_bar(
        self, title: str, total: int
    ) -> AbstractContextManager[Callable[[int, int], None]]:
        """A progress bar taking (done, total) (nothing when quiet)."""
        from sendwise.cli.progress import task_bar

        return nullcontext(_ignore) if self.quiet else task_bar(self.console, title, total)


def _ignore(*_: Any) -> None:
    return None


class SafeFormatter(logging.Formatter):
    """Log lines on the terminal with control characters shown as escapes, like the console."""

    def format(self, record: logging.LogRecord) -> str:
        return neutralise(super().format(record))


def log_to_stderr(level: int = logging.WARNING) -> None:
    """The CLI's logging: ``LEVEL name: message`` on stderr, neutralised."""
    handler = logging.StreamHandler()
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


OUT = Output()
"""The output of the running command; :func:`sendwise.cli.registry.command` configures it."""
