"""Simulated time: the simulated shop's stream replayed through the real journey engine (on the
in-memory store, under its contract suite) with a simulated clock; the customers answer from
their ground truth. The journeys' measured conversion lift over their holdout holds the true
effect (computed exactly from the ground truth, journey_response.true_effect) within its 95%
interval, for the abandoned cart and the welcome series.

The shop has a strong email effect (60% persuadable, purchase rate x4-8 for a week) so that
the true effect is well above zero; the journeys hold out half their entrants for power."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from sendwise.campaigns.results import lift
from sendwise.config import init_project, load_settings
from sendwise.journeys import loads_journey
from sendwise.journeys.engine import JourneyEngine
from sendwise.journeys.results import entries_frame, journey_results
from sendwise.journeys.service import save_journey
from sendwise.journeys.starters import starter_path
from sendwise.journeys.validation import known_names
from sendwise.simulate import ShopConfig, SimulatedShop, simulate_shop
from sendwise.simulate.journeys import SimClock, replay_journeys
from sendwise.store.memory import MemoryStore


def strong_shop(customers: int, days: int) -> SimulatedShop:
    cfg = ShopConfig(persuadable_share=0.6, persuadable_effect=(4.0, 8.0))
    return simulate_shop(customers=customers, days=days, seed=3, config=cfg)


# sizes that keep each replay under ~10 s (every signup enters the welcome series, so it has
# far more entries per customer than the abandoned cart)
@pytest.mark.parametrize(("name", "customers", "days"),
                         [("abandoned_cart", 6000, 90), ("welcome", 3000, 60)])  # fmt: skip
def test_measured_lift_holds_the_true_effect(name: str, customers: int, days: int,
                                             tmp_path: Path) -> None:  # fmt: skip
    shop = strong_shop(customers, days)
    init_project(tmp_path)
    settings = load_settings(tmp_path)
    text = starter_path(name).read_text(encoding="utf-8")
    defn = loads_journey(text.replace("holdout = 0.1", "holdout = 0.5"))
    store = MemoryStore()
    start = pd.Timestamp(shop.params["start"]).to_pydatetime()
    clock = SimClock(start)
    save_journey(store, defn, known_names(settings), start)
    engine = JourneyEngine(store, settings, clock=clock)
    replay = replay_journeys(store, engine, clock, shop, [defn.campaign_id])

    res = journey_results(store, name, default_within=timedelta(days=7))
    measured = lift(res.sections[0].results, "journey", "conversion")
    units = entries_frame(store, name, defn)
    assert defn.goal is not None and defn.goal.within is not None
    truth = replay.truth(units, defn.goal.within)
    assert measured.low < truth < measured.high, (measured.to_dict(), truth)
    assert truth > 0.005  # the ground truth says the journey helps: the test is not vacuous
    assert not res.sections[0].results.srm.mismatch

    # the replay's own invariants: held-out customers get nothing, every message was queued
    # for a customer who entered, and only consenting customers' messages were delivered
    held = set(units.loc[units["holdout"], "customer_id"])
    plan = store.messages.plan_frame(defn.campaign_id)
    assert held.isdisjoint(plan["customer_id"])
    assert set(plan["customer_id"]) <= set(units["customer_id"])
    consented = shop.truth.to_pandas().set_index("customer_id")["consented"]
    assert consented.reindex(replay.delivered["customer_id"]).all()
    assert replay.counts["delivered"] > 100
