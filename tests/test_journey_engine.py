"""The journey engine on the in-memory store with a frozen clock: every step kind, goals,
re-entry, holdout, and each step taking effect exactly once when a run is repeated."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from journey_support import CART, WELCOME, Clock, FakeServing, engine_with, run, track
from sendwise.journeys.engine import JourneyEngine
from sendwise.store import MemoryStore
from sendwise.store.webhooks import Subscription

PEOPLE = {c: {"email": f"{c.lower()}@example.com"} for c in "ABCDEFGH"}


def messages(store: Any, journey: str) -> list[tuple[str, str]]:
    frame = store.messages.plan_frame(f"journey-{journey}")
    return sorted(zip(frame["customer_id"], frame["variant"], strict=True))


def test_abandoned_cart_reminds_the_one_who_did_not_buy() -> None:
    store, clock = MemoryStore(), Clock()
    eng = engine_with(store, CART, clock, PEOPLE)
    run(eng, [track("A", "Product Added"), track("B", "Product Added"),
              track("B", "Order Completed", revenue=40.0)])  # fmt: skip
    clock.advance(minutes=59)
    run(eng)
    assert messages(store, "abandoned_cart") == []
    clock.advance(minutes=2)
    run(eng)
    assert messages(store, "abandoned_cart") == [("A", "reminder_1")]
    clock.advance(hours=25)
    run(eng)
    assert messages(store, "abandoned_cart") == [("A", "reminder_1"), ("A", "reminder_2")]
    status = eng.status("abandoned_cart")
    assert status.entered == 2 and status.done == 1 and status.exited == {"goal": 1}
    b = store.journeys.states("abandoned_cart", "B")[0]
    assert b.converted_at is not None and b.goal_value == 40.0
    # a new cart within 30 days does not enter again; after 30 days it does
    run(eng, [track("A", "Product Added")])
    assert len(store.journeys.states("abandoned_cart", "A")) == 1
    clock.advance(days=31)
    run(eng, [track("A", "Product Added")])
    assert [s.entry for s in store.journeys.states("abandoned_cart", "A")] == [1, 2]


def test_an_order_before_the_cart_in_the_same_page_does_not_end_the_new_entry() -> None:
    store, clock = MemoryStore(), Clock()
    eng = engine_with(store, CART, clock, PEOPLE)
    run(eng, [track("A", "Order Completed"), track("A", "Product Added")])
    assert [s.status for s in store.journeys.states("abandoned_cart", "A")] == ["waiting"]


def test_a_repeated_run_takes_each_step_once() -> None:
    """A worker that dies after the effects but before the states are written back: the next
    claim (once the lease ends) runs the same steps again and adds nothing twice."""
    store, clock = MemoryStore(), Clock()
    eng = engine_with(store, CART, clock, PEOPLE)
    run(eng, [track(c, "Product Added") for c in "ABCD"])
    clock.advance(hours=2)
    real = store.journeys.save_states
    store.journeys.save_states = lambda *a, **k: 0  # the crash: nothing written back
    eng.run_due()
    store.journeys.save_states = real
    assert len(messages(store, "abandoned_cart")) == 4
    assert eng.run_due() == 0  # leased: not run again before the lease ends
    clock.advance(minutes=2)  # the lease (60 s) is over
    other = JourneyEngine(store, None, FakeServing(PEOPLE), clock)
    assert other.run_due() == 4
    assert messages(store, "abandoned_cart") == [(c, "reminder_1") for c in "ABCD"]
    assert Counter(r["step"] for r in store.journeys.step_log("abandoned_cart")) == {
        "wait_1h": 4, "reminder_1": 4, "wait_24h": 4}  # fmt: skip


def test_two_workers_never_run_the_same_state() -> None:
    store, clock = MemoryStore(), Clock()
    one = engine_with(store, CART, clock, PEOPLE)
    two = JourneyEngine(store, None, FakeServing(PEOPLE), clock)
    run(one, [track(c, "Product Added") for c in "ABCDEFGH"])
    clock.advance(hours=2)
    a = one.run_due(limit=3)
    b = two.run_due(limit=100)
    assert (a, b) == (3, 5)
    assert one.run_due() == two.run_due() == 0
    assert len(messages(store, "abandoned_cart")) == 8


def test_condition_branches_on_the_live_score() -> None:
    store, clock = MemoryStore(), Clock()
    people = {"hi": {"email": "hi@example.com", "p_purchase": 0.9},
              "lo": {"email": "lo@example.com", "p_purchase": 0.2},
              "none": {"email": "none@example.com"}}  # fmt: skip
    eng = engine_with(store, WELCOME, clock, people)
    run(eng, [track(c, "Signed Up") for c in people])
    assert messages(store, "welcome") == [("hi", "offer"), ("lo", "plain"), ("none", "plain")]
    assert {s.exit_reason for s in store.journeys.states("welcome")} == {"exit step"}


WAIT_FOR = """
name = "post"
[trigger]
event = "Order Completed"
[[steps]]
id = "review"
wait_for = "Product Reviewed"
timeout = "3d"
then = "thanks"
else = "nudge"
[[steps]]
id = "nudge"
send = "post-purchase.html"
exit = true
[[steps]]
id = "thanks"
send = "welcome.html"
"""


def test_wait_for_goes_on_when_the_event_comes_or_the_time_is_out() -> None:
    store, clock = MemoryStore(), Clock()
    with pytest.raises(Exception, match="exactly one"):
        engine_with(store, WAIT_FOR, clock, PEOPLE)
    text = WAIT_FOR.replace(
        'send = "post-purchase.html"\nexit = true', 'send = "post-purchase.html"\nnext = "end"'
    )
    text += '[[steps]]\nid = "end"\nexit = true\n'
    text = text.replace(
        'id = "thanks"\nsend = "welcome.html"\n',
        'id = "thanks"\nsend = "welcome.html"\nnext = "end"\n',
    )
    eng = engine_with(store, text, clock, PEOPLE)
    run(eng, [track("A", "Order Completed"), track("B", "Order Completed")])
    clock.advance(hours=5)
    run(eng, [track("A", "Product Reviewed")])
    assert messages(store, "post") == [("A", "thanks")]
    clock.advance(days=3)
    run(eng)
    assert messages(store, "post") == [("A", "thanks"), ("B", "nudge")]


SPLIT = """
name = "ab"
[trigger]
event = "Signed Up"
[entry]
holdout = 0.2
[goal]
event = "Order Completed"
[[steps]]
id = "pick"
split = {a = 1, b = 1}
[[steps]]
id = "hello"
send = "welcome.html"
[[steps]]
id = "tag"
update = {welcomed = true}
[[steps]]
id = "tell"
webhook = "welcomed"
"""


def test_split_is_deterministic_and_holdout_sends_nothing() -> None:
    store, clock = MemoryStore(), Clock()
    store.webhooks.add_subscription(Subscription("wh_1", "https://crm.example/h", ("journey.step",),
                                                 "whsec_" + "A" * 32, "", clock()))  # fmt: skip
    people = {f"c{i}": {"email": f"c{i}@example.com"} for i in range(400)}
    eng = engine_with(store, SPLIT, clock, people)
    run(eng, [track(c, "Signed Up") for c in people])
    states = store.journeys.states("ab")
    held = {s.customer_id for s in states if s.holdout}
    assert 40 < len(held) < 120  # 20 % of 400, deterministic by customer
    sent = messages(store, "ab")
    assert {c for c, _ in sent}.isdisjoint(held) and len(sent) == 400 - len(held)
    arms = Counter(v for _, v in sent)
    assert set(arms) == {"hello.a", "hello.b"} and min(arms.values()) > 100
    # the same customers in a second store draw the same arms and holdout
    store2, clock2 = MemoryStore(), Clock()
    eng2 = engine_with(store2, SPLIT, clock2, people)
    run(eng2, [track(c, "Signed Up") for c in people])
    assert messages(store2, "ab") == sent
    updates = [e for e in store.intake.since(0, 10_000) if e["type"] == "identify"]
    assert len(updates) == len(sent) and updates[0]["traits"] == {"welcomed": True}
    assert len(store.webhooks.entries(status="pending", limit=1000)) == len(sent)
    # holdout states close at once (no goal window) and still count as entered
    assert eng.status("ab").holdout == len(held)


def test_a_paused_journey_neither_enters_nor_runs() -> None:
    store, clock = MemoryStore(), Clock()
    eng = engine_with(store, CART, clock, PEOPLE)
    run(eng, [track("A", "Product Added")])
    eng.pause("abandoned_cart")
    run(eng, [track("B", "Product Added")])
    clock.advance(hours=2)
    run(eng)
    assert messages(store, "abandoned_cart") == []
    eng.resume("abandoned_cart")
    run(eng)
    assert messages(store, "abandoned_cart") == [("A", "reminder_1")]


def test_where_filters_the_trigger_event() -> None:
    store, clock = MemoryStore(), Clock()
    where = 'event = "Product Added"\nwhere = "properties.price > 20"'
    eng = engine_with(store, CART.replace('event = "Product Added"', where), clock, PEOPLE)
    run(eng, [track("A", "Product Added", price=25), track("B", "Product Added", price=5),
              track("C", "Product Added")])  # fmt: skip
    assert [s.customer_id for s in store.journeys.states("abandoned_cart")] == ["A"]


def test_segment_and_score_changes_enter_customers() -> None:
    store, clock = MemoryStore(), Clock()
    winback = CART.replace('name = "abandoned_cart"', 'name = "winback"').replace(
        'event = "Product Added"', 'score = "churn_risk"\nabove = 0.7'
    )
    eng = engine_with(store, winback, clock, PEOPLE)
    changes = [
        {"type": "score.crossed", "customer_id": "A", "score": "churn_risk", "old": 0.5,
         "new": 0.8, "snapshot": 2, "at": clock().isoformat()},
        {"type": "score.crossed", "customer_id": "B", "score": "churn_risk", "old": 0.9,
         "new": 0.6, "snapshot": 2, "at": clock().isoformat()},
        {"type": "segment.entered", "customer_id": "C", "segment": "x", "snapshot": 2,
         "at": clock().isoformat()},
    ]  # fmt: skip
    assert eng.on_changes(changes) == 1
    assert eng.on_changes(changes) == 0  # the same publish read twice
    assert [s.customer_id for s in store.journeys.states("winback")] == ["A"]


def test_wait_until_a_local_time() -> None:
    store, clock = MemoryStore(), Clock()  # 12:00 UTC
    text = CART.replace('wait = "1h"', 'wait_until = "09:00"')
    people = {"A": {"email": "a@example.com", "timezone": "America/New_York"}}
    eng = engine_with(store, text, clock, people)
    run(eng, [track("A", "Product Added")])
    due = store.journeys.states("abandoned_cart", "A")[0].due_at
    assert due == clock().replace(
        hour=14
    )  # 12:00 UTC is 07:00 in New York (EST): 09:00 is 14:00 UTC


def publish_rows(store: Any, rows: list[dict], at: Any, as_of: Any = None) -> int:
    version = store.snapshots.begin(at=at, as_of=as_of or at, data_end=at, meta={})
    store.snapshots.write(version, "profile", [
        {"customer_id": r["customer_id"], "profile": r.get("profile", {}),
         "scores": r.get("scores", {}), "segments": r.get("segments", []), "reasons": []}
        for r in rows])  # fmt: skip
    store.snapshots.switch(version, customers=len(rows), at=at)
    return version


BIRTHDAY = """
name = "birthday"
[trigger]
date = "birthday"
[entry]
reentry = "always"
[[steps]]
id = "card"
send = "welcome.html"
"""


def test_date_triggers_enter_once_a_day() -> None:
    from dataclasses import replace as dc_replace

    from journey_support import KNOWN
    from sendwise.journeys.definition import loads_journey
    from sendwise.journeys.service import save_journey

    store, clock = MemoryStore(), Clock()  # 2026-03-02
    known = dc_replace(KNOWN, fields={**KNOWN.fields, "birthday": "string"})
    save_journey(store, loads_journey(BIRTHDAY), known, clock())
    lapsed = BIRTHDAY.replace('name = "birthday"', 'name = "lapsed"').replace(
        'date = "birthday"', "days_since_last_order = 60"
    )
    save_journey(store, loads_journey(lapsed), known, clock())
    publish_rows(store, [
        {"customer_id": "A", "profile": {"birthday": "1990-03-02", "recency_days": 10}},
        {"customer_id": "B", "profile": {"birthday": "1985-07-01", "recency_days": 58}},
        {"customer_id": "C", "profile": {"recency_days": None}},
    ], clock(), as_of=clock() - __import__("datetime").timedelta(days=2))  # fmt: skip
    eng = JourneyEngine(store, None, FakeServing(PEOPLE), clock)
    assert eng.poll_dates() == 2
    assert eng.poll_dates() == 0  # the same day again
    assert [s.customer_id for s in store.journeys.states("birthday")] == ["A"]
    assert [s.customer_id for s in store.journeys.states("lapsed")] == ["B"]
    clock.advance(days=365)
    run(eng)
    assert eng.poll_dates() == 1  # 2027-03-02: A's birthday again; B is long past 60 days
    assert [s.entry for s in store.journeys.states("birthday", "A")] == [1, 2]


def test_the_worker_turns_a_new_snapshot_into_score_entries(tmp_path: Any) -> None:
    from journey_support import KNOWN
    from sendwise.delivery.outbox import OutboxMessenger
    from sendwise.journeys.definition import loads_journey
    from sendwise.journeys.service import save_journey
    from sendwise.journeys.worker import JourneyWorker

    store, clock = MemoryStore(), Clock()
    winback = CART.replace('name = "abandoned_cart"', 'name = "winback"').replace(
        'event = "Product Added"', 'score = "churn_risk"\nabove = 0.7'
    )
    save_journey(store, loads_journey(winback), KNOWN, clock())
    rows = [{"customer_id": c, "scores": {"churn_risk": r}} for c, r in (("A", 0.5), ("B", 0.9))]
    publish_rows(store, rows, clock())

    class Settings:
        serving = __import__("types").SimpleNamespace(live_events=100, recent_products=5)

    worker = JourneyWorker(store, Settings(), renderer=object(),
                           messenger=OutboxMessenger(tmp_path), clock=clock)  # fmt: skip
    assert worker.poll_snapshot() == 0  # the first snapshot seen: nothing to compare with
    rows = [{"customer_id": c, "scores": {"churn_risk": r}} for c, r in (("A", 0.8), ("B", 0.95))]
    publish_rows(store, rows, clock())
    assert worker.poll_snapshot() == 1
    assert worker.poll_snapshot() == 0
    assert [s.customer_id for s in store.journeys.states("winback")] == ["A"]


def test_the_first_journey_starts_from_the_events_to_come() -> None:
    store, clock = MemoryStore(), Clock()
    store.intake.append([track("OLD", "Product Added")])  # before any journey existed
    eng = engine_with(store, CART, clock, PEOPLE)
    run(eng, [track("A", "Product Added")])
    assert [s.customer_id for s in store.journeys.states("abandoned_cart")] == ["A"]


POST = """
name = "post_purchase"
[trigger]
event = "Order Completed"
[goal]
event = "Order Completed"
within = "30d"
[entry]
reentry = "always"
[[steps]]
id = "wait"
wait = "3d"
[[steps]]
id = "recs"
send = "post-purchase.html"
"""


def test_the_order_that_enters_is_not_its_own_goal_the_next_one_is() -> None:
    store, clock = MemoryStore(), Clock()
    eng = engine_with(store, POST, clock, PEOPLE)
    run(eng, [track("A", "Order Completed", revenue=10.0), track("B", "Order Completed")])
    assert [s.status for s in store.journeys.states("post_purchase")] == ["waiting", "waiting"]
    clock.advance(days=1)
    run(eng, [track("A", "Order Completed", revenue=25.0)])  # A's repeat order
    a = store.journeys.states("post_purchase", "A")
    assert [(s.entry, s.status, s.exit_reason, s.goal_value) for s in a] == [
        (1, "exited", "goal", 25.0), (2, "waiting", None, None)]  # fmt: skip
    clock.advance(days=3)
    run(eng)
    assert messages(store, "post_purchase") == [("A", "recs"), ("B", "recs")]
