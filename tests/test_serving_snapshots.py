"""Serving snapshots in the store, on the in-memory fake, SQLite and PostgreSQL: versions
written unseen, switched atomically (a reader during a publish sees the old version or the new
one whole, never a mix), pruned to the newest few, segment members paged, open-time slot
choices kept first-wins."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import sql_store
from sendwise.store import MemoryStore

T0 = datetime(2026, 12, 1, 12)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    with sql_store(request.param, tmp_path) as st:
        yield st


def write_version(st: Any, tag: int, customers: int = 60, *, switch: bool = True) -> int:
    """A version whose every row carries ``tag`` (in the profile, the scores, the segment and
    the recommended product ids), so that a mixed read would show two tags."""
    snaps = st.snapshots
    v = snaps.begin(at=T0, as_of=T0, data_end=T0, meta={"tag": tag, "segments": {}})
    ids = [f"c{i:04d}" for i in range(customers)]
    snaps.write(
        v,
        "profile",
        [
            {
                "customer_id": c,
                "profile": {"tag": tag},
                "scores": {"p_purchase": tag / 100},
                "segments": [f"s{tag}"],
                "reasons": [],
            }
            for c in ids
        ],
    )
    snaps.write(v, "segment_member", [{"segment": "all", "customer_id": c} for c in ids])
    snaps.write(
        v,
        "recommendation",
        [
            {"customer_id": c, "rank": r, "product_id": f"p{tag}-{r}", "score": 1.0, "source": "x"}
            for c in ids
            for r in range(1, 4)
        ],
    )
    if switch:
        snaps.switch(v, customers=customers, at=T0 + timedelta(minutes=tag))
    return v


def test_nothing_is_visible_before_the_switch(store: Any) -> None:
    assert store.snapshots.profile("c0001") is None
    v = write_version(store, 1, switch=False)
    assert store.snapshots.profile("c0001") is None
    assert store.snapshots.current_version() is None
    assert store.snapshots.switch(v, customers=60, at=T0) is None
    row = store.snapshots.profile("c0001")
    assert row is not None and row["version"] == v and row["profile"] == {"tag": 1}
    info = store.snapshots.info()
    assert info is not None and info.status == "ready" and info.customers == 60


def test_a_switch_replaces_the_version_and_prune_keeps_the_newest(store: Any) -> None:
    versions = [write_version(store, tag) for tag in range(1, 6)]
    assert store.snapshots.current_version() == versions[-1]
    assert store.snapshots.profile("c0003")["scores"] == {"p_purchase": 0.05}
    pruned = store.snapshots.prune(2)
    assert pruned == versions[:3]
    assert [i.version for i in store.snapshots.versions()] == versions[3:]
    assert store.snapshots.recommendations(versions[0], "c0003") == []
    recs = store.snapshots.recommendations(versions[-1], "c0003")
    assert [r["product_id"] for r in recs] == ["p5-1", "p5-2", "p5-3"]


def test_a_failed_publish_is_discarded_and_never_seen(store: Any) -> None:
    good = write_version(store, 1)
    bad = write_version(store, 2, switch=False)
    store.snapshots.discard(bad)
    assert [i.version for i in store.snapshots.versions()] == [good]
    assert store.snapshots.profile("c0000")["profile"] == {"tag": 1}
    store.snapshots.discard(good)  # the version in use is never discarded
    assert store.snapshots.current_version() == good


def test_a_reader_during_publish_sees_one_version_whole(store: Any) -> None:
    write_version(store, 1)
    seen: list[tuple[int, int, set[str]]] = []
    pruned: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                for cid in ("c0000", "c0031", "c0059"):
                    row = store.snapshots.profile(cid)
                    assert row is not None, "a customer vanished during a publish"
                    tag = row["profile"]["tag"]
                    recs = store.snapshots.recommendations(row["version"], cid)
                    if not recs:  # only when two more publishes pruned it since (retried)
                        assert store.snapshots.info(row["version"]) is None
                        pruned.append(row["version"])
                        continue
                    seen.append((tag, row["scores"]["p_purchase"], {r["product_id"] for r in recs}))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for tag in range(2, 7):
        write_version(store, tag, customers=60)
        store.snapshots.prune(2)
        # let the readers see this version before the next publish (on a busy machine the
        # threads may otherwise not run between publishes at all)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(t == tag for t, _, _ in seen[-20:]):
            time.sleep(0.005)
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    tags = {tag for tag, _, _ in seen}
    assert len(tags) >= 2  # the readers did see publishes happen
    assert len(pruned) < len(seen) / 10
    for tag, score, products in seen:
        assert score == tag / 100
        assert products == {f"p{tag}-{r}" for r in (1, 2, 3)}


def test_segment_members_page_in_id_order(store: Any) -> None:
    v = write_version(store, 1, customers=25)
    pages, after = [], ""
    while True:
        page = store.snapshots.members(v, "all", after=after, limit=10)
        if not page:
            break
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [10, 10, 5]
    flat = [c for p in pages for c in p]
    assert flat == sorted(flat) == [f"c{i:04d}" for i in range(25)]
    assert store.snapshots.members(v, "nobody", after="", limit=10) == []


def test_the_first_slot_choice_wins(store: Any) -> None:
    snaps = store.snapshots
    assert snaps.slot("m1", 1) is None
    kept = snaps.choose_slot("m1", 1, customer_id="c1", product_id="p9", at=T0)
    again = snaps.choose_slot("m1", 1, customer_id="c1", product_id="p2", at=T0)
    other = snaps.choose_slot("m1", 2, customer_id="c1", product_id="p2", at=T0)
    assert (kept, again, other) == ("p9", "p9", "p2")
    assert snaps.slot("m1", 1)["product_id"] == "p9"


def test_profiles_in_and_recommendations_in_read_many_customers_at_once(store: Any) -> None:
    """The batch reads of a journey batch's live profiles (ADR 0129) give each customer what
    the one-customer reads give; customers a version lacks are absent (profiles) or ``[]``."""
    old = write_version(store, 1, customers=5)
    new = write_version(store, 2, customers=3)
    snaps = store.snapshots
    asked = ["c0004", "c0000", "nobody", "c0002", "c0000", "o'neil, 100%"]
    for v in (old, new):
        rows = snaps.profiles_in(v, asked)
        assert rows == {c: snaps.profile_in(v, c) for c in asked if snaps.profile_in(v, c)}
        recs = snaps.recommendations_in(v, asked)
        assert recs == {c: snaps.recommendations(v, c) for c in asked}
    assert set(snaps.profiles_in(new, asked)) == {"c0000", "c0002"}
    assert snaps.profiles_in(new, []) == {} and snaps.recommendations_in(new, []) == {}
    many = [f"c{i:04d}" for i in range(1200)]  # more than one chunk of ids
    assert set(snaps.profiles_in(old, many)) == {f"c{i:04d}" for i in range(5)}
    assert sum(map(len, snaps.recommendations_in(old, many).values())) == 15


def test_in_force_many_is_in_force_of_each_customer_record(store: Any) -> None:
    """The objections of a batch are read at once: the latest change of each customer record
    (no address), as ``in_force`` reads one."""
    c = store.consents
    at = T0
    c.record("a", "withdrawn", purpose="profiling", source="t", at=at)
    c.record("b", "withdrawn", purpose="profiling", source="t", at=at)
    c.record("b", "granted", purpose="profiling", source="t", at=at + timedelta(minutes=1))
    c.record("d", "withdrawn", email="d@x.org", purpose="profiling", source="t", at=at)
    c.record("e", "withdrawn", purpose="marketing", source="t", at=at)
    ids = ["a", "b", "d", "e", "nobody", "a"]
    got = c.in_force_many(ids, purpose="profiling")
    assert got == {"a": "withdrawn", "b": "granted"}
    assert got == {x: s for x in ids if (s := c.in_force(x, None, purpose="profiling")) is not None}
    assert c.in_force_many(ids) == {"e": "withdrawn"}
