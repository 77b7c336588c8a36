"""``sendwise quarantine ...``: tracking events that could not be stored (a thin shell over
sendwise.tracking.quarantine)."""

from __future__ import annotations

from collections import Counter

from sendwise.cli.output import SafeConsole
from sendwise.cli.registry import Project, command, group

ProjectOpt = Project

quarantine_app = group(
    "quarantine", "Tracking events that could not be stored: list them, write them again."
)
console = SafeConsole()


@command(quarantine_app, "list")
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


@command(quarantine_app, "replay")
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
