"""Live fields from intake events, real-time re-ranking and the changes between snapshots:
pure functions, checked on examples and with hypothesis properties over any event sequence."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise.serving.live import live_fields
from sendwise.serving.live_recs import rank, seeds
from sendwise.serving.publish import changes_between

T0 = datetime(2026, 12, 6, 9)


def ev(event: str, minutes: int, **props: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "occurred_at": T0 + timedelta(minutes=minutes),
        "properties": props,
    }


def test_cart_views_and_orders_follow_the_ecommerce_spec() -> None:
    events = [
        {"type": "page", "event": "Home", "occurred_at": T0, "properties": {}},
        ev("Product Viewed", 1, product_id="p1"),
        ev("Product Viewed", 2, product_id="p2"),
        ev("Product Viewed", 3, product_id="p1"),
        ev("Product Added", 4, product_id="p1", quantity=2),
        ev("Product Added", 5, sku="p2"),
        ev("Product Removed", 6, product_id="p1", quantity=1),
        ev("Product Added", 7, product_id="p3"),
        ev("Order Completed", 8, order_id="o1", total=30.5, products=[{"product_id": "p3"}]),
    ]
    live = live_fields(events, recent=10)
    assert live.events == 9
    assert live.last_activity == T0 + timedelta(minutes=8)
    assert live.recently_viewed == ["p1", "p2"]  # newest first, distinct
    assert live.cart == {"p1": 1, "p2": 1}  # p3 was ordered
    assert live.orders == [
        {"order_id": "o1", "total": 30.5, "at": T0 + timedelta(minutes=8), "products": ["p3"]}
    ]
    assert live.bought == {"p3"}
    out = live.as_dict()
    assert out["cart"] == [{"product_id": "p1", "quantity": 1}, {"product_id": "p2", "quantity": 1}]
    assert out["orders_since_snapshot"][0]["at"] == "2026-12-06T09:08:00"


def test_an_order_without_products_empties_the_cart() -> None:
    live = live_fields([ev("Product Added", 1, product_id="p1"), ev("Order Completed", 2)])
    assert live.cart == {} and live.orders[0]["total"] is None


names = st.sampled_from(["Product Viewed", "Product Added", "Product Removed", "Order Completed"])
values = st.one_of(st.none(), st.integers(-5, 5), st.text(max_size=3), st.floats(), st.booleans())
props = st.dictionaries(
    st.sampled_from(["product_id", "sku", "quantity", "total", "products", "order_id"]),
    st.one_of(values, st.lists(st.dictionaries(st.just("product_id"), values), max_size=3)),
)
events_st = st.lists(
    st.builds(
        lambda n, m, p: ev(n, m, **p),
        names,
        st.integers(0, 10_000),
        props,
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(events_st, st.integers(1, 20))
def test_live_fields_hold_their_invariants_for_any_events(events: list, recent: int) -> None:
    events.sort(key=lambda e: e["occurred_at"])
    live = live_fields(events, recent=recent)
    assert live.events == len(events)
    assert all(q > 0 for q in live.cart.values())
    assert len(live.recently_viewed) == len(set(live.recently_viewed)) <= recent
    assert all(isinstance(p, str) and p for p in [*live.cart, *live.recently_viewed])
    for order in live.orders:  # an order's products are out of the cart it emptied
        assert order["total"] is None or order["total"] == order["total"]
    assert live.as_dict()["events_since_snapshot"] == len(events)


SNAP = [
    {"rank": 1, "product_id": "a", "source": "als"},
    {"rank": 2, "product_id": "b", "source": "als"},
    {"rank": 3, "product_id": "c", "source": "als"},
]


def test_a_fresh_view_pulls_its_neighbours_to_the_top() -> None:
    live = live_fields([ev("Product Viewed", 1, product_id="v")])
    picks = rank(
        3,
        snapshot=SNAP,
        neighbours=[("v", "n1", 0.9), ("v", "n2", 0.4), ("x", "n3", 1.0)],
        seed_weights=seeds(live),
        exclude=set(),
        popular=["a", "z"],
    )
    assert [p.product_id for p in picks] == ["n1", "a", "n2"]
    assert picks[0].source == "live:similar"


def test_cart_and_bought_products_are_never_recommended() -> None:
    picks = rank(
        5,
        snapshot=SNAP,
        neighbours=[("s", "a", 0.5), ("s", "d", 0.4)],
        seed_weights={"s": 1.0},
        exclude={"a", "b"},
        popular=["b", "e", "f", "g"],
        out_of_stock={"f"},
    )
    ids = [p.product_id for p in picks]
    assert ids == ["d", "c", "e", "g"]  # only four allowed products exist
    assert not {"a", "b", "f", "s"} & set(ids)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 12),
    st.lists(st.tuples(st.sampled_from("stuv"), st.sampled_from("abcdefgh"), st.floats(0, 1))),
    st.sets(st.sampled_from("abcdefgh")),
)
def test_picks_are_distinct_allowed_and_at_most_k(k: int, nb: list, exclude: set) -> None:
    picks = rank(
        k,
        snapshot=SNAP,
        neighbours=nb,
        seed_weights={"s": 1.0, "t": 0.5},
        exclude=exclude,
        popular=list("hgfedcba"),
    )
    ids = [p.product_id for p in picks]
    assert len(ids) == len(set(ids)) <= k
    assert not set(ids) & exclude
    allowed = set("abcdefgh") - exclude
    assert len(ids) == min(k, len(allowed))


def test_changes_report_segments_entered_left_and_scores_crossed() -> None:
    old = [
        {"customer_id": "c1", "segments": ["A", "B"], "scores": {"p_purchase": 0.4}},
        {"customer_id": "c2", "segments": [], "scores": {"p_purchase": 0.9}},
    ]
    new = [
        {"customer_id": "c1", "segments": ["B", "C"], "scores": {"p_purchase": 0.6}},
        {"customer_id": "c2", "segments": [], "scores": {"p_purchase": None}},
        {"customer_id": "c3", "segments": ["A"], "scores": {"p_purchase": 0.7}},
    ]
    got = changes_between(old, new, {"p_purchase": [0.5]}, version=2, at=T0)
    brief = [(c["type"], c["customer_id"], c.get("segment") or c.get("direction")) for c in got]
    assert brief == [
        ("segment.entered", "c1", "C"),
        ("segment.left", "c1", "A"),
        ("score.crossed", "c1", "up"),
        ("segment.entered", "c3", "A"),
    ]
    assert got[2]["old"] == 0.4 and got[2]["new"] == 0.6 and got[2]["snapshot"] == 2
