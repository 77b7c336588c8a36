"""``sendwise keys ...``: the link-signing keys (a thin shell over sendwise.keys) and the API keys
of the service (over sendwise.access). A signing key is never printed, only its fingerprint; an
API key is printed once, when it is created."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from sendwise.cli.output import SafeConsole
from sendwise.cli.registry import Project, command, group

keys_app = group(
    "keys",
    "The keys that sign links in messages (rotate) and the API keys of the service "
    "(create, revoke); list shows both.",
)
console = SafeConsole()
ProjectOpt = Project


@command(keys_app, "rotate")
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


@command(keys_app, "list")
def list_keys(project: ProjectOpt = None) -> None:
    """The signing keys by fingerprint (the one that signs, those that still verify) and the
    API keys by name and scope (never the keys themselves)."""
    from sendwise.access import list_keys as api_keys
    from sendwise.config import load_settings
    from sendwise.keys import key_status
    from sendwise.store import open_store

    settings = load_settings(project)
    table = Table("role", "fingerprint", "verifies until", "note", box=None)
    for row in key_status(settings):
        until = row["valid_until"].strftime("%Y-%m-%d %H:%M UTC") if row["valid_until"] else "-"
        table.add_row(row["role"], row["fingerprint"], until, row["note"])
    console.print(table, markup=False)
    with open_store(settings) as store:
        found = api_keys(store)
    if not found:
        console.print("no API keys: make one with `sendwise keys create`", markup=False)
        return
    api = Table("API key", "scope", "id", "rate/s", "created", "revoked", box=None)
    for k in found:
        api.add_row(
            k.name,
            k.scope.value,
            k.key_id,
            "default" if k.rate_per_second is None else f"{k.rate_per_second:g}",
            k.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            k.revoked_at.strftime("%Y-%m-%d %H:%M UTC") if k.revoked_at else "-",
        )
    console.print(api, markup=False)


@command(keys_app, "create")
def create(
    name: Annotated[str, typer.Option("--name", help="A name to list and revoke it by.")],
    scope: Annotated[
        str, typer.Option("--scope", help="write (events in), read (profiles out) or admin.")
    ],
    rate: Annotated[
        float | None,
        typer.Option("--rate", help="Requests a second this key may make (default: api.rate)."),
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Make an API key for `sendwise serve` and print it, once: only its hash is kept."""
    from sendwise.access import create_key
    from sendwise.config import load_settings
    from sendwise.store import open_store
    from sendwise.store.claims import utcnow

    with open_store(load_settings(project)) as store:
        key = create_key(store, name, scope, rate_per_second=rate, at=utcnow())
    print(key)  # plain stdout, so that `KEY=$(sendwise keys create ...)` works
    typer.echo(
        f"the {scope} key {name!r} above is shown only this once: keep it in a secret store",
        err=True,
    )


@command(keys_app, "revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The name the key was created with.")],
    project: ProjectOpt = None,
) -> None:
    """Revoke an API key: it stops working within api.key_cache_seconds (2 s by default)."""
    from sendwise.access import revoke_key
    from sendwise.config import load_settings
    from sendwise.errors import NotFoundError
    from sendwise.store import open_store
    from sendwise.store.claims import utcnow

    with open_store(load_settings(project)) as store:
        if not revoke_key(store, name, utcnow()):
            raise NotFoundError("live API key", name, "see `sendwise keys list`")
    console.print(f"API key {name!r} revoked", markup=False)
