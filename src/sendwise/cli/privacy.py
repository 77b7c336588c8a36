"""``sendwise privacy ...``: export and erase a person's data, objection to profiling, the
audit log (a thin shell over sendwise.privacy). Nothing personal is printed but what was asked
for: an export goes to its file, an erasure prints counts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sendwise.cli.output import SafeConsole
from sendwise.cli.registry import Project, command, group, open_warehouse

privacy_app = group("privacy", "A person's data: export it, erase it, object to profiling.")
console = SafeConsole()


@command(privacy_app, "export")
def export(
    customer: Annotated[str, typer.Argument(help="A customer id or an email address.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The JSON file to write.")],
    project: Project = None,
) -> None:
    """Write everything sendwise holds about one person into one JSON file, with a summary."""
    from sendwise.privacy.export import export as run_export
    from sendwise.privacy.export import write_export
    from sendwise.store import open_store

    settings, wh = open_warehouse(project)
    with wh, open_store(settings) as store:
        doc = run_export(settings, customer, wh=wh, store=store)
    write_export(doc, out)
    for line in doc["summary"]:
        console.print(line, markup=False)
    console.print(f"wrote {out}", markup=False)


@command(privacy_app, "erase")
def erase(
    customers: Annotated[list[str], typer.Argument(help="Customer ids or email addresses.")],
    project: Project = None,
) -> None:
    """Erase people from the warehouse, the store and the project's files; keep only keyed
    hashes of their identifiers so that no import, intake call or send brings them back."""
    from sendwise.privacy.service import erase as run_erase
    from sendwise.store import open_store

    settings, wh = open_warehouse(project)
    with wh, open_store(settings) as store:
        report = run_erase(
            settings,
            customers,
            wh=wh,
            store=store,
            progress=lambda m: console.print(m, markup=False),
        )
    rows = sum(report.warehouse.values()) + sum(report.store.values())
    console.print(
        f"erased {report.people} people: {rows:,} rows, {sum(report.files.values()):,} file"
        f" changes, {report.tombstones} new tombstones in {report.seconds:.1f} s"
        f" (request {report.request_id})",
        markup=False,
    )


@command(privacy_app, "object")
def object_(
    customer: Annotated[str, typer.Argument(help="The customer id.")],
    withdraw: Annotated[bool, typer.Option(help="Withdraw an earlier objection.")] = False,
    project: Project = None,
) -> None:
    """Record an objection to profiling: the next build leaves them out of predictions and
    recommendations (they still get the generic emails they consented to)."""
    from sendwise.config import load_settings
    from sendwise.privacy.ledger import object_to_profiling
    from sendwise.store import open_store

    settings = load_settings(project)
    with open_store(settings) as store:
        changed = object_to_profiling(store, customer, objects=not withdraw)
    state = "objects to" if not withdraw else "no longer objects to"
    console.print(f"{customer} {state} profiling" + ("" if changed else " (already)"), markup=False)


@command(privacy_app, "audit")
def audit(project: Project = None) -> None:
    """The privacy requests (newest first): what was done, when, by whom, counts only."""
    from sendwise.config import load_settings
    from sendwise.store import open_store

    settings = load_settings(project)
    with open_store(settings) as store:
        for row in store.privacy.audit_log():
            console.print(
                f"{row['at']:%Y-%m-%d %H:%M:%S} {row['action']} {row['subjects']}"
                f" by {row['requested_by']} ({row['request_id']}): {row['detail']}",
                markup=False,
            )
