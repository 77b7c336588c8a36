"""How the CLI prints the library's results (rich tables); no logic of its own."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from sendwise.cli.output import line, styled
from sendwise.warehouse.profile_columns import IDENTITY, PREDICTIONS

if TYPE_CHECKING:
    from sendwise.ingest.load import IngestReport
    from sendwise.profiles import ProfileBuild
    from sendwise.simulate import SimulatedShop
    from sendwise.warehouse.status import WarehouseStatus


def ingest_report(console: Console, r: IngestReport) -> None:
    name = Path(r.source).name
    if r.already_loaded:
        console.print(
            line(
                (name, "yellow"),
                f": this content was already loaded as {r.target}"
                f" (load {r.ingest_id}: read {r.read:,}, loaded {r.loaded:,},"
                f" rejected {r.rejected:,}); nothing changed. Use --force to load it again.",
            )
        )
        return
    rate = f", {r.read / r.seconds:,.0f} rows/s" if r.seconds else ""
    console.print(
        line(
            (name, "bold"),
            f" -> {r.target}: read {r.read:,}, loaded {r.loaded:,},"
            f" rejected {r.rejected:,} ({r.seconds:.1f} s{rate})",
        )
    )
    table = Table(box=None, pad_edge=False)
    for col in ("table", "inserted", "updated", "unchanged", "rejected"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for tname, c in r.tables.items():
        table.add_row(
            tname, f"{c.inserted:,}", f"{c.updated:,}", f"{c.unchanged:,}", f"{c.rejected:,}"
        )
    console.print(table)
    if r.rejects_by_rule:
        rules = ", ".join(f"{rule} {n:,}" for rule, n in r.rejects_by_rule.items())
        console.print(f"  rejects by rule: {rules} (details: sendwise status)")
    if r.ignored_columns:
        console.print(f"  columns not used: {', '.join(r.ignored_columns)}")


def simulated(console: Console, shop: SimulatedShop, folder: Path) -> None:
    sizes = ", ".join(f"{name} {t.num_rows:,}" for name, t in shop.tables.items())
    console.print(line("simulated shop written to ", (folder, "bold"), f": {sizes}"))


def status(console: Console, s: WarehouseStatus) -> None:
    table = Table(title="warehouse", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("from")
    table.add_column("to")
    for t in s.tables:
        table.add_row(t.name, f"{t.rows:,}", _when(t.first), _when(t.last))
    console.print(table)
    if s.unmatched_events:
        console.print(
            f"events with no known customer (kept, identity 'unmatched'): {s.unmatched_events:,}"
        )
    if s.rejects:
        rej = Table(title="rejected rows by reason", title_justify="left")
        for col in ("table", "rule", "rows", "example (file:line: reason)"):
            rej.add_column(col, justify="right" if col == "rows" else "left", overflow="fold")
        for g in s.rejects:
            rej.add_row(g.target, g.rule, f"{g.rows:,}", g.example)
        console.print(rej)
    else:
        console.print("no rejected rows")
    if s.loads:
        loads = Table(title="recent loads", title_justify="left")
        for col in ("finished", "source", "as", "read", "loaded", "rejected"):
            loads.add_column(
                col,
                justify="right" if col in ("read", "loaded", "rejected") else "left",
                overflow="fold",
            )
        for r in s.loads:
            loads.add_row(
                _when(r["finished_at"]),
                Path(r["source"]).name,
                r["target"],
                f"{r['read']:,}",
                f"{r['loaded']:,}",
                f"{r['rejected']:,}",
            )
        console.print(loads)


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


def profile_build(console: Console, b: ProfileBuild) -> None:
    console.print(
        line(
            "profiles of ",
            (f"{b.customers:,}", "bold"),
            f" customers as of {b.as_of:%Y-%m-%d %H:%M} ({b.seconds:.1f} s)",
        )
    )
    for c in b.checks:
        mark = (
            styled("ok  ", "green")
            if c.ok
            else (styled("FAIL", "red") if c.hard else styled("warn", "yellow"))
        )
        console.print(line("  ", mark, f" {c.name}: {c.message}"))
    console.print(_counts("RFM segments", b.rfm_sizes))
    if b.segment_sizes:
        console.print(_counts("rule segments", b.segment_sizes))
    if b.clusters:
        clusters = Table(title="clusters", title_justify="left", box=None)
        for col in ("cluster", "customers", "description"):
            clusters.add_column(col, justify="right" if col != "description" else "left")
        for cluster, description, n in b.clusters:
            clusters.add_row(str(cluster), f"{n:,}", description)
        console.print(clusters)


def _counts(title: str, sizes: dict[str, int]) -> Table:
    table = Table(title=title, title_justify="left", box=None)
    table.add_column("segment")
    table.add_column("customers", justify="right")
    for name, n in sizes.items():
        table.add_row(name, f"{n:,}")
    return table


PROFILE_GROUPS = (
    ("identity", IDENTITY),
    ("segments", ("rfm_segment", "rfm_score", "segments", "cluster", "cluster_description")),
    ("predictions", tuple(PREDICTIONS)),
    (
        "purchases",
        (
            "frequency",
            "monetary",
            "avg_order_value",
            "recency_days",
            "orders_30d",
            "orders_90d",
            "revenue_90d",
            "refund_orders",
            "favourite_category",
            "favourite_category_share",
            "ipt_mean_days",
        ),
    ),
    (
        "browsing",
        (
            "product_views_30d",
            "add_to_cart_30d",
            "sessions_30d",
            "carts_abandoned_30d",
            "viewed_not_bought_30d",
            "days_since_last_activity",
            "preferred_weekday",
            "preferred_hour",
        ),
    ),
    (
        "email",
        (
            "email_sends",
            "email_opens",
            "email_clicks",
            "email_machine_opens",
            "open_rate",
            "click_rate",
            "days_since_last_open",
            "unsubscribed",
        ),
    ),
)


def profile(console: Console, p: dict) -> None:
    shown = set()
    for title, fields in PROFILE_GROUPS:
        table = Table(title=title, title_justify="left", box=None, show_header=False)
        table.add_column("field", style="dim")
        table.add_column("value")
        for f in fields:
            if f in p:
                table.add_row(f, _value(p[f]))
                shown.add(f)
        console.print(table)
    rest = [k for k in p if k not in shown and not k.startswith("seg_")]
    console.print(styled(f"{len(rest)} more fields: sendwise export profiles --out FILE", "dim"))


def _value(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}"
    if hasattr(v, "strftime"):
        return v.strftime("%Y-%m-%d %H:%M")
    if isinstance(v, list | tuple):
        return "; ".join(map(str, v)) or "-"
    return str(v)
