"""``sendwise users ...``: the web console's users (a thin shell over sendwise.console.users).

The password is asked for twice on a terminal, or read as the first line of standard input
when that is not a terminal (``printf '%s\\n' "$PW" | sendwise users add ana --role viewer``);
it is never an option, so it never lands in a shell history or a process list."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from sendwise.cli.output import SafeConsole
from sendwise.cli.registry import Project, command, group

users_app = group("users", "The web console's users: add one (admin, marketer, viewer), list them.")
console = SafeConsole()


def _password() -> str:
    from sendwise.errors import InputError

    if sys.stdin.isatty():
        first = typer.prompt("password", hide_input=True)
        if typer.prompt("again", hide_input=True) != first:
            raise InputError("the two passwords differ")
        return str(first)
    line = sys.stdin.readline()
    if not line:
        raise InputError("no password on standard input")
    return line.rstrip("\r\n")


@command(users_app, "add")
def add(
    name: Annotated[str, typer.Argument(help="The user name (letters, digits, . _ @ -).")],
    role: Annotated[str, typer.Option("--role", help="admin, marketer or viewer.")] = "viewer",
    replace: Annotated[
        bool, typer.Option("--replace", help="Set a new password and role for an existing user.")
    ] = False,
    project: Project = None,
) -> None:
    """Add a console user; the password is prompted for (or read from standard input)."""
    from sendwise.config import load_settings
    from sendwise.console.users import add_user, audit
    from sendwise.store import open_store

    settings = load_settings(project)
    password = _password()
    with open_store(settings) as store:
        new = add_user(store, name, role, password, replace=replace)
        audit(store, "cli", "user.add" if new else "user.replace", name, role=role)
    console.print(f"user {name} ({role}) {'added' if new else 'updated'}", markup=False)


@command(users_app, "list")
def list_users(project: Project = None) -> None:
    """The console's users and their roles (never their password hashes)."""
    from sendwise.config import load_settings
    from sendwise.store import open_store

    with open_store(load_settings(project)) as store:
        users = store.users.all()
    table = Table("user", "role", "created", box=None)
    for u in users:
        table.add_row(u.name, u.role, u.created_at.strftime("%Y-%m-%d %H:%M"))
    console.print(table, markup=False)
