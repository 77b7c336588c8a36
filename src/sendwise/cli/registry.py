"""The one way to add a ``sendwise`` command, and the options every command shares.

A command module declares its commands with :func:`command` on the root ``app`` or on a group
made by :func:`group`; the options that mean the same everywhere (``--project``, ``--quiet``) are
declared here once::

    from sendwise.cli.registry import Project, command, group

    things = group("things", "Do things.")

    @command(things, "list")
    def list_things(project: Project = None) -> None:
        ...

:func:`command` adds ``--quiet/-q`` (no progress display) to every command and prepares
:data:`sendwise.cli.output.OUT` for it. The root group turns a :class:`SendwiseError` or a usage
error into one line on stderr and a non-zero exit code (1, or 2 for usage), never a traceback,
and prints every message literally (never as Rich markup).
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

# typer 0.29 carries its own copy of click, and raises that copy's exceptions
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperGroup

from sendwise.cli.output import OUT, line, one_line
from sendwise.config import PROJECT_ENV
from sendwise.errors import SendwiseError

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.warehouse.connection import Warehouse

F = TypeVar("F", bound=Callable[..., Any])

Project = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        envvar=PROJECT_ENV,
        show_default="current folder",
        help="The project folder (holds sendwise.toml, the warehouse and the store).",
    ),
]
"""``--project``: every command that works on a project takes it with this one declaration."""

Quiet = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="No progress display (results and errors still print)."),
]
"""``--quiet``: added to every command by :func:`command`."""


class _RootGroup(TyperGroup):
    """The root group: user errors are one literal line and an exit code, never a traceback."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        code = run_guarded(
            lambda: super(_RootGroup, self).main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        )
        if standalone_mode:
            sys.exit(code)
        return code


def run_guarded(call: Callable[[], Any]) -> int:
    """Run ``call`` (a click ``main`` in non-standalone mode) and return its exit code, printing
    a user error, a usage error or an interruption as one literal line on stderr."""
    try:
        result = call()
    except SendwiseError as exc:
        OUT.error(exc)
        return 1
    except NoArgsIsHelpError as exc:
        exc.show()
        return exc.exit_code
    except ClickException as exc:
        _usage_error(exc)
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        OUT.err.print("interrupted")
        return 130
    if result == 130:  # typer turns Ctrl-C inside a command into exit code 130
        OUT.err.print("interrupted")
    return result if isinstance(result, int) else 0


def _usage_error(exc: ClickException) -> None:
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        OUT.err.print(ctx.get_usage())
        help_option = ctx.help_option_names[0] if ctx.help_option_names else "--help"
        OUT.err.print(f"Try '{ctx.command_path} {help_option}' for help.")
    OUT.err.print(line(("error:", "bold red"), " ", one_line(exc.format_message())), soft_wrap=True)


app = typer.Typer(
    name="sendwise",
    cls=_RootGroup,
    help="Predictive email personalization you run yourself.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
"""The ``sendwise`` command; cli/app.py imports every command module so that they register."""


def group(name: str, help: str, parent: typer.Typer | None = None) -> typer.Typer:
    """A command group (``sendwise NAME ...``) under ``parent`` (default: the root)."""
    sub = typer.Typer(help=help, no_args_is_help=True)
    (parent or app).add_typer(sub, name=name)
    return sub


def command(parent: typer.Typer | None = None, name: str | None = None) -> Callable[[F], F]:
    """Register the decorated function as a command of ``parent`` (default: the root), with the
    shared ``--quiet`` option; returns the function unchanged, so it stays callable."""

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn, eval_str=True)
        if "quiet" in signature.parameters:
            raise TypeError(f"{fn.__name__}: --quiet is added by @command; do not declare it")

        @functools.wraps(fn)
        def wrapper(*args: Any, quiet: bool = False, **kwargs: Any) -> Any:
            OUT.configure(quiet=quiet)
            return fn(*args, **kwargs)

        shared = inspect.Parameter(
            "quiet", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Quiet
        )
        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), shared]
        )
        wrapper.__annotations__ = {**getattr(fn, "__annotations__", {}), "quiet": Quiet}
        (parent or app).command(name)(wrapper)
        return fn

    return decorate


def open_warehouse(project: Path | None) -> tuple[Settings, Warehouse]:
    """The settings of the ``--project`` folder and its warehouse (the caller closes it)."""
    from sendwise.config import load_settings
    from sendwise.warehouse.connection import Warehouse

    settings = load_settings(project)
    return settings, Warehouse.from_settings(settings)
