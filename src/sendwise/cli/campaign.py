"""``sendwise campaign ...`` and ``sendwise store ...``: thin shells over sendwise.campaigns,
sendwise.delivery and sendwise.store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from sendwise.cli.output import OUT, line
from sendwise.cli.registry import Project, command, group

if TYPE_CHECKING:
    from sendwise.campaigns.overview import CampaignStatus, Preview

campaign_app = group("campaign", "Create, preview, send and follow campaigns.")
store_app = group("store", "The operational store (SQLite file or PostgreSQL).")

NameArg = Annotated[str, typer.Argument(help="The campaign's name (or id).")]


def _open(project: Path | None, *, warehouse: bool = True) -> Any:
    from sendwise.config import load_settings
    from sendwise.store import open_store
    from sendwise.warehouse.connection import Warehouse

    settings = load_settings(project)
    wh = Warehouse.from_settings(settings) if warehouse else None
    return settings, open_store(settings), wh


@command(store_app, "upgrade")
def store_upgrade(project: Project = None) -> None:
    """Apply pending migrations to the store."""
    from sendwise.config import load_settings
    from sendwise.store import open_store

    with open_store(load_settings(project), upgrade=False) as store:
        revision = store.upgrade()
        OUT.print(line(f"store {store.safe_url} at revision ", (revision, "bold")))


@command(campaign_app, "create")
def create(
    file: Annotated[Path, typer.Argument(help="Campaign definition (.toml, .yaml).")],
    project: Project = None,
) -> None:
    """Validate a campaign definition against the profiles and templates, and store it."""
    from sendwise.campaigns import create_campaign, load_definition
    from sendwise.campaigns.rendering import make_renderer

    defn = load_definition(file)
    settings, store, wh = _open(project)
    with store, wh:
        cid = create_campaign(store, wh, settings, defn, make_renderer(settings, wh))
    arms = ", ".join(f"{a} {s:g}%" for a, s in defn.arms())
    OUT.print(line("campaign ", (defn.name, "bold"), f" created (id {cid}): {arms}"))


def _counts_table(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column("customers", justify="right")
    for name, n in counts.items():
        table.add_row(str(name), f"{n:,}")
    return table


@command(campaign_app, "preview")
def preview(
    name: NameArg,
    samples: Annotated[int, typer.Option(help="Sample renders per variant.")] = 1,
    project: Project = None,
) -> None:
    """Audience size, variant split, who is excluded and why, and sample renders. Sends nothing."""
    from sendwise.campaigns import preview_campaign
    from sendwise.campaigns.rendering import make_renderer

    settings, store, wh = _open(project)
    with store, wh:
        p = preview_campaign(
            store, wh, settings, name, make_renderer(settings, wh), samples=samples
        )
    print_preview(OUT.console, p)


def print_preview(console: Console, p: Preview) -> None:
    """Audience, split, exclusions, schedule and the sample renders of a campaign preview."""
    console.print(line("audience: ", (f"{p.audience:,}", "bold"), " customers"))
    console.print(_counts_table("would receive (by variant) and holdout", p.by_variant))
    console.print(_counts_table("excluded, by reason", p.skipped or {"nobody": 0}))
    console.print(_counts_table("due (UTC hour)", p.due_by_hour))
    for variant, customer, email in p.samples:
        console.rule(f"variant {variant} · customer {customer}")
        console.print(line(("Subject:", "bold"), " ", email.subject))
        console.print(email.text.strip()[:600])


@command(campaign_app, "send")
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
    project: Project = None,
) -> None:
    """Plan the campaign (once) and send every due message; rerun to resume after a crash."""
    settings, store, wh = _open(project)
    with store, wh:
        report = run_send(settings, store, wh, name, messenger, workers=workers)
    status(name, project)
    OUT.print(
        f"sent {report.sent:,}, failed {report.failed:,} in {report.seconds:.1f}s "
        f"({report.per_second:,.0f} messages/s, {report.workers} sending process"
        f"{'es' if report.workers > 1 else ''})"
    )


def run_send(
    settings: Any,
    store: Any,
    wh: Any,
    name: str,
    messenger: str | None = None,
    now: Any = None,
    workers: int | None = None,
) -> Any:
    from sendwise.campaigns import plan_campaign, send_campaign
    from sendwise.campaigns.overview import plan_frame
    from sendwise.campaigns.rendering import make_renderer
    from sendwise.delivery import make_messenger
    from sendwise.keys import signing_key

    signing_key(settings.delivery)  # refuse before planning: no usable key, nothing sent
    cid = plan_campaign(store, wh, settings, name, now)
    due = int(plan_frame(store, cid)["status"].isin(["pending", "sending"]).sum())
    chosen = make_messenger(settings, messenger)
    with OUT.task_bar(f"sending via {chosen.name}", due) as advance:
        done = 0

        def step(n: int) -> None:
            nonlocal done
            done += n
            advance(done, due)

        renderer = make_renderer(settings, wh)
        return send_campaign(
            store, wh, settings, name, renderer, chosen, progress=step, now=now, workers=workers
        )


@command(campaign_app, "status")
def status(name: NameArg, project: Project = None) -> None:
    """Messages by variant and status, and why customers were skipped or failed."""
    from sendwise.campaigns import campaign_status

    _, store, _ = _open(project, warehouse=False)
    with store:
        s = campaign_status(store, name)
    print_status(OUT.console, s)


def print_status(console: Console, s: CampaignStatus) -> None:
    """A campaign's messages by variant and status, and the reasons for skips and failures."""
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


@command(campaign_app, "size")
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
    OUT.print(
        line(
            f"{s.baseline:.4g} -> {s.target:.4g} at alpha {alpha:g}, power {power:g}: ",
            (f"{s.per_arm:,}", "bold"),
            f" per variant and {s.control:,} in the comparison group",
        )
    )
