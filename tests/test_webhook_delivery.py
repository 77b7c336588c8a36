"""Webhook delivery end to end, against a real receiver on loopback that verifies every signature
with the official ``standardwebhooks`` package: retries with backoff then success, a receiver
that stays down (dead letter, then replay), 410 Gone, Retry-After, a restart that does not
deliver an acknowledged webhook twice, and the email_event source."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import sql_store
from sendwise.config import WebhookSettings
from sendwise.serving.hooks import (
    Dispatcher,
    WebhookEvent,
    add_subscription,
    dead_letters,
    enqueue,
    replay,
)
from sendwise.store import MemoryStore, Store
from sendwise.store.claims import utcnow
from webhook_receiver import Receiver, running_receiver


class Clock:
    """A clock the test moves; it starts at the real time (receivers check timestamps)."""

    def __init__(self) -> None:
        self.now = utcnow().replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def fast(**over: Any) -> WebhookSettings:
    values: dict[str, Any] = dict(schedule_seconds=[5, 20, 60], jitter=0.0, timeout_seconds=5)
    return WebhookSettings(**{**values, **over})


def deliver(d: Dispatcher) -> Any:
    return asyncio.run(d.run_once())


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def repos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    with sql_store(request.param, tmp_path) as st:
        yield st


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def subscribe(repos: Any, receiver: Receiver, clock: Clock, events: list[str] | None = None) -> str:
    sub = add_subscription(repos, receiver.url, events or ["*"], at=clock())
    receiver.secret = sub.secret
    return sub.subscription_id


def entered(customer: str, clock: Clock) -> WebhookEvent:
    return WebhookEvent("segment.entered", {"customer_id": customer, "segment": "vip"}, clock())


def test_failures_are_retried_with_backoff_then_delivered(repos: Any, receiver: Receiver) -> None:
    clock = Clock()
    subscribe(repos, receiver, clock)
    receiver.script = [500, 500, 500]
    assert enqueue(repos, [entered("c1", clock)], at=clock()) == 1
    d = Dispatcher(repos, fast(), clock=clock)
    steps = [(0, 1, "retried"), (0, 1, None), (5, 2, "retried"), (19, 2, None), (1, 3, "retried"),
             (59, 3, None), (1, 4, "delivered"), (3600, 4, None)]  # fmt: skip
    for wait, seen, outcome in steps:
        clock.advance(wait)
        report = deliver(d)
        assert len(receiver.seen) == seen, (wait, seen)
        if outcome is None:
            assert (report.delivered, report.retried, report.dead) == (0, 0, 0)
        else:
            assert getattr(report, outcome) == 1
    assert [r.status for r in receiver.seen] == [500, 500, 500, 200]
    assert all(r.verified for r in receiver.seen)
    assert len({r.webhook_id for r in receiver.seen}) == 1  # the same id on every attempt
    assert len({r.timestamp for r in receiver.seen}) == 4  # each attempt signed at its time
    assert len({r.body for r in receiver.seen}) == 1
    payload = receiver.seen[-1].payload
    assert payload["type"] == "segment.entered"
    assert payload["data"] == {"customer_id": "c1", "segment": "vip"}
    (row,) = repos.webhooks.entries()
    assert (row.status, row.attempts, row.last_status) == ("delivered", 4, 200)


def test_a_receiver_that_stays_down_gets_a_dead_letter_then_a_replay(
    repos: Any, receiver: Receiver
) -> None:
    clock = Clock()
    subscribe(repos, receiver, clock)
    receiver.default = 503
    enqueue(repos, [entered("c1", clock), entered("c2", clock)], at=clock())
    d = Dispatcher(repos, fast(schedule_seconds=[0, 0]), clock=clock)
    report = deliver(d)
    assert (report.delivered, report.retried, report.dead) == (0, 4, 2)
    assert len(receiver.seen) == 6 and all(r.verified for r in receiver.seen)
    dead = dead_letters(repos)
    assert [(e.status, e.attempts, e.last_status) for e in dead] == [("dead", 3, 503)] * 2
    assert dead[0].last_error.startswith("HTTP 503")
    assert deliver(d).delivered == 0  # dead letters are not retried on their own
    receiver.default = 200
    assert replay(repos, [dead[0].outbox_id], at=clock()) == 1
    assert deliver(d).delivered == 1
    assert receiver.acknowledged[-1].webhook_id == dead[0].message_id
    assert replay(repos, None, at=clock()) == 1
    assert deliver(d).delivered == 1
    assert {r.webhook_id for r in receiver.acknowledged} == {r.webhook_id for r in receiver.seen}
    assert repos.webhooks.counts() == {"delivered": 2}


def test_an_unreachable_receiver_is_retried_then_dead(repos: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    clock = Clock()
    add_subscription(repos, f"http://127.0.0.1:{port}/nobody", ["*"], at=clock())
    enqueue(repos, [entered("c1", clock)], at=clock())
    report = deliver(Dispatcher(repos, fast(schedule_seconds=[0]), clock=clock))
    assert (report.retried, report.dead) == (1, 1)
    (row,) = dead_letters(repos)
    assert row.last_status is None and row.last_error.startswith("ConnectError")


def test_gone_disables_the_subscription(repos: Any, receiver: Receiver) -> None:
    clock = Clock()
    sid = subscribe(repos, receiver, clock)
    receiver.default = 410
    enqueue(repos, [entered("c1", clock)], at=clock())
    report = deliver(Dispatcher(repos, fast(), clock=clock))
    assert report.dead == 1 and len(receiver.seen) == 1
    sub = repos.webhooks.get_subscription(sid)
    assert not sub.active and "410" in sub.disabled_reason
    assert enqueue(repos, [entered("c2", clock)], at=clock()) == 0


def test_retry_after_is_honoured(repos: Any, receiver: Receiver) -> None:
    clock = Clock()
    subscribe(repos, receiver, clock)
    receiver.script = [503]
    receiver.headers = {"Retry-After": "120"}
    enqueue(repos, [entered("c1", clock)], at=clock())
    d = Dispatcher(repos, fast(), clock=clock)
    deliver(d)
    (row,) = repos.webhooks.entries()
    assert row.next_attempt_at == clock() + timedelta(seconds=120)
    clock.advance(100)
    assert len(receiver.seen) == 1 and deliver(d).delivered == 0
    clock.advance(20)
    assert deliver(d).delivered == 1


def test_jitter_stays_within_its_bounds() -> None:
    d = Dispatcher(MemoryStore(), WebhookSettings(schedule_seconds=[10, 100], jitter=0.2))
    first = [d.delay(1) for _ in range(500)]
    assert 8 <= min(first) < 8.5 and 11.5 < max(first) <= 12
    assert len(set(first)) > 400
    assert 80 <= d.delay(2) <= 120
    assert d.delay(3) is None


def test_a_restart_does_not_deliver_an_acknowledged_webhook_twice(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    clock = Clock()
    with Store(url) as first:
        subscribe(first, receiver, clock)
        enqueue(first, [entered("c1", clock)], at=clock())
        assert deliver(Dispatcher(first, fast(), clock=clock)).delivered == 1
    with Store(url) as second:
        clock.advance(60)  # (receivers refuse timestamps more than 5 minutes off their clock)
        d = Dispatcher(second, fast(), clock=clock)
        assert deliver(d).delivered == 0
        assert len(receiver.seen) == 1
        # killed after the receiver answered, before the outcome was committed: the webhook is
        # sent again when its claim's lease ends, with the same webhook-id (at-least-once)
        enqueue(second, [entered("c2", clock)], at=clock())

        def killed(*_args: Any) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(second.webhooks, "record", killed)
        with pytest.raises(KeyboardInterrupt):
            deliver(d)
        assert len(receiver.acknowledged) == 2
    with Store(url) as third:
        d = Dispatcher(third, fast(), clock=clock)
        assert deliver(d).delivered == 0  # still leased
        clock.advance(d.lease.total_seconds())
        assert deliver(d).delivered == 1
        assert receiver.seen[-1].webhook_id == receiver.seen[-2].webhook_id
        assert deliver(d).delivered == 0
        assert third.webhooks.counts() == {"delivered": 2}


def test_sends_and_unsubscribes_become_webhooks_once(repos: Any, receiver: Receiver) -> None:
    clock = Clock()

    def email_event(i: int, kind: str) -> dict[str, Any]:
        reason = "list" if kind == "unsubscribe" else None
        return dict(event_id=f"e{i}", customer_id=f"c{i}", email=f"c{i}@example.com",
                    message_id=f"m{i}", campaign_id="spring", variant="A", type=kind,
                    occurred_at=clock(), reason=reason)  # fmt: skip

    repos.events.add([email_event(0, "send")])  # before the first subscription: not sent
    subscribe(repos, receiver, clock, ["message.sent", "customer.unsubscribed"])
    repos.events.add([email_event(i, k) for i, k in enumerate(["send", "open", "unsubscribe"], 1)])
    d = Dispatcher(repos, fast(), clock=clock)
    report = deliver(d)
    assert (report.enqueued, report.delivered) == (2, 2)
    by_type = {r.payload["type"]: r.payload for r in receiver.seen}
    assert by_type["message.sent"]["data"] == {
        "customer_id": "c1", "email": "c1@example.com", "campaign_id": "spring",
        "variant": "A", "message_id": "m1",
    }  # fmt: skip
    assert by_type["customer.unsubscribed"]["data"]["reason"] == "list"
    assert by_type["customer.unsubscribed"]["data"]["customer_id"] == "c3"
    # read again from the start (a crash before the watermark moved): nothing is added twice
    repos.watermarks.set("webhooks.email_event", 1, clock())
    report = deliver(d)
    assert (report.enqueued, report.delivered) == (0, 0)
    repos.events.add([email_event(4, "send")])
    assert deliver(d).delivered == 1
    assert len(receiver.seen) == 3 and all(r.verified for r in receiver.seen)


def test_delivered_webhooks_are_purged_after_their_retention(
    repos: Any, receiver: Receiver
) -> None:
    clock = Clock()
    subscribe(repos, receiver, clock)
    enqueue(repos, [entered("c1", clock)], at=clock())
    d = Dispatcher(repos, fast(keep_delivered_days=1), clock=clock)
    assert deliver(d).delivered == 1
    clock.advance(86_400 + 3_600)
    report = deliver(Dispatcher(repos, fast(keep_delivered_days=1), clock=clock))
    assert report.purged == 1 and repos.webhooks.entries() == []


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_dispatchers_never_send_a_webhook_twice(
    kind: str, tmp_path: Path, receiver: Receiver
) -> None:
    """Two serve workers (two stores on one database) delivering the same outbox at once."""
    clock = Clock()
    with sql_store(kind, tmp_path) as first:
        subscribe(first, receiver, clock)
        enqueue(first, [entered(f"c{i}", clock) for i in range(120)], at=clock())
        schema = None
        if kind == "postgresql":
            from sqlalchemy import text

            with first.begin() as conn:
                schema = conn.execute(text("select current_schema()")).scalar_one()
        second = Store(first.url, schema=schema, upgrade=False)
        try:
            settings = fast(batch_size=10, concurrency=4)

            async def both() -> list[Any]:
                return await asyncio.gather(
                    Dispatcher(first, settings, clock=clock).run_once(),
                    Dispatcher(second, settings, clock=clock).run_once(),
                )

            reports = asyncio.run(both())
        finally:
            second.close()
        assert sum(r.delivered for r in reports) == 120
        assert all(r.delivered > 0 for r in reports)  # both took part
        ids = [r.webhook_id for r in receiver.seen]
        assert len(ids) == 120 and len(set(ids)) == 120
        assert first.webhooks.counts() == {"delivered": 120}
