"""A campaign's counts (the console's campaign page) are the same in the in-memory fake,
SQLite and PostgreSQL (skipped without SENDWISE_TEST_POSTGRES_URL), for any plan and any
events: messages by arm and status, distinct messages with each event type, machine opens
left out, other campaigns' messages and events never counted; and the counts read the
covering indexes of migration 0011 (docs/adr/0156)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import sql_store
from sendwise.store import MemoryStore
from sendwise.store.console import campaign_counts
from sendwise.store.repositories import CampaignRecord

T0 = datetime(2026, 11, 1, 9)
ARMS = ("A", "B", "holdout")
STATUSES = ("pending", "sent", "failed", "skipped", "holdout")
TYPES = ("send", "open", "click", "unsubscribe", "failed")
_ids = itertools.count()
INDEXES = ("ix_message_due", "ix_email_event_campaign_type")


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def repos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    with sql_store(request.param, tmp_path) as store:
        yield store


messages = st.lists(st.tuples(st.sampled_from(ARMS), st.sampled_from(STATUSES)), max_size=30)
events = st.lists(
    st.tuples(
        st.integers(0, 40),  # which message (past the plan: another campaign's message)
        st.sampled_from(TYPES),
        st.booleans(),  # is_machine
        st.integers(0, 2),  # which copy (a second open of one message is another event)
        st.booleans(),  # the event names no variant
    ),
    max_size=60,
)


def expected(
    plan: list[tuple[str, str]], stored: list[dict[str, Any]]
) -> dict[str, dict[str, int]]:
    """The counts from the plan and the campaign's stored events (those written here and
    those the plan wrote itself, e.g. a skipped message's), in plain Python."""
    out: dict[str, dict[str, int]] = {}
    for arm, status in plan:
        c = out.setdefault(arm, {})
        c[f"planned:{status}"] = c.get(f"planned:{status}", 0) + 1
    seen = set()
    for e in stored:
        if e["type"] == "open" and e["is_machine"]:
            continue
        variant = e["variant"] or "?"
        if (variant, e["type"], e["message_id"]) not in seen:
            seen.add((variant, e["type"], e["message_id"]))
            c = out.setdefault(variant, {})
            c[e["type"]] = c.get(e["type"], 0) + 1
    return out


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(plan=messages, evs=events)
def test_counts_agree_with_the_events_in_every_store(
    repos: Any, plan: list[tuple[str, str]], evs: list[tuple]
) -> None:
    run = next(_ids)
    cid, other = f"camp{run}", f"other{run}"
    for c in (cid, other):
        assert repos.campaigns.save(CampaignRecord(c, f"name-{c}", "created", {}), T0) is None
    rows = [{"message_key": f"{run}k{i:06d}", "customer_id": f"c{i}",
             "email": f"c{i}@x.example", "variant": arm, "template": None, "status": status,
             "reason": None, "scheduled_at": T0, "timezone": None}
            for i, (arm, status) in enumerate(plan)]  # fmt: skip
    assert repos.messages.add_plan(cid, rows, T0) or not rows
    theirs = [{**r, "message_key": f"{run}o{i:06d}", "variant": "A"} for i, r in enumerate(rows)]
    assert repos.messages.add_plan(other, theirs, T0) or not rows
    stored = []
    for i, kind, machine, copy, blank in evs:
        mine = i < len(plan)
        stored.append({
            "event_id": f"{run}:{i}:{kind}:{machine}:{copy}:{blank}", "type": kind,
            "customer_id": f"c{i}", "email": f"c{i}@x.example",
            "message_id": f"{run}{'k' if mine else 'o'}{i:06d}",
            "campaign_id": cid if mine else other,
            "variant": None if blank else (plan[i][0] if mine else "A"), "url": None,
            "user_agent": None, "is_machine": machine, "reason": None,
            "occurred_at": T0 + timedelta(minutes=i),
        })  # fmt: skip
    repos.events.add(stored)
    mine = repos.events.rows(campaign_id=cid)
    assert len({e["event_id"] for e in mine}) >= len({x for x in evs if x[0] < len(plan)})
    assert campaign_counts(repos, cid) == expected(plan, mine)


def test_the_counts_read_the_indexes_only(tmp_path: Path) -> None:
    """On SQLite the plan of both GROUP BYs is a covering index search, no temporary tree for
    the status counts: the count costs one pass over the campaign's index entries."""
    from sendwise.store.console import count_queries

    with sql_store("sqlite", tmp_path) as store, store.begin() as conn:
        queries = count_queries(store, "x")
        for query, index in zip(queries, INDEXES, strict=True):
            sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
            plan = " | ".join(r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert f"USING COVERING INDEX {index}" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
