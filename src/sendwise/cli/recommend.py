"""CLI for recommendations: ``sendwise recommend`` and ``sendwise export recommendations``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from sendwise.cli.app import export_app
from sendwise.cli.output import OUT, line
from sendwise.cli.registry import Project, command, open_warehouse


@command()
def recommend(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Fit on data before this date; default: end of data."),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(help="Evaluation split date; default: as-of minus recommend.test_days."),
    ] = None,
    evaluate: Annotated[
        bool, typer.Option(help="Judge every algorithm on a time split first.")
    ] = True,
    project: Project = None,
) -> None:
    """Evaluate every algorithm, fit the hybrid and write K products per customer."""
    from sendwise.recommend import build_recommendations

    settings, wh = open_warehouse(project)
    with wh, OUT.steps("recommendations") as say:
        built = build_recommendations(
            wh, settings, as_of, split=split, evaluate_first=evaluate, progress=say
        )
    show_build(OUT.console, built)


@command(export_app, "recommendations")
def export_recommendations(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write: .csv or .parquet.")],
    project: Project = None,
) -> None:
    """Write customer_id, rank, product_id, score, source for every customer."""
    from sendwise.recommend import export_recommendations as run_export

    _, wh = open_warehouse(project)
    with wh:
        n = run_export(wh, out)
    OUT.print(line(f"wrote {n:,} recommendations to ", (out, "bold")))


def show_build(console: Console, b: Any) -> None:
    console.print(
        line(
            "recommendations for ",
            (f"{b.customers:,}", "bold"),
            f" customers as of {b.as_of:%Y-%m-%d %H:%M}: {b.rows:,} rows ({b.seconds:.1f} s)",
        )
    )
    rule = "excluded" if b.exclude_bought else "allowed"
    console.print(f"  already-bought products {rule} (repeat share {b.repeat_share:.0%})")
    weights = ", ".join(f"{n} {w:g}" for n, w in b.weights.items() if w > 0)
    console.print(f"  hybrid weights: {weights}")
    held = ", ".join(f"{n} {v:.4f}" for n, v in b.holdout.items())
    console.print(f"  ranks: {b.served}" + (f" (held-out validation MAP: {held})" if held else ""))
    console.print("  sources: " + ", ".join(f"{s} {n:,}" for s, n in b.sources.items()))
    ev = b.evaluation
    if ev is None:
        return
    table = Table(
        title=f"evaluation: fit before {ev.split:%Y-%m-%d}, judged to {ev.end:%Y-%m-%d}"
        f" on {ev.customers:,} customers",
        title_justify="left",
        box=None,
    )
    cols = ("precision", "recall", "map", "ndcg", "hit_rate", "coverage", "novelty")
    table.add_column("algorithm")
    for col in cols:
        table.add_column(
            f"{col}@{ev.k}" if col not in ("coverage", "novelty") else col, justify="right"
        )
    for row in ev.table.itertuples(index=False):
        table.add_row(row.algorithm, *(f"{getattr(row, c):.4f}" for c in cols))
    console.print(table)
    console.print(f"  report: {b.report}")
