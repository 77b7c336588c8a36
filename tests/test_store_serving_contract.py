"""The serving plane's repositories (API keys, the intake event log, watermarks) behave the same
on the in-memory fake, SQLite and PostgreSQL (skipped without SENDWISE_TEST_POSTGRES_URL)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import sql_store
from sendwise.store import MemoryStore
from sendwise.store.repositories import ApiKeyRecord, Repositories

T0 = datetime(2024, 6, 1, 10)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def repos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    with sql_store(request.param, tmp_path) as st_:
        yield st_


def key(name: str, key_id: str, scope: str = "read", **over: Any) -> ApiKeyRecord:
    fields: dict[str, Any] = dict(
        key_id=key_id,
        name=name,
        scope=scope,
        secret_hash="ab" * 32,
        rate_per_second=None,
        created_at=T0,
        revoked_at=None,
    )
    fields.update(over)
    return ApiKeyRecord(**fields)


def event(mid: str, customer: str | None = "c1", at: datetime = T0, **over: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict(
        message_id=mid,
        type="track",
        event="Product Viewed",
        user_id=customer,
        anonymous_id=None,
        customer_id=customer,
        occurred_at=at,
        received_at=at,
        sent_at=None,
        properties={"product_id": "p1", "price": 9.5, "nested": {"a": [1, "x"]}},
        traits=None,
        context={"ip": "127.0.0.1"},
        source="web",
    )
    row.update(over)
    return row


def test_api_keys_names_are_unique_and_revocation_is_once(repos: Repositories) -> None:
    assert repos.api_keys.add(key("web", "000000000001", "write", rate_per_second=5.0))
    assert not repos.api_keys.add(key("web", "000000000002"))  # name taken
    assert not repos.api_keys.add(key("other", "000000000001"))  # id taken
    assert repos.api_keys.add(key("crm", "000000000003", created_at=T0 + timedelta(1)))
    got = repos.api_keys.get("000000000001")
    assert got is not None and got.scope == "write" and got.rate_per_second == 5.0
    assert repos.api_keys.get("nope") is None
    assert [k.name for k in repos.api_keys.all()] == ["web", "crm"]
    assert repos.api_keys.revoke("web", T0 + timedelta(2))
    assert not repos.api_keys.revoke("web", T0 + timedelta(3))
    assert not repos.api_keys.revoke("ghost", T0)
    assert repos.api_keys.get("000000000001").revoked_at == T0 + timedelta(2)


def test_intake_append_deduplicates_by_message_id(repos: Repositories) -> None:
    assert repos.intake.max_seq() == 0
    assert repos.intake.append([event("m1"), event("m2"), event("m1")]) == [True, True, False]
    assert repos.intake.append([event("m2"), event("m3", "c2")]) == [False, True]
    assert repos.intake.append([]) == []
    rows = repos.intake.since(0, 10)
    assert [r["message_id"] for r in rows] == ["m1", "m2", "m3"]
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)
    assert rows[0]["properties"] == {"product_id": "p1", "price": 9.5, "nested": {"a": [1, "x"]}}
    assert repos.intake.max_seq() == rows[-1]["seq"]
    after_first = repos.intake.since(rows[0]["seq"], 1)
    assert [r["message_id"] for r in after_first] == ["m2"]


def test_intake_for_customer_by_id_or_anonymous_id(repos: Repositories) -> None:
    repos.intake.append(
        [
            event("a", None, anonymous_id="anon-1"),
            event("b", "c1", T0 + timedelta(minutes=1)),
            event("c", "c2", T0 + timedelta(minutes=2)),
            event("d", "c1", T0 + timedelta(minutes=3)),
        ]
    )
    ids = lambda rows: [r["message_id"] for r in rows]  # noqa: E731
    assert ids(repos.intake.for_customer("c1")) == ["b", "d"]
    assert ids(repos.intake.for_customer("c1", anonymous_ids=["anon-1"])) == ["a", "b", "d"]
    assert ids(repos.intake.for_customer("c1", since=T0 + timedelta(minutes=1))) == ["d"]
    assert ids(repos.intake.for_customer("c1", anonymous_ids=["anon-1"], limit=2)) == ["b", "d"]
    assert repos.intake.for_customer("nobody") == []


def test_intake_links_anonymous_ids_by_their_first_identify_or_alias(repos: Repositories) -> None:
    repos.intake.append(
        [
            event("a", None, anonymous_id="anon-1"),  # an anonymous view links nothing
            event("b", "c1", anonymous_id="anon-2"),  # nor does a track carrying both ids
            event("c", "c1", type="identify", anonymous_id="anon-1"),
            event("d", "c2", type="identify", anonymous_id="anon-1"),  # the first one wins
            event("e", "c3", type="alias", anonymous_id="old-id"),  # an alias's previousId
        ]
    )
    links = repos.intake.links(["anon-1", "anon-2", "old-id", "never"])
    assert links == {"anon-1": "c1", "old-id": "c3"}
    assert repos.intake.links([]) == {}


def test_watermarks_start_at_zero_and_move(repos: Repositories) -> None:
    assert repos.watermarks.get("sync") == 0
    repos.watermarks.set("sync", 7, T0)
    repos.watermarks.set("sync", 9, T0)
    repos.watermarks.set("hooks", 2, T0)
    assert (repos.watermarks.get("sync"), repos.watermarks.get("hooks")) == (9, 2)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.lists(st.sampled_from("abcdefgh"), max_size=8), max_size=6))
def test_intake_stores_each_message_id_once_whatever_the_batches(
    repos: Repositories, batches: list[list[str]]
) -> None:
    """Property: over any sequence of batches with repeats, each messageId is new exactly once
    and the log holds each once, in first-seen order."""
    prefix = f"p{uuid.uuid4().hex}-"  # the fixture's store is shared by the examples
    seen: list[str] = []
    for batch in batches:
        answer = repos.intake.append([event(prefix + m) for m in batch])
        expected = []
        for m in batch:
            expected.append(m not in seen)
            if m not in seen:
                seen.append(m)
        assert answer == expected
    stored = [
        r["message_id"] for r in repos.intake.since(0, 10_000) if r["message_id"].startswith(prefix)
    ]
    assert stored == [prefix + m for m in seen]


def test_intake_for_customers_reads_many_customers_at_once(repos: Repositories) -> None:
    repos.intake.append(
        [
            event("a", "c1", T0, type="identify", traits={"email": "a@x.org"}),
            event("b", "c2", T0 + timedelta(minutes=1)),
            event("c", "c1", T0 + timedelta(minutes=2)),
            event("d", None, anonymous_id="anon-1"),
            event("e", "c1", T0 + timedelta(minutes=3)),
        ]
    )
    ids = lambda found: {c: [r["message_id"] for r in rows] for c, rows in found.items()}  # noqa: E731
    assert ids(repos.intake.for_customers(["c1", "c2", "nobody"])) == {
        "c1": ["a", "c", "e"],
        "c2": ["b"],
        "nobody": [],
    }
    assert ids(repos.intake.for_customers(["c1"], limit=2)) == {"c1": ["c", "e"]}
    assert ids(repos.intake.for_customers(["c1", "c2"], since=T0 + timedelta(minutes=1))) == {
        "c1": ["c", "e"],
        "c2": [],
    }
    assert ids(repos.intake.for_customers(["c1", "c2"], types=["identify"])) == {
        "c1": ["a"],
        "c2": [],
    }
    assert ids(repos.intake.for_customers(["c1"], types=[])) == {"c1": []}
    assert repos.intake.for_customers([]) == {}
    [first] = repos.intake.for_customers(["c1"], limit=3)["c1"][:1]
    assert first == repos.intake.for_customer("c1")[0]  # the same row, JSON columns decoded
    assert first["traits"] == {"email": "a@x.org"}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    owners=st.lists(st.sampled_from(["c1", "c2", "c3", None]), max_size=14),
    asked=st.lists(st.sampled_from(["c1", "c2", "c3", "c4"]), max_size=4, unique=True),
    kinds=st.lists(st.sampled_from(["track", "identify", "page"]), min_size=14, max_size=14),
    limit=st.integers(0, 5),
    since=st.none() | st.integers(0, 14),
    types=st.none() | st.lists(st.sampled_from(["track", "identify", "page"]), unique=True),
)
def test_intake_for_customers_is_for_customer_of_each(
    repos: Repositories,
    owners: list[str | None],
    kinds: list[str],
    asked: list[str],
    limit: int,
    since: int | None,
    types: list[str] | None,
) -> None:
    """Property: for any log, customers, limit, time and types, the batch read gives each
    customer exactly what ``for_customer`` gives them (of those types: the newest ``limit``
    of their events of those types)."""
    prefix = f"p{uuid.uuid4().hex[:8]}-"  # the fixture's store is shared by the examples
    repos.intake.append(
        [
            event(f"{prefix}{i}", None if who is None else prefix + who,
                  T0 + timedelta(minutes=i), anonymous_id=f"{prefix}anon", type=kinds[i])
            for i, who in enumerate(owners)
        ]
    )  # fmt: skip
    after = None if since is None else T0 + timedelta(minutes=since)
    mine = [prefix + c for c in asked]
    found = repos.intake.for_customers(mine, since=after, types=types, limit=limit)
    assert list(found) == mine
    for c in mine:
        if types is None:
            assert found[c] == repos.intake.for_customer(c, since=after, limit=limit)
        else:
            every = repos.intake.for_customer(c, since=after, limit=10_000)
            of_types = [r for r in every if r["type"] in types]
            assert found[c] == (of_types[-limit:] if limit else [])
