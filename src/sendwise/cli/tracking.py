"""``sendwise serve``, ``sendwise sync`` and ``sendwise campaign results``: thin shells over
sendwise.api, sendwise.tracking and sendwise.campaigns.results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sendwise.cli.campaign import NameArg, ProjectOpt, campaign_app

console = Console()


def serve(
    project: ProjectOpt = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Run the HTTP service: tracking pixel, click redirects, unsubscribe, webhooks."""
    from sendwise.api.serve import serve as run
    from sendwise.config import load_settings

    settings = load_settings(project)
    t = settings.tracking
    console.print(f"sendwise service on http://{host or t.host}:{port or t.port}")
    run(
        settings.project,
        host=host or t.host,
        port=port or t.port,
        workers=workers or t.workers,
    )


def sync(project: ProjectOpt = None) -> None:
    """Copy new sends and engagement from the store into the warehouse email_event table."""
    from sendwise.config import load_settings
    from sendwise.store import open_store
    from sendwise.tracking.sync import sync_events
    from sendwise.warehouse.connection import Warehouse

    settings = load_settings(project)
    with open_store(settings) as store, Warehouse.from_settings(settings) as wh:
        report = sync_events(store, wh, settings)
    console.print(
        f"synced {report.read:,} store events ({report.inserted:,} new in the warehouse, "
        f"{report.rejected:,} rejected); watermark {report.watermark}"
    )


@campaign_app.command("results")
def results(
    name: NameArg,
    project: ProjectOpt = None,
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
    print_results(console, res)
    folder = plots or settings.path("results", res.campaign_id)
    for path in save_plots(res, folder):
        console.print(f"plot: {path}")


DEMO_STRENGTH = {"A": 1.0, "B": 1.5}
"""The demo's truth: variant B persuades 1.5 times as strongly as A."""


def demo_results(settings, wh, truth, name: str, seed: int = 0) -> None:
    """The demo's last step: the simulated customers answer the campaign (events written to
    the store, orders ingested into the warehouse), sync, then the results table and plots."""
    from sendwise.campaigns.attribution import sent_messages
    from sendwise.campaigns.results import campaign_results
    from sendwise.campaigns.results_plots import save_plots
    from sendwise.campaigns.service import load_campaign
    from sendwise.cli.results_table import print_results
    from sendwise.simulate.replay import load_orders, record_direct
    from sendwise.simulate.responses import simulate_responses
    from sendwise.store import open_store
    from sendwise.tracking.sync import sync_events

    with open_store(settings) as store:
        cid, _, _ = load_campaign(store, name)
        responses = simulate_responses(
            sent_messages(store, cid),
            truth,
            strength=DEMO_STRENGTH,
            days=settings.tracking.attribution_days,
            seed=seed,
        )
        orders = load_orders(wh, settings, responses, name=cid)
        events = record_direct(store, responses)
        synced = sync_events(store, wh, settings)
        console.print(
            f"simulated {events:,} opens, clicks and unsubscribes and {orders:,} orders; "
            f"synced {synced.read:,} events into the warehouse"
        )
        res = campaign_results(store, wh, settings, name)
    print_results(console, res)
    true = ", ".join(f"{v} {100 * e:+.2f} pts" for v, e in responses.true_effect.items())
    console.print(f"the simulator's true conversion lift over the holdout: {true}")
    for path in save_plots(res, settings.path("results", cid)):
        console.print(f"plot: {path}")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(sync)
