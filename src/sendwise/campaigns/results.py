"""Campaign results: per arm counts and rates, lifts against the control and the holdout.

:func:`analyze` works on one row per assigned, eligible customer (``arm`` and 0/1 outcome
columns, plus a money column), so it serves a sendwise campaign (:func:`campaign_results`,
rows from :mod:`sendwise.campaigns.attribution`) and any randomized experiment (the Hillstrom
test). Engagement (opens, clicks, unsubscribes) is a rate per delivered message and compared
between variants; outcomes (conversions) and money are per assigned customer (intention to
treat), so they are compared with the holdout too, which is what makes them causal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from sendwise.campaigns import stats

HOLDOUT = "holdout"


@dataclass
class Results:
    arms: pd.DataFrame
    """One row per arm: n, delivered, counts, rates with 95% Wilson intervals, money."""
    comparisons: pd.DataFrame
    """arm, baseline (control or holdout), metric, estimate, low, high, p, test, p_holm,
    p_sequential (when asked)."""
    incremental: pd.DataFrame
    """Per variant against the holdout: incremental conversions and money with 95% CIs."""
    srm: stats.SampleRatio
    campaign_id: str = ""
    name: str = ""
    notes: list[str] = field(default_factory=list)
    allocation: pd.DataFrame | None = None
    """Adaptive campaigns: customers per arm and shares, wave by wave (campaigns/waves.py)."""
    sequences: pd.DataFrame | None = None
    """Adaptive campaigns: per arm the metric's rate with its always-valid 95% interval, and
    each variant's lift over the holdout (bandit.py)."""


def _arm_table(
    units: pd.DataFrame, engagement: Sequence[str], outcomes: Sequence[str], value: str | None
) -> pd.DataFrame:
    g = units.groupby("arm", sort=False)
    table = pd.DataFrame({"n": g.size()})
    table["delivered"] = g["delivered"].sum() if "delivered" in units else table["n"]
    for metric in (*engagement, *outcomes):
        table[metric] = g[metric].sum()
        base = table["delivered"] if metric in engagement else table["n"]
        bounds = [wilson_pair(int(x), int(b)) for x, b in zip(table[metric], base, strict=True)]
        table[f"{metric}_rate"] = table[metric] / base.where(base > 0)
        table[f"{metric}_low"] = [b[0] for b in bounds]
        table[f"{metric}_high"] = [b[1] for b in bounds]
    if value:
        table[value] = g[value].sum()
        table[f"{value}_per_unit"] = g[value].mean()
    return table.astype({c: "int64" for c in ("n", "delivered", *engagement, *outcomes)})


def wilson_pair(x: int, n: int) -> tuple[float, float]:
    return stats.wilson(x, n)


def _compare(
    units: pd.DataFrame,
    table: pd.DataFrame,
    arm: str,
    baseline: str,
    metric: str,
    denominator: str,
    tau: float | None,
) -> dict:
    x1, n1 = int(table.at[arm, metric]), int(table.at[arm, denominator])
    x0, n0 = int(table.at[baseline, metric]), int(table.at[baseline, denominator])
    d = stats.two_proportions(x1, n1, x0, n0)
    row = dict(arm=arm, baseline=baseline, metric=metric, estimate=d.estimate, low=d.low,
               high=d.high, p=d.p_value, test=d.test)  # fmt: skip
    if tau is not None:
        row["p_sequential"] = stats.msprt(x1, n1, x0, n0, tau)
    return row


def analyze(
    units: pd.DataFrame,
    *,
    shares: Mapping[str, float] | None = None,
    holdout: str | None = HOLDOUT,
    control: str | None = None,
    engagement: Sequence[str] = ("open", "click", "unsubscribe"),
    outcomes: Sequence[str] = ("conversion",),
    value: str | None = "revenue",
    sequential_tau: float | None = None,
) -> Results:
    """Counts, rates, comparisons (variants vs ``control``, default the first variant, and vs
    ``holdout``), Holm-adjusted p-values per family (baseline, metric), the sample-ratio check
    against ``shares`` and incremental conversions and money over the holdout."""
    engagement = [m for m in engagement if m in units]
    table = _arm_table(units, engagement, outcomes, value)
    if shares:  # the designed order (variants, then the holdout)
        table = table.reindex([a for a in shares if a in table.index])
    arms = list(table.index)
    has_holdout = holdout is not None and holdout in table.index
    variants = [a for a in arms if a != holdout]
    control = control or (variants[0] if variants else None)
    rows = []
    for arm in variants:
        if arm != control and control is not None:
            for metric in (*engagement, *outcomes):
                base = "delivered" if metric in engagement else "n"
                rows.append(_compare(units, table, arm, control, metric, base, sequential_tau))
        if has_holdout:
            for metric in outcomes:
                rows.append(_compare(units, table, arm, str(holdout), metric, "n", sequential_tau))
    money, increments = [], []
    if has_holdout:
        held = units.loc[units["arm"] == holdout]
        for arm in variants:
            treated = units.loc[units["arm"] == arm]
            n = len(treated)
            inc = {"arm": arm, "n": n}
            for metric in outcomes:
                d = stats.two_proportions(
                    int(treated[metric].sum()), n, int(held[metric].sum()), len(held)
                )
                inc |= {metric: d.estimate * n, f"{metric}_low": d.low * n,
                        f"{metric}_high": d.high * n}  # fmt: skip
            if value:
                w = stats.welch(treated[value].to_numpy(), held[value].to_numpy())
                money.append(dict(arm=arm, baseline=holdout, metric=f"{value}_per_unit",
                                  estimate=w.estimate, low=w.low, high=w.high, p=w.p_value,
                                  test=w.test))  # fmt: skip
                inc |= {value: w.estimate * n, f"{value}_low": w.low * n,
                        f"{value}_high": w.high * n}  # fmt: skip
            increments.append(inc)
    comparisons = pd.DataFrame(rows + money)
    if not comparisons.empty:
        comparisons["p_holm"] = comparisons.groupby(["baseline", "metric"])["p"].transform(
            lambda p: pd.Series(stats.holm(list(p)), index=p.index)
        )
    srm = stats.sample_ratio(
        {a: int(table.at[a, "n"]) for a in arms}, dict(shares or {a: 1.0 for a in arms})
    )
    return Results(table, comparisons, pd.DataFrame(increments), srm)


def lift(results: Results, arm: str, metric: str, baseline: str = HOLDOUT) -> pd.Series:
    """One comparison row (estimate, low, high, p, p_holm, ...)."""
    c = results.comparisons
    hit = c[(c["arm"] == arm) & (c["metric"] == metric) & (c["baseline"] == baseline)]
    if hit.empty:
        raise KeyError(f"no comparison of {arm} against {baseline} on {metric}")
    return hit.iloc[0]


def campaign_results(store, wh, settings, name: str, *, sequential: bool = False) -> Results:
    """The results of a stored campaign: its eligible customers' engagement from the store and
    their orders from the warehouse, attributed within ``tracking.attribution_days``."""
    from sendwise.campaigns.attribution import campaign_units
    from sendwise.campaigns.service import load_campaign

    cid, _status, defn = load_campaign(store, name)
    units = campaign_units(store, wh, cid, days=settings.tracking.attribution_days)
    shares = dict(defn.arms())
    res = analyze(
        units,
        shares=shares,
        control=defn.variants[0].name,
        engagement=("open", "click", "unsubscribe", "click_conversion"),
        sequential_tau=settings.tracking.sequential_tau if sequential else None,
    )
    res.campaign_id, res.name = cid, defn.name
    if defn.adaptive:
        _adaptive(res, store, units, defn)
    if res.srm.mismatch:
        res.notes.append(
            f"sample ratio mismatch (chi-square p = {res.srm.p_value:.2g}): the arms' sizes "
            "are not the designed shares; do not trust the comparisons until explained"
        )
    missing = [a for a, s in shares.items() if s > 0 and a not in res.arms.index]
    if missing:
        res.notes.append(f"no eligible customer in {', '.join(missing)}")
    return res


def _adaptive(res: Results, store, units: pd.DataFrame, defn) -> None:
    """Under Thompson sampling the variants' shares change by design: the sample-ratio check
    is on the holdout against the rest, the allocation over time and the always-valid
    intervals are added, and the fixed-sample comparisons between variants are flagged."""
    from sendwise.campaigns.waves import allocation_over_time, sequences

    res.allocation = allocation_over_time(store.messages.plan_frame(res.campaign_id), defn)
    res.sequences = sequences(units, defn)
    if defn.holdout:
        sizes = units["arm"].eq(HOLDOUT).map({True: HOLDOUT, False: "treated"}).value_counts()
        res.srm = stats.sample_ratio(
            {a: int(sizes.get(a, 0)) for a in ("treated", HOLDOUT)},
            {"treated": 100 - defn.holdout, HOLDOUT: defn.holdout},
        )
    res.notes.append(
        f"adaptive allocation (Thompson sampling on {defn.allocation.metric}s): read the "
        "always-valid intervals; the fixed-sample intervals between variants do not allow for "
        "the allocation having followed the results"
    )
