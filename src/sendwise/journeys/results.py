"""Journey results: conversion and revenue of the customers who entered, against the holdout.

The unit is one entry (a customer entering the journey once; a customer who re-enters counts
once per entry). Its outcome, intention to treat like a campaign's:

* ``conversion``: 1 when a goal event (the journey's ``[goal] event``, e.g. ``Order Completed``)
  of the customer occurred in ``(entered_at, entered_at + within]``, whether or not a message
  was sent (a customer who bought before the first reminder converted, and counts);
* ``revenue``: the sum of those goal events' ``total`` (or ``revenue``, or ``value``) property.

The holdout is drawn at entry, so "entered and treated" against "entered and held out" is a
randomized comparison; the statistics are the campaigns' (:func:`sendwise.campaigns.results.
analyze`: Newcombe/Wilson intervals, z or Fisher test, Welch for revenue, Holm, the sample-ratio
check). Per split arm, each arm is compared with the whole holdout (the split is randomized
too). Per branch, a branch's customers are compared with the holdout customers who took the same
branch (the holdout walks the conditions without sending); where the engine did not record the
holdout's branch, the whole holdout is the baseline and a note says that this comparison is not
randomized (a branch chosen by ``p_purchase > 0.75`` buys more, message or not).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pandas as pd

from sendwise.campaigns.results import HOLDOUT, Results, analyze

TREATED = "journey"
ENTRY_COLUMNS = ("customer_id", "entry", "entered_at", "holdout", "arm", "branch")
"""``arm``: the split arm (None when the journey has no split); ``branch``: the branch label
(the step ids taken at conditions, e.g. ``"offer"``; None without a condition)."""
GOAL_COLUMNS = ("customer_id", "occurred_at", "value")
MONEY_KEYS = ("total", "revenue", "value")


def goal_value(properties: Mapping[str, Any] | None) -> float:
    """The money of a goal event: its ``total``, else ``revenue``, else ``value`` (0 if none)."""
    for key in MONEY_KEYS:
        raw = (properties or {}).get(key)
        if isinstance(raw, bool) or raw is None:
            continue
        try:
            amount = float(raw)
        except (TypeError, ValueError):
            continue
        if math.isfinite(amount):
            return amount
    return 0.0


def goal_frame(events: Iterable[Mapping[str, Any]], goal: str) -> pd.DataFrame:
    """``GOAL_COLUMNS`` of the ``goal`` events among intake rows (customer ids resolved)."""
    rows = [
        (e["customer_id"], e["occurred_at"], goal_value(e.get("properties")))
        for e in events
        if e.get("event") == goal and e.get("customer_id")
    ]
    frame = pd.DataFrame(rows, columns=list(GOAL_COLUMNS))
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"])
    return frame.astype({"value": "float64"})


def journey_units(entries: pd.DataFrame, goals: pd.DataFrame, within: timedelta) -> pd.DataFrame:
    """One row per entry: ``ENTRY_COLUMNS`` + ``conversion`` (0/1) and ``revenue`` from the
    goal events in ``(entered_at, entered_at + within]``. Vectorised (a merge on customer)."""
    units = entries.loc[:, list(ENTRY_COLUMNS)].reset_index(drop=True)
    units["entered_at"] = pd.to_datetime(units["entered_at"])
    units["unit"] = range(len(units))
    joined = units[["unit", "customer_id", "entered_at"]].merge(goals, on="customer_id")
    hit = joined[
        (joined["occurred_at"] > joined["entered_at"])
        & (joined["occurred_at"] <= joined["entered_at"] + within)
    ]
    per = hit.groupby("unit")["value"].agg(["size", "sum"])
    units["conversion"] = units["unit"].map(per["size"]).fillna(0).gt(0).astype("int64")
    units["revenue"] = units["unit"].map(per["sum"]).fillna(0.0).astype("float64")
    units["holdout"] = units["holdout"].astype(bool)
    return units.drop(columns="unit")


def span(d: timedelta) -> str:
    """A duration as a definition writes it: ``7d``, ``36h``, ``90m``, ``45s``."""
    seconds = int(d.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass
class Section:
    title: str
    results: Results


@dataclass
class JourneyResults:
    name: str
    entries: int
    sections: list[Section] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _analyze(units: pd.DataFrame, arms: pd.Series, shares: dict[str, float], title: str) -> Section:
    frame = units.assign(arm=arms.where(~units["holdout"], HOLDOUT))
    res = analyze(frame, shares=shares, engagement=(), outcomes=("conversion",), value="revenue")
    res.name = title
    return Section(title, res)


def analyze_journey(
    units: pd.DataFrame, *, name: str, holdout: float, splits: Mapping[str, float] | None = None
) -> JourneyResults:
    """The whole journey against its holdout, then each split arm and each branch.

    ``holdout`` is the designed share held out at entry and ``splits`` the split's designed
    shares (arm -> weight), for the sample-ratio checks."""
    out = JourneyResults(name, len(units))
    if units.empty:
        out.notes.append("no customer has entered the journey yet")
        return out
    held = units["holdout"]
    if not held.any():
        out.notes.append("no customer is in the holdout yet: nothing to compare with")
    both = {TREATED: 1 - holdout, HOLDOUT: holdout}
    treated = pd.Series(TREATED, index=units.index)
    out.sections.append(_analyze(units, treated, both, f"{name}: journey vs holdout"))
    if splits and units.loc[~held, "arm"].notna().any():
        total = sum(splits.values())
        shares = {a: (1 - holdout) * w / total for a, w in splits.items()} | {HOLDOUT: holdout}
        part = units[held | units["arm"].notna()]
        out.sections.append(_analyze(part, part["arm"], shares, f"{name}: per split arm"))
    for branch in sorted(units.loc[~held, "branch"].dropna().unique()):
        mine = units["branch"] == branch
        base = held & mine
        if not base.any() and held.any():
            base = held
            out.notes.append(
                f"branch {branch}: the holdout's branch is not recorded, so it is compared with "
                "the whole holdout (not randomized within the branch: read it as descriptive)"
            )
        part = units[(mine & ~held) | base]
        label = pd.Series(str(branch), index=part.index)
        shares = {str(branch): 1 - holdout, HOLDOUT: holdout}
        out.sections.append(_analyze(part, label, shares, f"{name}: branch {branch}"))
    return out


def branch_labels(defn: Any, step_log: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Per state: the branches its ``if`` steps took, as the step ids they jumped to (``offer``;
    ``check:else`` when a branch falls through to the next step), joined by ``>``."""
    steps = {s.id: s for s in defn.steps}
    taken: dict[str, list[str]] = {}
    for row in step_log:
        step = steps.get(row["step"])
        if row["kind"] != "if" or step is None:
            continue
        target = step.then if row["outcome"] == "then" else step.otherwise
        taken.setdefault(row["state_id"], []).append(target or f"{step.id}:{row['outcome']}")
    return {k: ">".join(v) for k, v in taken.items()}


def entries_frame(store: Any, name: str, defn: Any) -> pd.DataFrame:
    """``ENTRY_COLUMNS`` of every entry of the journey (its states), branches from the log."""
    states = store.journeys.states(name)
    branches = branch_labels(defn, store.journeys.step_log(name))
    rows = [(s.customer_id, s.entry, s.entered_at, bool(s.holdout), s.arm,
             branches.get(s.state_id)) for s in states]  # fmt: skip
    return pd.DataFrame(rows, columns=list(ENTRY_COLUMNS))


def intake_goals(store: Any, goal: str, page: int = 10_000) -> pd.DataFrame:
    """``GOAL_COLUMNS`` of the goal events in the intake log (read page by page)."""
    frames, seq = [], 0
    while True:
        rows = store.intake.since(seq, page)
        if not rows:
            break
        frames.append(goal_frame(rows, goal))
        seq = int(rows[-1]["seq"])
    return pd.concat(frames, ignore_index=True) if frames else goal_frame([], goal)


def journey_results(store: Any, name: str, *, default_within: timedelta) -> JourneyResults:
    """The results of a stored journey: its entries (store), their goal events (intake log)
    within the goal window (``default_within`` when the journey sets none)."""
    from sendwise.errors import JourneyError
    from sendwise.journeys.definition import parse_journey

    rec = store.journeys.get(name)
    if rec is None:
        raise JourneyError(f"no journey named {name!r}")
    defn = parse_journey(dict(rec.definition))
    if defn.goal is None:
        raise JourneyError(f"journey {name!r} has no [goal]: there is no conversion to measure")
    within = defn.goal.within or default_within
    units = journey_units(entries_frame(store, name, defn), intake_goals(store, defn.goal.event),
                          within)  # fmt: skip
    splits = next((dict(s.value) for s in defn.steps if s.kind == "split"), None)
    out = analyze_journey(units, name=name, holdout=defn.entry.holdout, splits=splits)
    out.notes.insert(0, f"conversion: {defn.goal.event} within {span(within)} of entering")
    return out
