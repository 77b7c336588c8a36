"""The journey response model against its own exact truth: over many seeds, the simulated
conversion of a treated entry converges to the expected Y1 that ``true_effect`` computes, for a
persuadable (extra orders), a sleeping dog (thinned orders) and an indifferent customer; and the
stream has only known customers' events, in time order."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from sendwise.simulate import simulate_shop
from sendwise.simulate.journey_response import ResponseModel, expected_outcomes, true_effect
from sendwise.simulate.journey_stream import STREAM_EVENTS, journey_stream

T0 = datetime(2025, 3, 1, 10)
WEEK = timedelta(days=7)


def truth(effect: float, rate: float, died: datetime | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["c"],
            "purchase_rate": [rate],
            "died_at": [died],
            "email_effect": [effect],
            "future_revenue": [100.0],
            "future_orders": [2],
            "consented": [True],
        }
    )


def simulate_once(t: pd.DataFrame, organic: list[datetime], sends: list[datetime], seed: int):
    model = ResponseModel(t, seed=seed)
    orders = []
    for s in sends:
        orders += [e["occurred_at"] for e in model.deliver("c", s)]
    kept = [o for o in organic if model.keeps("c", f"m{seed}-{o.isoformat()}", o)]
    return model, any(T0 < o <= T0 + WEEK for o in kept + orders)


@pytest.mark.parametrize(
    ("effect", "organic"),
    [
        (2.5, []),  # persuadable, no purchase of their own: extra orders only
        (0.4, [T0 + timedelta(days=3), T0 + timedelta(days=5)]),  # sleeping dog: thinning
        (0.4, [T0 + timedelta(minutes=30)]),  # bought before the message: unaffected
        (1.0, [T0 + timedelta(days=2)]),  # indifferent
    ],
)
def test_simulated_conversion_converges_to_the_exact_expected_outcome(effect, organic) -> None:
    t = truth(effect, rate=0.08)
    sends = [T0 + timedelta(hours=1), T0 + timedelta(hours=24)]
    hits = []
    model = None
    for seed in range(3000):
        model, converted = simulate_once(t, organic, sends, seed)
        hits.append(converted)
    units = pd.DataFrame({"customer_id": ["c"], "entered_at": [T0], "holdout": [False]})
    frame = pd.DataFrame({"customer_id": "c", "occurred_at": organic})
    out = expected_outcomes(units, frame, model, WEEK)
    y1 = float(out["y1"].iloc[0])
    assert out["y0"].iloc[0] == float(bool(organic))
    se = max(np.sqrt(y1 * (1 - y1) / len(hits)), 1e-9)
    assert abs(np.mean(hits) - y1) < 4 * se + 1e-9, (np.mean(hits), y1)
    effect_size = true_effect(units, frame, model, WEEK)
    assert effect_size == pytest.approx(y1 - float(bool(organic)))


def test_a_dead_customer_gains_nothing_and_a_refusing_one_gets_no_message() -> None:
    t = truth(3.0, rate=0.5, died=T0)
    model = ResponseModel(t)
    assert model.deliver("c", T0 + timedelta(hours=1)) == []
    units = pd.DataFrame({"customer_id": ["c"], "entered_at": [T0], "holdout": [False]})
    empty = pd.DataFrame({"customer_id": [], "occurred_at": []})
    assert true_effect(units, empty, model, WEEK) == 0.0
    refusing = ResponseModel(truth(3.0, rate=0.5).assign(consented=False))
    assert refusing.deliver("c", T0) == [] and refusing.periods() == {}


def test_the_stream_is_known_customers_events_in_time_order() -> None:
    shop = simulate_shop(customers=400, days=30, seed=2)
    stream = journey_stream(shop)
    assert set(stream["event"]) == set(STREAM_EVENTS)
    assert stream["customer_id"].notna().all()
    assert stream["occurred_at"].is_monotonic_increasing
    assert stream["message_id"].is_unique
    orders = shop.tables["order"].to_pandas()
    assert (stream["event"] == "Order Completed").sum() == (orders["status"] == "completed").sum()
    start = pd.Timestamp(shop.params["start"])
    signups = stream[stream["event"] == "Signed Up"]
    assert (signups["occurred_at"] >= start).all()
