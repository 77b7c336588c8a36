"""``sendwise campaign ...`` and ``sendwise store ...``: thin shells over sendwise.campaigns,
sendwise.delivery and sendwise.store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sendwise.cli.progress import task_bar

campaign_app = typer.Typer(help="Create, preview, send and follow campaigns.", no_args_is_help=True)
store_app = typer.Typer(
    help="The operational store (SQLite file or PostgreSQL).", no_args_is_help=True
)
console = Console()

NameArg = Annotated[str, typer.Argument(help="The campaign's name (or id).")]


ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        envvar="SENDWISE_PROJECT",
        show_default="current folder",
        help="The project folder (holds sendwise.toml, the warehouse and the store).",
    ),
]


def _open(project: Path | None, *, warehouse: bool = True):
    from sendwise.config import load_settings
    from sendwise.store import open_store
    from sendwise.warehouse.connection import Warehouse

    settings = load_settings(project)
    wh = Warehouse.from_settings(settings) if warehouse else None
    return settings, open_store(settings), wh


@store_app.command("upgrade")
def store_upgrade(project: ProjectOpt = None) -> None:
    """Apply pending migrations to the store."""
    from sendwise.config import load_settings
    from sendwise.store import open_store

    with open_store(load_settings(project), upgrade=False) as store:
        revision = store.upgrade()
        console.print(f"store {store.safe_url} at revision [bold]{revision}[/bold]")


@campaign_app.command("create")
def create(
    file: Annotated[Path, typer.Argument(help="Campaign definition (.toml, .yaml).")],
    project: ProjectOpt = None,
) -> None:
    """Validate a campaign definition against the profiles and templates, and store it."""
    from sendwise.campaigns import create_campaign, load_definition
    from sendwise.campaigns.rendering import make_renderer

    defn = load_definition(file)
    settings, store, wh = _open(project)
    with store, wh:
        cid = create_campaign(store, wh, settings, defn, make_renderer(settings, wh))
    arms = ", ".join(f"{a} {s:g}%" for a, s in defn.arms())
    console.print(f"campaign [bold]{defn.name}[/bold] created (id {cid}): {arms}")


def _counts_table(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column("customers", justify="right")
    for name, n in counts.items():
        table.add_row(str(name), f"{n:,}")
    return table


@campaign_app.command("preview")
def preview(
    name: NameArg,
    samples: Annotated[int, typer.Option(help="Sample renders per variant.")] = 1,
    project: ProjectOpt = None,
) -> None:
    """Audience size, variant split, who is excluded and why, and sample renders. Sends nothing."""
    from sendwise.campaigns import preview_campaign
    from sendwise.campaigns.rendering import make_renderer

    settings, store, wh = _open(project)
    with store, wh:
        p = preview_campaign(
            store, wh, settings, name, make_renderer(settings, wh), samples=samples
        )
    console.print(f"audience: [bold]{p.audience:,}[/bold] customers")
    console.print(_counts_table("would receive (by variant) and holdout", p.by_variant))
    console.print(_counts_table("excluded, by reason", p.skipped or {"nobody": 0}))
    console.print(_counts_table("due (UTC hour)", p.due_by_hour))
    for variant, customer, email in p.samples:
        console.rule(f"variant {variant} · customer {customer}")
        console.print(f"[bold]Subject:[/bold] {email.subject}", highlight=False)
        console.print(email.text.strip()[:600], highlight=False, markup=False)


@campaign_app.command("send")
def send(
    name: NameArg,
    messenger: Annotated[
        str | None, typer.Option(help="outbox, smtp or sendgrid; delivery.messenger by default.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=16,
            help="Sending processes; delivery.workers by default (one per core for 5,000+).",
        ),
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Plan the campaign (once) and send every due message; rerun to resume after a crash."""
    settings, store, wh = _open(project)
    with store, wh:
        report = run_send(settings, store, wh, name, messenger, workers=workers)
    status(name, project)
    console.print(
        f"sent {report.sent:,}, failed {report.failed:,} in {report.seconds:.1f}s "
        f"({report.per_second:,.0f} messages/s, {report.workers} sending process"
        f"{'es' if report.workers > 1 else ''})"
    )


def run_send(settings, store, wh, name: str, messenger: str | None = None, now=None, workers=None):
    from sendwise.campaigns import plan_campaign, send_campaign
    from sendwise.campaigns.overview import plan_frame
    from sendwise.campaigns.rendering import make_renderer
    from sendwise.delivery import make_messenger
    from sendwise.keys import signing_key

    signing_key(settings.delivery)  # refuse before planning: no usable key, nothing sent
    cid = plan_campaign(store, wh, settings, name, now)
    due = int(plan_frame(store, cid)["status"].isin(["pending", "sending"]).sum())
    chosen = make_messenger(settings, messenger)
    with task_bar(console, f"sending via {chosen.name}", due) as advance:
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            advance(done, due)

        renderer = make_renderer(settings, wh)
        return send_campaign(
            store, wh, settings, name, renderer, chosen, progress=step, now=now, workers=workers
        )


@campaign_app.command("status")
def status(name: NameArg, project: ProjectOpt = None) -> None:
    """Messages by variant and status, and why customers were skipped or failed."""
    from sendwise.campaigns import campaign_status

    _, store, _ = _open(project, warehouse=False)
    with store:
        s = campaign_status(store, name)
    table = Table(title=f"{s.name} ({s.status})", title_justify="left")
    table.add_column("variant")
    for col in s.counts.columns:
        table.add_column(str(col), justify="right")
    for variant, row in s.counts.iterrows():
        table.add_row(str(variant), *(f"{int(v):,}" for v in row))
    console.print(table)
    if s.reasons:
        console.print(_counts_table("skipped or failed, by reason", s.reasons))
    if s.pending_due_later:
        console.print(f"{s.pending_due_later:,} messages are scheduled later; run send again then")


@campaign_app.command("size")
def size(
    baseline: Annotated[float, typer.Option(help="Current conversion rate, e.g. 0.03.")],
    lift: Annotated[float, typer.Option(help="Lift to detect: relative (0.1 = +10%).")],
    absolute: Annotated[
        bool, typer.Option(help="Read --lift as points (0.01 = +1 point).")
    ] = False,
    alpha: Annotated[float, typer.Option(help="Significance level (two-sided).")] = 0.05,
    power: Annotated[float, typer.Option(help="Power.")] = 0.8,
    ratio: Annotated[float, typer.Option(help="Comparison group size / variant size.")] = 1.0,
) -> None:
    """Customers needed per variant to detect a lift in a conversion rate."""
    from sendwise.campaigns import sample_size

    s = sample_size(baseline, lift, relative=not absolute, alpha=alpha, power=power, ratio=ratio)
    console.print(
        f"{s.baseline:.4g} -> {s.target:.4g} at alpha {alpha:g}, power {power:g}: "
        f"[bold]{s.per_arm:,}[/bold] per variant and {s.control:,} in the comparison group"
    )


DEMO_CAMPAIGN = """\
name = "{name}"
holdout = 10
quiet_hours = false

[audience]
rule = "email is not null"

[[variants]]
name = "A"
template = "newsletter.html"
share = 45

[[variants]]
name = "B"
template = "win-back.html"
share = 45
"""


def demo_campaign(settings, wh) -> str:
    """The demo's campaign: two variants and a holdout, sent to the outbox at the simulated
    shop's "now" (the end of its data, so that the simulated responses are in the past).
    Returns the campaign's name."""
    from datetime import UTC, datetime

    from sendwise.campaigns import create_campaign, load_definition
    from sendwise.campaigns.rendering import make_renderer
    from sendwise.store import open_store

    name = f"Demo newsletter {datetime.now(UTC):%Y-%m-%d %H:%M}"
    path = settings.path("campaigns", "demo.toml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(DEMO_CAMPAIGN.format(name=name), encoding="utf-8")
    from sendwise.profiles.build import end_of_data

    with open_store(settings) as store:
        create_campaign(store, wh, settings, load_definition(path), make_renderer(settings, wh))
        report = run_send(settings, store, wh, name, "outbox", now=end_of_data(wh))
        status(name, settings.project)
    console.print(
        f"sent {report.sent:,} messages to the outbox {settings.path(settings.delivery.outbox)} "
        f"({report.per_second:,.0f}/s); definition: {path}"
    )
    return name
