"""``sendwise keys ...``: the link-signing keys (a thin shell over sendwise.keys). A key is never
printed: only its fingerprint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sendwise.config import PROJECT_ENV

keys_app = typer.Typer(
    help="The keys that sign links in messages (rotate, list fingerprints).", no_args_is_help=True
)
console = Console()

ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        envvar=PROJECT_ENV,
        show_default="current folder",
        help="The project folder (holds sendwise.toml and .sendwise/secrets.toml).",
    ),
]


@keys_app.command("rotate")
def rotate(project: ProjectOpt = None) -> None:
    """Make a new random signing key; the old one still verifies the links of messages already
    sent for delivery.key_grace_days days. Restart `sendwise serve` afterwards."""
    from sendwise.config import load_settings
    from sendwise.keys import rotate as run_rotate
    from sendwise.keys import secrets_path

    settings = load_settings(project)
    done = run_rotate(settings)
    console.print(f"new signing key {done.new} in {secrets_path(settings.project)}", markup=False)
    if done.retired and done.valid_until:
        until = done.valid_until.strftime("%Y-%m-%d %H:%M UTC")
        console.print(f"key {done.retired} now only verifies links, until {until}", markup=False)
    else:
        console.print("there was no usable key before: links signed earlier stay invalid")
    if done.dropped:
        console.print(f"{done.dropped} expired or unusable retired key(s) removed", markup=False)
    console.print("restart `sendwise serve` so that it uses the new key", markup=False)


@keys_app.command("list")
def list_keys(project: ProjectOpt = None) -> None:
    """The project's keys by fingerprint: the one that signs, those that still verify."""
    from sendwise.config import load_settings
    from sendwise.keys import key_status

    table = Table("role", "fingerprint", "verifies until", "note", box=None)
    for row in key_status(load_settings(project)):
        until = row["valid_until"].strftime("%Y-%m-%d %H:%M UTC") if row["valid_until"] else "-"
        table.add_row(row["role"], row["fingerprint"], until, row["note"])
    console.print(table, markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
