"""Journey results: the goal window per entry (hand-computed cases and a property against a
brute-force count), and the lift over the holdout per journey, split arm and branch on data
with a known effect."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise.campaigns.results import lift
from sendwise.journeys import loads_journey
from sendwise.journeys.results import (
    ENTRY_COLUMNS,
    analyze_journey,
    goal_frame,
    goal_value,
    journey_units,
)

T0 = datetime(2026, 3, 1, 12)
WEEK = timedelta(days=7)


def entries(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(ENTRY_COLUMNS))


def test_the_goal_window_is_after_entry_and_within_the_goal_time() -> None:
    e = entries(
        [
            ("a", 1, T0, False, None, None),
            ("a", 2, T0 + timedelta(days=20), False, None, None),  # re-entered
            ("b", 1, T0, True, None, None),
            ("c", 1, T0, False, None, None),
        ]
    )
    goals = goal_frame(
        [
            {
                "event": "Order Completed",
                "customer_id": "a",
                "occurred_at": T0,
                "properties": {"total": 99},
            },  # the entry's own moment: not after it
            {
                "event": "Order Completed",
                "customer_id": "a",
                "occurred_at": T0 + WEEK,
                "properties": {"revenue": "12.5"},
            },  # the window's last instant counts
            {
                "event": "Order Completed",
                "customer_id": "a",
                "occurred_at": T0 + timedelta(days=21),
                "properties": {"total": 30},
            },
            {
                "event": "Order Completed",
                "customer_id": "b",
                "occurred_at": T0 + timedelta(days=8),
                "properties": {"total": 40},
            },  # too late
            {
                "event": "Product Added",
                "customer_id": "c",
                "occurred_at": T0 + timedelta(hours=1),
                "properties": {"total": 5},
            },  # not the goal
            {
                "event": "Order Completed",
                "customer_id": None,
                "occurred_at": T0,
                "properties": {},
            },  # anonymous: no entry to credit
        ],
        "Order Completed",
    )
    units = journey_units(e, goals, WEEK)
    assert units["conversion"].tolist() == [1, 1, 0, 0]
    assert units["revenue"].tolist() == [12.5, 30.0, 0.0, 0.0]


def test_goal_value_reads_total_then_revenue_then_value_and_ignores_junk() -> None:
    assert goal_value({"total": 10, "revenue": 20}) == 10.0
    assert goal_value({"revenue": "7.5"}) == 7.5
    assert goal_value({"total": "n/a", "value": 3}) == 3.0
    assert goal_value({"total": float("nan"), "revenue": True}) == 0.0
    assert goal_value(None) == 0.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 30), st.booleans()), max_size=12),
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40), st.integers(0, 100)), max_size=20),
    st.integers(1, 10),
)
def test_every_entry_is_one_unit_and_counts_match_a_brute_force(entered, orders, days) -> None:
    e = entries(
        [(f"c{c}", i, T0 + timedelta(days=d), h, None, None) for i, (c, d, h) in enumerate(entered)]
    )
    goals = pd.DataFrame(
        [(f"c{c}", T0 + timedelta(days=d), float(v)) for c, d, v in orders],
        columns=["customer_id", "occurred_at", "value"],
    )
    units = journey_units(e, goals, timedelta(days=days))
    assert len(units) == len(e)
    for u, (c, d, _) in zip(units.itertuples(), entered, strict=True):
        hit = [v for cc, dd, v in orders if cc == c and d < dd <= d + days]
        assert u.conversion == int(bool(hit))
        assert u.revenue == sum(hit)


def _known_effect(n: int, holdout: float, recorded: bool, seed: int = 0) -> pd.DataFrame:
    """Customers above 0.75 take 'offer' (base 0.30, +0.10 when treated), the others 'plain'
    (base 0.10, +0.02); half of the treated are in split arm a, half in b (no difference)."""
    rng = np.random.default_rng(seed)
    score = rng.random(n)
    held = rng.random(n) < holdout
    branch = np.where(score > 0.75, "offer", "plain")
    base = np.where(branch == "offer", 0.30, 0.10)
    gain = np.where(branch == "offer", 0.10, 0.02)
    converted = rng.random(n) < base + np.where(held, 0.0, gain)
    arm = np.where(held, None, np.where(rng.random(n) < 0.5, "a", "b"))
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "entry": 1,
            "entered_at": T0,
            "holdout": held,
            "arm": arm,
            "branch": np.where(held & ~recorded, None, branch),
            "conversion": converted.astype(int),
            "revenue": converted * rng.gamma(2.0, 30.0, n),
        }
    )


def test_lift_per_journey_split_and_branch_covers_the_known_effect() -> None:
    """Over 20 seeds each 95% interval holds its true effect at least 16 times (binomial(20,
    0.95) falls below 16 with probability 0.003) and no sample-ratio check raises an alarm."""
    truth = {("journey vs holdout", "journey"): 0.25 * 0.10 + 0.75 * 0.02,
             ("per split arm", "a"): 0.04, ("per split arm", "b"): 0.04,
             ("branch offer", "offer"): 0.10, ("branch plain", "plain"): 0.02}  # fmt: skip
    covered = dict.fromkeys(truth, 0)
    for seed in range(20):
        units = _known_effect(5_000, 0.2, recorded=True, seed=seed)
        res = analyze_journey(units, name="welcome", holdout=0.2, splits={"a": 1, "b": 1})
        by = {s.title.split(": ", 1)[1]: s.results for s in res.sections}
        assert list(by) == ["journey vs holdout", "per split arm", "branch offer", "branch plain"]
        assert res.notes == []
        assert not any(s.results.srm.mismatch for s in res.sections)
        for (section, arm), effect in truth.items():
            row = lift(by[section], arm, "conversion")
            covered[section, arm] += row.low < effect < row.high
    assert min(covered.values()) >= 16, covered


def test_a_branch_without_the_holdouts_branch_is_flagged_as_not_randomized() -> None:
    units = _known_effect(4_000, 0.2, recorded=False)
    res = analyze_journey(units, name="welcome", holdout=0.2)
    assert any("branch offer" in n and "not randomized" in n for n in res.notes)
    # the naive comparison is biased upwards: offer customers buy more, message or not
    offer = next(s.results for s in res.sections if s.title.endswith("branch offer"))
    assert lift(offer, "offer", "conversion").low > 0.10


def test_no_entries_and_no_holdout_are_notes_not_errors() -> None:
    empty = analyze_journey(
        pd.DataFrame(columns=[*ENTRY_COLUMNS, "conversion", "revenue"]), name="x", holdout=0.1
    )
    assert empty.sections == [] and "no customer has entered" in empty.notes[0]
    units = _known_effect(200, 0.0, recorded=True)
    res = analyze_journey(units, name="x", holdout=0.0)
    assert any("no customer is in the holdout" in n for n in res.notes)


def test_results_from_each_store_agree_with_a_hand_count(store, tmp_path) -> None:
    """The abandoned cart on SQLite and PostgreSQL (the ``store`` fixture) and in memory: the
    entries, the holdout and the conversions counted by hand from the events fed in."""
    from sendwise.config import init_project, load_settings
    from sendwise.journeys.engine import JourneyEngine
    from sendwise.journeys.results import journey_results
    from sendwise.journeys.service import save_journey
    from sendwise.journeys.starters import starter_path
    from sendwise.journeys.validation import known_names
    from sendwise.simulate.journeys import SimClock
    from sendwise.store.memory import MemoryStore

    init_project(tmp_path / "p")
    settings = load_settings(tmp_path / "p")
    defn = loads_journey(starter_path("abandoned_cart").read_text(encoding="utf-8"))

    def track(n: int, cid: str, event: str, at: datetime, **props) -> dict:
        return {"message_id": f"m{n}", "type": "track", "event": event, "user_id": cid,
                "anonymous_id": None, "customer_id": cid, "occurred_at": at, "received_at": at,
                "sent_at": at, "properties": props, "traits": {}, "context": {},
                "source": "test"}  # fmt: skip

    adds = [track(i, f"C{i:03d}", "Product Added", T0) for i in range(80)]
    buys = [track(100 + i, f"C{i:03d}", "Order Completed", T0 + timedelta(days=i % 10),
                  total=10 + i) for i in range(0, 80, 2)]  # fmt: skip
    outcomes = {}
    for repos in (store, MemoryStore()):
        clock = SimClock(T0)
        save_journey(repos, defn, known_names(settings), T0)
        engine = JourneyEngine(repos, settings, clock=clock)
        repos.intake.append(adds)
        engine.on_events(adds)
        engine.run_due(T0)
        clock.now = T0 + timedelta(days=10)
        repos.intake.append(buys)
        engine.on_events(buys)
        res = journey_results(repos, "abandoned_cart", default_within=WEEK)
        arms = res.sections[0].results.arms
        held = {s.customer_id for s in repos.journeys.states("abandoned_cart") if s.holdout}
        # by hand: even customers buy on day i % 10; within 7 days after entering means 1..7
        # (day 0 is the entry's own instant: not after it)
        won = {f"C{i:03d}": 10.0 + i for i in range(0, 80, 2) if 0 < i % 10 <= 7}
        for arm, who in (("journey", set(won) - held), ("holdout", set(won) & held)):
            if arm in arms.index:
                assert int(arms.at[arm, "conversion"]) == len(who)
                assert arms.at[arm, "revenue"] == pytest.approx(sum(won[c] for c in who))
        assert int(arms["n"].sum()) == 80
        outcomes[type(repos).__name__] = arms[["n", "conversion", "revenue"]].to_dict()
    assert len(set(map(str, outcomes.values()))) == 1  # the same figures in every store
