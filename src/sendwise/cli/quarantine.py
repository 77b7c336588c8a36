"""``sendwise quarantine ...``: tracking events that could not be stored (a thin shell over
sendwise.tracking.quarantine)."""

from __future__ import annotations

from collections import Counter

import typer
from rich.console import Console

from sendwise.cli.keys import ProjectOpt

quarantine_app = typer.Typer(
    help="Tracking events that could not be stored: list them, write them again.",
    no_args_is_help=True,
)
console = Console()


@quarantine_app.command("list")
def list_entries(project: ProjectOpt = None) -> None:
    """Quarantined events by kind and reason (the file holds each event as it arrived)."""
    from sendwise.config import load_settings
    from sendwise.tracking.quarantine import Quarantine

    q = Quarantine.of_project(load_settings(project).project)
    entries = q.entries()
    console.print(f"{len(entries):,} quarantined event(s) in {q.path}", markup=False)
    reasons = Counter((e.get("kind"), str(e.get("reason"))[:120]) for e in entries)
    for (kind, reason), n in reasons.most_common(20):
        console.print(f"{n:>8,}  {kind}  {reason}", markup=False, highlight=False)


@quarantine_app.command("replay")
def replay(project: ProjectOpt = None) -> None:
    """Write the events the store refused (or could not take while it was down) again; those
    that still fail, and those that failed validation, stay in the file."""
    from sendwise.config import load_settings
    from sendwise.store import open_store
    from sendwise.tracking.quarantine import Quarantine
    from sendwise.tracking.quarantine import replay as run_replay
    from sendwise.tracking.recorder import write_or_report

    settings = load_settings(project)
    with open_store(settings) as store:
        done = run_replay(
            Quarantine.of_project(settings.project), lambda ev: write_or_report(store, ev)
        )
    console.print(f"stored {done.stored:,}; {done.kept:,} still in quarantine", markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(quarantine_app, name="quarantine")
