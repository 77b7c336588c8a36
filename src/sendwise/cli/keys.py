"""``sendwise keys ...``: the link-signing keys (a thin shell over sendwise.keys). A key is never
printed: only its fingerprint."""

from __future__ import annotations

from rich.table import Table

from sendwise.cli.output import SafeConsole
from sendwise.cli.registry import Project, command, group

keys_app = group("keys", "The keys that sign links in messages (rotate, list fingerprints).")
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
    """The project's keys by fingerprint: the one that signs, those that still verify."""
    from sendwise.config import load_settings
    from sendwise.keys import key_status

    table = Table("role", "fingerprint", "verifies until", "note", box=None)
    for row in key_status(load_settings(project)):
        until = row["valid_until"].strftime("%Y-%m-%d %H:%M UTC") if row["valid_until"] else "-"
        table.add_row(row["role"], row["fingerprint"], until, row["note"])
    console.print(table, markup=False)
