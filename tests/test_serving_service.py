"""The read side on the in-memory store: a hand-made snapshot and intake events, so that every
answer is known exactly (the API tests run the same on a real build, SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from sendwise.config import Settings
from sendwise.errors import NotFoundError
from sendwise.serving.service import Serving
from sendwise.store import MemoryStore
from serving_support import track

T0 = datetime(2026, 1, 1)


def snapshot(store: MemoryStore) -> int:
    s = store.snapshots
    meta = {"scorer": {}, "popular": ["p9", "p8", "p1"], "segments": {"VIP": 2}}
    v = s.begin(at=T0, as_of=T0, data_end=T0, meta=meta)
    s.write(v, "profile", [
        {"customer_id": c, "profile": {"email": f"{c}@x"}, "scores": {"p_purchase": 0.3},
         "segments": ["VIP"], "reasons": ["r1"]} for c in ("c1", "c2")
    ])  # fmt: skip
    s.write(v, "segment_member", [{"segment": "VIP", "customer_id": c} for c in ("c1", "c2")])
    s.write(v, "recommendation", [
        {"customer_id": "c1", "rank": i, "product_id": p, "score": 1.0 / i, "source": "als"}
        for i, p in enumerate(["p1", "p2", "p3"], start=1)
    ])  # fmt: skip
    s.write(v, "product", [
        {"product_id": f"p{i}", "data": {"name": f"P{i}", "in_stock": i != 7}} for i in range(1, 10)
    ])  # fmt: skip
    s.write(v, "similar", [
        {"product_id": "p5", "rank": 1, "other_id": "p6", "weight": 0.9},
        {"product_id": "p5", "rank": 2, "other_id": "p7", "weight": 0.8},
        {"product_id": "p2", "rank": 1, "other_id": "p4", "weight": 0.5},
    ])  # fmt: skip
    s.switch(v, customers=2, at=T0)
    return v


@pytest.fixture
def serving() -> Any:
    store = MemoryStore()
    snapshot(store)
    return Serving(store, Settings(), clock=lambda: T0 + timedelta(days=1))


def test_profile_is_the_snapshot_row_plus_live_fields(serving: Any) -> None:
    body = serving.profile("c1")
    assert body["source"] == "snapshot" and body["scores"] == {"p_purchase": 0.3}
    assert body["segments"] == ["VIP"] and body["reasons"] == ["r1"]
    assert body["live"]["events_since_snapshot"] == 0
    serving.store.intake.append([track("c1", "Product Viewed", product_id="p5")])
    assert serving.profile("c1")["live"]["recently_viewed"] == ["p5"]


def test_recommendations_follow_views_skip_cart_and_stock(serving: Any) -> None:
    assert [r["product_id"] for r in serving.recommendations("c1", 3)["recommendations"]] == [
        "p1", "p2", "p3"
    ]  # fmt: skip
    serving.store.intake.append(
        [
            track("c1", "Product Viewed", product_id="p5"),
            track("c1", "Product Added", product_id="p1"),
        ]
    )
    recs = serving.recommendations("c1", 4)
    ids = [r["product_id"] for r in recs["recommendations"]]
    assert recs["live"] is True
    # p7 out of stock, p1 in the cart, p5 the seed; popular p9 fills
    assert ids == ["p6", "p2", "p3", "p9"]
    assert recs["recommendations"][0]["product"] == {"name": "P6", "in_stock": True}


def test_unknown_customers_404_and_new_ones_are_live(serving: Any) -> None:
    with pytest.raises(NotFoundError):
        serving.profile("nobody")
    serving.store.intake.append([track("new", "Product Viewed", product_id="p2")])
    body = serving.profile("new")
    assert body["source"] == "live" and body["scores"]["p_purchase"] is None
    assert any("no promoted propensity model" in n for n in body["notes"])
    ids = [r["product_id"] for r in serving.recommendations("new", 3)["recommendations"]]
    assert ids == ["p4", "p9", "p8"]  # p2's neighbour, then the popular products


def test_segment_members_page_and_unknown_segments_404(serving: Any) -> None:
    first = serving.segment_members("VIP", cursor=None, limit=1)
    assert first["members"] == ["c1"] and first["next_cursor"] == "c1" and first["size"] == 2
    last = serving.segment_members("VIP", cursor="c1", limit=1)
    assert last["members"] == ["c2"] and last["next_cursor"] is None
    with pytest.raises(NotFoundError):
        serving.segment_members("Nope", cursor=None, limit=10)


def test_nothing_published_is_a_404() -> None:
    with pytest.raises(NotFoundError):
        Serving(MemoryStore(), Settings()).profile("c1")


def test_the_spliced_json_answer_is_the_profile(serving: Any) -> None:
    import json

    serving.store.intake.append([track("c1", "Product Added", product_id="p2", quantity=3)])
    serving.store.intake.append([track("new", "Product Viewed", product_id="p2")])
    for cid in ("c1", "c2", "new"):
        assert json.loads(serving.profile_json(cid)) == serving.profile(cid)


def _object(store: Any, customer_id: str, objects: bool = True, minute: int = 0) -> None:
    from sendwise.privacy.ledger import object_to_profiling

    object_to_profiling(store, customer_id, objects=objects, at=T0 + timedelta(minutes=minute))


@pytest.fixture
def fresh() -> Any:
    """A service that reads objections on every request (objection_seconds = 0)."""
    store = MemoryStore()
    snapshot(store)
    settings = Settings(serving={"objection_seconds": 0})
    return Serving(store, settings, clock=lambda: T0 + timedelta(days=1))


def test_an_objector_gets_no_scores_and_generic_recommendations(fresh: Any) -> None:
    store = fresh.store
    store.intake.append([track("c1", "Product Viewed", product_id="p5"),
                         track("c1", "Product Added", product_id="p1")])  # fmt: skip
    personal = [r["product_id"] for r in fresh.recommendations("c1", 4)["recommendations"]]
    assert personal == ["p6", "p2", "p3", "p9"]
    _object(store, "c1")
    body = fresh.profile("c1")
    assert body["scores"] and set(body["scores"].values()) == {None}  # every score null
    assert body["segments"] == [] and body["reasons"] == []
    assert body["profile"] == {"email": "c1@x"} and body["source"] == "snapshot"
    assert body["notes"] == ["objects to profiling: no scores, generic recommendations"]
    assert json.loads(fresh.profile_json("c1")) == body
    recs = fresh.recommendations("c1", 4)
    # the popular products in stock, in the same order as for anyone without history: not
    # their snapshot list, not their views' neighbours, not even the cart left out
    assert recs["live"] is False
    assert [(r["product_id"], r["source"]) for r in recs["recommendations"]] == [
        ("p9", "fallback:popularity"), ("p8", "fallback:popularity"),
        ("p1", "fallback:popularity"),
    ]  # fmt: skip
    assert fresh.profile("c2")["scores"] == {"p_purchase": 0.3}  # others untouched
    _object(store, "c1", objects=False, minute=1)
    assert fresh.profile("c1")["scores"] == {"p_purchase": 0.3}


def test_an_objector_first_seen_live_is_not_scored(fresh: Any) -> None:
    store = fresh.store
    store.intake.append([track("new", "Product Viewed", product_id="p2")])
    assert "p_purchase" in fresh.profile("new")["scores"]
    _object(store, "new")
    body = fresh.profile("new")
    assert body["source"] == "live" and set(body["scores"].values()) == {None}
    assert body["reasons"] == []
    assert body["notes"] == ["objects to profiling: no scores, generic recommendations"]
    ids = [r["product_id"] for r in fresh.recommendations("new", 3)["recommendations"]]
    assert ids == ["p9", "p8", "p1"]  # not p2's neighbour p4
    assert json.loads(fresh.profile_json("new")) == body


def test_objections_are_cached_for_objection_seconds() -> None:
    from sendwise.serving.objections import Objections

    store = MemoryStore()
    reads: list[str] = []
    real = store.consents.in_force

    def counted(*a: Any, **k: Any) -> Any:
        reads.append(a[0])
        return real(*a, **k)

    store.consents.in_force = counted  # type: ignore[method-assign]
    now = [0.0]
    objections = Objections(store.consents, seconds=5, clock=lambda: now[0])
    assert objections.objects("c1") is False
    _object(store, "c1")
    now[0] = 4.0
    assert objections.objects("c1") is False and reads == ["c1"]  # cached
    now[0] = 5.5
    assert objections.objects("c1") is True and reads == ["c1", "c1"]


def test_journey_conditions_on_scores_take_the_else_branch_for_objectors(fresh: Any) -> None:
    from sendwise.journeys.conditions import evaluate
    from sendwise.journeys.facts import FactSource

    facts = FactSource(fresh.store, fresh, lambda: T0 + timedelta(days=1))
    assert evaluate("p_purchase > 0.2", facts("c1").values) is True
    _object(fresh.store, "c1")
    facts.clear()
    values = facts("c1").values
    assert values["p_purchase"] is None and values["email"] == "c1@x"
    assert evaluate("p_purchase > 0.2", values) is False
    assert evaluate("not (p_purchase > 0.2)", values) is True  # comparisons with null are false
    assert facts("c1").email == "c1@x"  # what they consented to still reaches them
