"""``Serving.live_profiles`` (a journey batch's live profiles, read together, ADR 0129) gives
exactly what ``Serving.live_profile`` gives one customer at a time, and
``recommendations_many`` what ``recommendations`` gives: for customers in the snapshot, objectors
(in it or first seen after it), customers first seen after it, and unknown ones (absent)."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.config import Settings
from sendwise.errors import NotFoundError
from sendwise.privacy.ledger import object_to_profiling
from sendwise.serving.batch_profiles import BatchProfiles
from sendwise.serving.service import LiveProfile, Serving
from sendwise.store import MemoryStore
from serving_support import track

T0 = datetime(2026, 1, 1)
IN_SNAPSHOT = [f"c{i}" for i in range(4)]
EVERYONE = [*IN_SNAPSHOT, "new1", "new2", "ghost"]
EVENTS = ["Product Viewed", "Product Added", "Product Removed", "Order Completed", "Signed Up"]


def publish(store: MemoryStore) -> None:
    s = store.snapshots
    meta = {"scorer": {}, "popular": ["p9", "p8", "p1"], "segments": {}}
    v = s.begin(at=T0, as_of=T0, data_end=T0, meta=meta)
    s.write(v, "profile", [
        {"customer_id": c, "profile": {"email": f"{c}@x", "n": i},
         "scores": {"p_purchase": i / 10}, "segments": ["VIP"], "reasons": ["r"]}
        for i, c in enumerate(IN_SNAPSHOT)
    ])  # fmt: skip
    s.write(v, "recommendation", [
        {"customer_id": c, "rank": r, "product_id": f"p{r + i}", "score": 1.0 / r, "source": "als"}
        for i, c in enumerate(IN_SNAPSHOT[:2]) for r in (1, 2, 3)
    ])  # fmt: skip
    s.write(v, "product", [
        {"product_id": f"p{i}", "data": {"name": f"P{i}", "in_stock": i != 7}} for i in range(1, 10)
    ])  # fmt: skip
    s.write(v, "similar", [
        {"product_id": "p5", "rank": 1, "other_id": "p6", "weight": 0.9},
        {"product_id": "p2", "rank": 1, "other_id": "p4", "weight": 0.5},
    ])  # fmt: skip
    s.switch(v, customers=len(IN_SNAPSHOT), at=T0)


def same(a: LiveProfile, b: LiveProfile) -> None:
    assert (a.customer_id, a.version, a.known, a.objects) == (
        b.customer_id, b.version, b.known, b.objects
    )  # fmt: skip
    assert a.data() == b.data()
    assert a.live == b.live
    assert a.notes == b.notes


event_ = st.tuples(
    st.sampled_from(EVERYONE[:-1]),  # "ghost" never has an event
    st.sampled_from(EVENTS),
    st.sampled_from([f"p{i}" for i in range(1, 10)]),
    st.integers(-48, 48),  # hours from the snapshot's data end: before it are not live
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(event_, max_size=25),
    objectors=st.sets(st.sampled_from(EVERYONE)),
    withdrawn_again=st.sets(st.sampled_from(EVERYONE)),
    asked=st.lists(st.sampled_from(EVERYONE), min_size=1, max_size=12),
)
def test_live_profiles_is_live_profile_of_each(
    events: list[tuple[str, str, str, int]],
    objectors: set[str],
    withdrawn_again: set[str],
    asked: list[str],
) -> None:
    store = MemoryStore()
    publish(store)
    rows = []
    for cid, name, product, hours in events:
        row = track(cid, name, at=T0 + timedelta(hours=hours), product_id=product)
        row["received_at"] = T0 + timedelta(hours=hours)
        rows.append(row)
    store.intake.append(rows)
    for cid in objectors:
        object_to_profiling(store, cid, objects=True, at=T0)
    for cid in withdrawn_again:  # a later change wins: some object no more
        object_to_profiling(store, cid, objects=False, at=T0 + timedelta(minutes=1))
    clock = lambda: T0 + timedelta(days=1)  # noqa: E731
    one, many = Serving(store, Settings(), clock=clock), Serving(store, Settings(), clock=clock)

    got = many.live_profiles(asked)
    expected = {}
    for cid in dict.fromkeys(asked):
        with contextlib.suppress(NotFoundError):
            expected[cid] = one.live_profile(cid)
    assert list(got) == list(expected)
    for cid in expected:
        same(got[cid], expected[cid])
    assert "ghost" not in got

    recs = many.recommendations_many(got, 4)
    assert recs == {cid: one.recommendations(cid, 4) for cid in expected}


def test_nothing_published_is_not_found_and_batch_profiles_give_none() -> None:
    store = MemoryStore()
    serving = Serving(store, Settings())
    with pytest.raises(NotFoundError):
        serving.live_profiles(["c1"])
    assert serving.live_profiles([]) == {}
    assert BatchProfiles(serving).get_many(["c1"]) == {}


def test_batch_profiles_keep_a_read_for_seconds_unless_asked_fresh() -> None:
    store = MemoryStore()
    publish(store)
    now = [0.0]
    calls: list[list[str]] = []
    serving: Any = Serving(store, Settings(), clock=lambda: T0 + timedelta(days=1))
    read = serving.live_profiles
    serving.live_profiles = lambda ids: calls.append(list(ids)) or read(ids)
    kept = BatchProfiles(serving, seconds=5, clock=lambda: now[0])
    assert set(kept.get_many(["c0", "c1", "ghost"])) == {"c0", "c1"}
    assert kept.get("c0") is not None and kept.get("ghost") is None
    assert calls == [["c0", "c1", "ghost"]]  # the second reads were kept ones
    now[0] = 6.0
    kept.get_many(["c0", "c2"])
    kept.get_many(["c2"], fresh=True)
    assert calls[1:] == [["c0", "c2"], ["c2"]]
