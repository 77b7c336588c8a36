"""Printing campaign results on the terminal (rich tables)."""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table

from sendwise.campaigns.results import Results
from sendwise.cli.output import line, styled


def _pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.2f}%"


def _rate(row, metric: str) -> str:
    low, high = _pct(row[f"{metric}_low"]), _pct(row[f"{metric}_high"])
    return f"{_pct(row[f'{metric}_rate'])} [{low}, {high}]"


def _p(x: float) -> str:
    return "–" if x is None or math.isnan(x) else (f"{x:.3f}" if x >= 0.001 else f"{x:.1e}")


def print_results(console: Console, res: Results) -> None:
    counts = Table(title=f"{res.name}: per arm (eligible customers)", title_justify="left")
    for col in ("arm", "assigned", "delivered", "opens", "clicks", "unsubs", "conv.", "revenue"):
        counts.add_column(col, justify="left" if col == "arm" else "right")
    rates = Table(title="rates with 95% Wilson intervals (human engagement only)",
                  title_justify="left")  # fmt: skip
    for col in ("arm", "open / delivered", "click / delivered", "conversion / assigned"):
        rates.add_column(col, justify="left" if col == "arm" else "right")
    for arm, row in res.arms.iterrows():
        counts.add_row(
            str(arm), *(f"{int(row.get(c, 0)):,}" for c in
                        ("n", "delivered", "open", "click", "unsubscribe", "conversion")),
            f"{row['revenue']:,.2f}",
        )  # fmt: skip
        rates.add_row(
            str(arm),
            _rate(row, "open") if "open_rate" in row else "–",
            _rate(row, "click") if "click_rate" in row else "–",
            _rate(row, "conversion"),
        )
    console.print(counts)
    console.print(rates)
    if res.allocation is not None:
        print_allocation(console, res)
    if not res.comparisons.empty:
        comp = Table(title="differences (95% CI; p two-sided, Holm-adjusted per family)",
                     title_justify="left")  # fmt: skip
        extra = "p_sequential" in res.comparisons
        for col in ("arm", "vs", "metric", "difference [95% CI]", "test", "p", "p Holm") + (
            ("p always-valid",) if extra else ()
        ):
            comp.add_column(col)
        for _, c in res.comparisons.iterrows():
            money = c["test"] == "welch"
            fmt = (lambda v: f"{v:+.2f}") if money else (lambda v: f"{100 * v:+.2f}")
            unit = "" if money else " pts"
            diff = f"{fmt(c['estimate'])}{unit} [{fmt(c['low'])}, {fmt(c['high'])}]"
            cells = [str(c["arm"]), str(c["baseline"]), str(c["metric"]), diff, str(c["test"]),
                     _p(c["p"]), _p(c["p_holm"])]  # fmt: skip
            if extra:
                cells.append(_p(c.get("p_sequential", float("nan"))))
            comp.add_row(*cells)
        console.print(comp)
    if not res.incremental.empty:
        inc = Table(title="incremental over the holdout (95% CI)", title_justify="left")
        for col in ("arm", "conversions", "revenue"):
            inc.add_column(col)
        for _, r in res.incremental.iterrows():
            inc.add_row(
                str(r["arm"]),
                f"{r['conversion']:+.1f} [{r['conversion_low']:+.1f}, {r['conversion_high']:+.1f}]",
                f"{r['revenue']:+,.2f} [{r['revenue_low']:+,.2f}, {r['revenue_high']:+,.2f}]",
            )
        console.print(inc)
    srm = res.srm
    verdict = styled("MISMATCH", "red") if srm.mismatch else styled("ok", "")
    console.print(
        line(
            "sample ratio check (chi-square against the designed shares): ",
            f"p = {srm.p_value:.3f} ",
            verdict,
        )
    )
    for note in res.notes:
        console.print(line(("note:", "yellow"), f" {note}"))


def print_allocation(console: Console, res: Results) -> None:
    """Adaptive campaigns: the allocation wave by wave and the always-valid intervals."""
    alloc = res.allocation
    assert alloc is not None
    arms = [c for c in alloc.columns if not str(c).endswith("_share")]
    table = Table(title="allocation over time (customers, share of the wave)", title_justify="left")
    for col in ("wave", *arms):
        table.add_column(str(col), justify="right")
    for wave, row in alloc.iterrows():
        table.add_row(str(wave), *(f"{int(row[a]):,} ({_pct(row[f'{a}_share'])})" for a in arms))
    console.print(table)
    seq = res.sequences
    if seq is None or seq.empty:
        return
    ci = Table(title="always-valid 95% intervals (valid at every wave)", title_justify="left")
    for col in ("arm", "trials", "successes", "rate [interval]", "lift over holdout"):
        ci.add_column(col, justify="left" if col == "arm" else "right")
    for arm, r in seq.iterrows():
        lift = "–"
        if "lift" in r and not math.isnan(float(r.get("lift", math.nan))):
            lift = (f"{100 * r['lift']:+.2f} [{100 * r['lift_low']:+.2f}, "
                    f"{100 * r['lift_high']:+.2f}] pts")  # fmt: skip
        ci.add_row(
            str(arm), f"{int(r['trials']):,}", f"{int(r['successes']):,}",
            f"{_pct(r['rate'])} [{_pct(r['low'])}, {_pct(r['high'])}]", lift,
        )  # fmt: skip
    console.print(ci)
