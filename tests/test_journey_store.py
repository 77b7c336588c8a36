"""The journey repository and ``messages.add_messages`` under one contract, run against the
in-memory fake, SQLite and PostgreSQL (skipped without SENDWISE_TEST_POSTGRES_URL)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import sql_store
from sendwise.store import MemoryStore
from sendwise.store.journeys import JourneyState
from sendwise.store.repositories import CampaignRecord

T0 = datetime(2026, 3, 1, 9)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def repos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    with sql_store(request.param, tmp_path) as st:
        yield st


def state(cid: str, entry: int = 1, *, journey: str = "cart", due: datetime | None = T0,
          status: str = "waiting", key: str | None = None) -> JourneyState:  # fmt: skip
    return JourneyState(
        state_id=f"{journey}-{cid}-{entry}", journey=journey, version=1, customer_id=cid,
        entry=entry, entry_key=key or f"{journey}:{cid}:{entry}", step=None, seq=0,
        status=status, due_at=due, holdout=status == "holdout", entered_at=T0, updated_at=T0,
    )  # fmt: skip


def test_definitions_are_versioned_and_keep_their_status(repos: Any) -> None:
    j = repos.journeys
    assert j.save("cart", {"name": "cart", "v": 1}, T0) == 1
    assert j.get("cart").status == "active"
    assert j.set_status("cart", "paused", T0)
    assert j.save("cart", {"name": "cart", "v": 2}, T0) == 2
    rec = j.get("cart")
    assert (rec.version, rec.status, rec.definition["v"]) == (2, "paused", 2)
    assert j.get("cart", 1).definition["v"] == 1
    assert j.save("welcome", {"name": "welcome"}, T0) == 1
    assert [(r.name, r.version) for r in j.all()] == [("cart", 2), ("welcome", 1)]
    assert not j.set_status("nope", "paused", T0)
    assert j.get("nope") is None


def test_an_entry_is_made_once_by_key_and_by_slot(repos: Any) -> None:
    j = repos.journeys
    assert j.enter([state("a"), state("b")]) == 2
    # the same event read again; another event for the same (customer, entry) slot
    assert j.enter([state("a"), replace(state("b"), state_id="other", entry_key="x")]) == 0
    assert j.enter([state("a", 2)]) == 1
    last = j.last_entries("cart", ["a", "b", "c"])
    assert set(last) == {"a", "b"}
    assert (last["a"].entry, last["a"].open) == (2, True)


def test_claim_takes_due_states_once_under_a_lease(repos: Any) -> None:
    j = repos.journeys
    j.enter([state(f"c{i}", due=T0 + timedelta(minutes=10 * i)) for i in range(5)])
    j.enter([state("other", journey="welcome")])
    now = T0 + timedelta(minutes=25)
    got = j.claim_due("cart", now=now, limit=10, owner="w1", lease_until=now + timedelta(minutes=1))
    assert [s.customer_id for s in got] == ["c0", "c1", "c2"]
    assert all(s.status == "running" and s.lease_owner == "w1" for s in got)
    # a second worker finds nothing while the lease lives
    assert j.claim_due("cart", now=now, limit=10, owner="w2", lease_until=now) == []
    # the lease ends: another worker takes them over, and the first may no longer write
    later = now + timedelta(minutes=3)
    taken = j.claim_due(
        "cart", now=later, limit=2, owner="w2", lease_until=later + timedelta(minutes=1)
    )
    assert [s.customer_id for s in taken] == ["c0", "c1"]
    done = [replace(s, status="done", due_at=None, step="x", seq=3) for s in got]
    step = dict(step_key="k0", state_id=got[0].state_id, journey="cart", customer_id="c0",
                entry=1, step="x", kind="send", outcome="m", at=now)  # fmt: skip
    assert j.save_states(done, [step], owner="w1") == 1  # only c2 is still w1's
    assert j.save_states([replace(taken[0], status="done", due_at=None)], [step], owner="w2") == 1
    by_cid = {s.customer_id: s for s in j.states("cart")}
    assert by_cid["c2"].status == "done" and by_cid["c2"].lease_owner is None
    assert by_cid["c0"].status == "done"
    assert by_cid["c1"].status == "running" and by_cid["c1"].lease_owner == "w2"
    assert len(j.step_log("cart")) == 1  # the same step key twice is one row


def test_wait_for_wakes_only_the_waiting(repos: Any) -> None:
    j = repos.journeys
    j.enter([state("a", due=T0 + timedelta(days=2)), state("b", due=T0 + timedelta(days=2))])
    got = j.claim_due("cart", now=T0 + timedelta(days=3), limit=10, owner="w",
                      lease_until=T0 + timedelta(days=3))  # fmt: skip
    waiting = [replace(s, status="waiting", waiting_for="Order Completed",
                       due_at=T0 + timedelta(days=5), wake_at=T0 + timedelta(days=5), step="w")
               for s in got]  # fmt: skip
    j.save_states(waiting, [], owner="w")
    assert {s.wake_at for s in j.states("cart")} == {T0 + timedelta(days=5)}
    found = j.waiting_for("Order Completed", ["a", "zz"], ["cart"])
    assert [s.customer_id for s in found] == ["a"]
    assert j.waiting_for("Order Completed", ["a"], ["welcome"]) == []
    assert j.wake([found[0].state_id], "Order Completed", T0) == 1
    assert j.wake([found[0].state_id], "Order Completed", T0) == 0
    a = j.states("cart", "a")[0]
    assert a.waiting_for is None and a.due_at == T0 and a.wake_at == T0


def test_exit_ends_open_states_and_marks_conversions(repos: Any) -> None:
    j = repos.journeys
    j.enter([state("a"), state("b"), state("h", status="holdout"), state("d")])
    j.claim_due("cart", now=T0, limit=1, owner="w", lease_until=T0 + timedelta(minutes=1))
    assert j.exit("cart", ["a", "b", "h"], "goal", T0, converted={"a": 12.5, "h": None}) == 3
    by = {s.customer_id: s for s in j.states("cart")}
    assert by["a"].status == "exited" and by["a"].goal_value == 12.5 and by["a"].converted_at == T0
    assert by["b"].converted_at is None and by["b"].exit_reason == "goal"
    assert by["h"].holdout and by["h"].converted_at == T0
    assert by["d"].status in ("waiting", "running")
    assert j.exit("cart", ["a"], "goal", T0) == 0  # finished states stay as they are
    counts = {(st, reason, hold): n for _, st, reason, hold, n in j.counts("cart")}
    assert counts[("exited", "goal", False)] == 2 and counts[("exited", "goal", True)] == 1


def test_add_messages_inserts_each_key_once(repos: Any) -> None:
    repos.campaigns.save(CampaignRecord("journey-cart", "journey:cart", "sending", {}), T0)
    row = dict(message_key="0" * 32, customer_id="a", email="a@example.com", variant="r1",
               template="t.html", status="pending", reason=None, scheduled_at=T0,
               timezone=None)  # fmt: skip
    second = {**row, "message_key": "1" * 32, "variant": "r2"}  # same customer, same campaign
    assert repos.messages.add_messages("journey-cart", [row, second], T0) == 2
    assert repos.messages.add_messages("journey-cart", [row, {**second, "status": "x"}], T0) == 0
    frame = repos.messages.plan_frame("journey-cart")
    assert sorted(frame["variant"]) == ["r1", "r2"] and set(frame["status"]) == {"pending"}
    assert repos.messages.count("journey-cart") == 2
