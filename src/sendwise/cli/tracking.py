"""``sendwise serve``, ``sendwise sync`` and ``sendwise campaign results``: thin shells over
sendwise.api, sendwise.tracking and sendwise.campaigns.results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sendwise.cli.campaign import NameArg, campaign_app
from sendwise.cli.output import OUT
from sendwise.cli.registry import Project, command


@command()
def serve(
    project: Project = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    journeys: Annotated[
        bool, typer.Option("--worker/--no-worker", help="Run the journeys in the service too.")
    ] = True,
) -> None:
    """Run the HTTP service: tracking pixel, click redirects, unsubscribe, webhooks, and
    (unless --no-worker) the journey worker."""
    from sendwise.api.serve import serve as run
    from sendwise.config import load_settings

    settings = load_settings(project)
    t = settings.tracking
    OUT.print(f"sendwise service on http://{host or t.host}:{port or t.port}")
    run(
        settings.project,
        host=host or t.host,
        port=port or t.port,
        workers=workers or t.workers,
        journeys=journeys,
    )


@command()
def sync(project: Project = None) -> None:
    """Copy new sends and engagement into the warehouse email_event table, and the Segment
    events taken by the intake API into the event table (customers, consent, identities)."""
    from sendwise.config import load_settings
    from sendwise.intake.sync import sync_intake
    from sendwise.store import open_store
    from sendwise.tracking.sync import sync_events
    from sendwise.warehouse.connection import Warehouse

    settings = load_settings(project)
    with open_store(settings) as store, Warehouse.from_settings(settings) as wh:
        report = sync_events(store, wh, settings)
        live = sync_intake(store, wh, settings)
    OUT.print(
        f"synced {report.read:,} store events ({report.inserted:,} new in the warehouse, "
        f"{report.rejected:,} rejected); watermark {report.watermark}"
    )
    OUT.print(
        f"synced {live.read:,} intake events ({live.inserted:,} new in the warehouse, "
        f"{live.rejected:,} rejected, {live.consents:,} consent changes); "
        f"watermark {live.watermark}"
    )


@command(campaign_app, "results")
def results(
    name: NameArg,
    project: Project = None,
    plots: Annotated[
        Path | None, typer.Option(help="Folder for the plots (default: results/ in the project).")
    ] = None,
    sequential: Annotated[bool, typer.Option(help="Add the always-valid (mSPRT) test.")] = False,
) -> None:
    """Per variant and holdout: delivered, opens, clicks, conversions, revenue, lifts."""
    from sendwise.campaigns.results import campaign_results
    from sendwise.campaigns.results_plots import save_plots
    from sendwise.cli.results_table import print_results
    from sendwise.config import load_settings
    from sendwise.store import open_store
    from sendwise.warehouse.connection import Warehouse

    settings = load_settings(project)
    with open_store(settings) as store, Warehouse.from_settings(settings) as wh:
        res = campaign_results(store, wh, settings, name, sequential=sequential)
    print_results(OUT.console, res)
    folder = plots or settings.path("results", res.campaign_id)
    for path in save_plots(res, folder):
        OUT.print(f"plot: {path}")
