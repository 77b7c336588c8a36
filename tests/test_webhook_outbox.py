"""The webhook repository's contract (subscriptions and outbox), run against the in-memory fake,
SQLite and PostgreSQL (skipped without SENDWISE_TEST_POSTGRES_URL), and the fan-out of
:func:`sendwise.serving.hooks.enqueue` over it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import sql_store
from sendwise.errors import InputError, NotFoundError
from sendwise.serving.hooks import WebhookEvent, add_subscription, enqueue, replay
from sendwise.serving.hooks.subscriptions import remove_subscription
from sendwise.store import MemoryStore
from sendwise.store.webhooks import Outcome, Subscription

T0 = datetime(2026, 12, 6, 10)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def repos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    with sql_store(request.param, tmp_path) as st:
        yield st


def sub(sid: str, events: tuple[str, ...] = ("*",), at: datetime = T0) -> Subscription:
    return Subscription(sid, f"http://127.0.0.1:9/{sid}", events, "whsec_x", "", at)


def rows(n: int, sid: str = "s1", at: datetime = T0) -> list[dict[str, Any]]:
    return [
        dict(message_id=f"msg_{sid}_{i}", subscription_id=sid, event_type="message.sent",
             body=f'{{"n":{i}}}', created_at=at + timedelta(seconds=i))
        for i in range(n)
    ]  # fmt: skip


def test_subscriptions_are_stored_listed_disabled_and_removed(repos: Any) -> None:
    w = repos.webhooks
    assert w.add_subscription(sub("s1", ("message.sent", "segment.left")))
    assert not w.add_subscription(sub("s1"))
    assert w.add_subscription(sub("s2", at=T0 + timedelta(1)))
    assert [s.subscription_id for s in w.subscriptions()] == ["s1", "s2"]
    got = w.get_subscription("s1")
    assert got.events == ("message.sent", "segment.left") and got.active
    assert got.wants("segment.left") and not got.wants("score.crossed")
    w.enqueue(rows(2, "s1"))
    assert w.disable_subscription("s1", "gone", T0)
    assert not w.disable_subscription("s1", "gone", T0)
    assert not w.get_subscription("s1").active and not w.get_subscription("s1").wants("*")
    assert [e.status for e in w.entries(subscription_id="s1")] == ["dead", "dead"]
    assert w.remove_subscription("s1") and not w.remove_subscription("s1")
    assert w.entries() == [] and w.get_subscription("s1") is None


def test_enqueue_skips_a_known_message_id(repos: Any) -> None:
    w = repos.webhooks
    w.add_subscription(sub("s1"))
    assert w.enqueue(rows(3)) == 3
    assert w.enqueue(rows(4)) == 1
    assert w.enqueue([]) == 0
    assert w.counts() == {"pending": 4}
    first = w.entries()[0]
    assert (first.status, first.attempts, first.next_attempt_at) == ("pending", 0, T0)
    assert first.body == '{"n":0}'


def test_claims_are_leased_and_never_given_twice(repos: Any) -> None:
    w = repos.webhooks
    w.add_subscription(sub("s1"))
    w.enqueue(rows(5))
    now, lease = T0 + timedelta(seconds=2), T0 + timedelta(minutes=5)
    batch = w.claim(now, 10, lease)
    assert [d.message_id for d in batch] == ["msg_s1_0", "msg_s1_1", "msg_s1_2"]
    assert {d.attempts for d in batch} == {1} and batch[0].url.endswith("/s1")
    assert batch[0].secret == "whsec_x" and batch[0].body == '{"n":0}'
    assert "whsec_x" not in repr(batch[0])
    assert w.claim(now, 10, lease) == []  # leased: a second dispatcher gets nothing
    later = w.claim(T0 + timedelta(seconds=4), 1, lease)
    assert [d.message_id for d in later] == ["msg_s1_3"]
    # a dispatcher that died: the lease ends and the rows are due again, one attempt counted
    again = w.claim(lease, 10, lease + timedelta(minutes=5))
    assert [(d.message_id, d.attempts) for d in again] == [
        ("msg_s1_0", 2), ("msg_s1_1", 2), ("msg_s1_2", 2), ("msg_s1_3", 2), ("msg_s1_4", 1)
    ]  # fmt: skip


def test_outcomes_deliver_retry_and_dead_letter(repos: Any) -> None:
    w = repos.webhooks
    w.add_subscription(sub("s1"))
    w.enqueue(rows(3))
    a, b, c = w.claim(T0 + timedelta(seconds=9), 10, T0 + timedelta(hours=1))
    retry_at = T0 + timedelta(minutes=1)
    w.record(
        [
            Outcome(a.outbox_id, "delivered", http_status=204),
            Outcome(b.outbox_id, "pending", next_attempt_at=retry_at, http_status=500, error="x"),
            Outcome(c.outbox_id, "dead", error="ConnectError: refused"),
        ],
        T0 + timedelta(seconds=10),
    )
    by_id = {e.message_id: e for e in w.entries()}
    assert by_id["msg_s1_0"].status == "delivered"
    assert by_id["msg_s1_0"].delivered_at == T0 + timedelta(seconds=10)
    assert (by_id["msg_s1_1"].status, by_id["msg_s1_1"].next_attempt_at) == ("pending", retry_at)
    assert (by_id["msg_s1_1"].last_status, by_id["msg_s1_1"].last_error) == (500, "x")
    assert by_id["msg_s1_2"].status == "dead" and by_id["msg_s1_2"].last_status is None
    assert w.counts() == {"delivered": 1, "pending": 1, "dead": 1}
    assert w.claim(retry_at - timedelta(seconds=1), 10, retry_at) == []
    assert [d.message_id for d in w.claim(retry_at, 10, retry_at)] == ["msg_s1_1"]
    with pytest.raises(ValueError):
        w.record([Outcome(a.outbox_id, "pending")], T0)
    with pytest.raises(ValueError):
        w.record([Outcome(a.outbox_id, "lost")], T0)


def test_replay_makes_dead_letters_due_again(repos: Any) -> None:
    w = repos.webhooks
    w.add_subscription(sub("s1"))
    w.enqueue(rows(3))
    batch = w.claim(T0 + timedelta(seconds=9), 10, T0 + timedelta(hours=1))
    w.record([Outcome(d.outbox_id, "dead", error="down") for d in batch], T0)
    ids = [e.outbox_id for e in w.entries(status="dead")]
    assert w.replay([ids[0]], T0 + timedelta(hours=2)) == 1
    assert w.replay([ids[0]], T0) == 0  # no longer dead
    assert w.replay([], T0) == 0
    assert w.replay(None, T0 + timedelta(hours=3)) == 2
    replayed = w.claim(T0 + timedelta(hours=3), 10, T0 + timedelta(hours=4))
    assert [(d.message_id, d.attempts) for d in replayed] == [
        ("msg_s1_0", 1), ("msg_s1_1", 1), ("msg_s1_2", 1)
    ]  # fmt: skip


def test_enqueue_fans_out_to_the_subscriptions_that_want_the_type(repos: Any) -> None:
    everything = add_subscription(repos, "https://a.example/hook", ["*"], at=T0)
    sends = add_subscription(repos, "http://b.example/x", ["message.sent", "message.sent"], at=T0)
    gone = add_subscription(repos, "http://c.example/x", ["message.sent"], at=T0)
    repos.webhooks.disable_subscription(gone.subscription_id, "410", T0)
    events = [
        WebhookEvent("message.sent", {"customer_id": "c1"}, T0),
        WebhookEvent("segment.entered", {"customer_id": "c1", "segment": "vip"}, T0),
    ]
    assert enqueue(repos, events, at=T0) == 3
    assert enqueue(repos, events, at=T0) == 0  # the same events: nothing new
    assert enqueue(repos, [WebhookEvent("message.sent", {"customer_id": "c1"}, T0, key="k")]) == 2
    mine = repos.webhooks.entries(subscription_id=sends.subscription_id)
    assert [e.event_type for e in mine] == ["message.sent", "message.sent"]
    assert len(repos.webhooks.entries(subscription_id=everything.subscription_id)) == 3
    assert repos.webhooks.entries(subscription_id=gone.subscription_id) == []
    assert sends.events == ("message.sent",)
    assert everything.secret.startswith("whsec_")
    assert everything.secret not in repr(everything)  # never in a log line
    remove_subscription(repos, sends.subscription_id)
    with pytest.raises(NotFoundError):
        remove_subscription(repos, sends.subscription_id)


@pytest.mark.parametrize(
    ("url", "events"),
    [
        ("ftp://a.example/x", ["*"]),
        ("/relative", ["*"]),
        ("http://", ["*"]),
        ("", ["*"]),
        ("http://a.example/" + "x" * 3000, ["*"]),
        ("http://a.example/x", []),
        ("http://a.example/x", ["message.opened"]),
        ("http://a.example/x", [" "]),
    ],
)
def test_bad_subscriptions_are_refused(url: str, events: list[str]) -> None:
    repos = MemoryStore()
    with pytest.raises(InputError):
        add_subscription(repos, url, events)
    assert repos.webhooks.subscriptions() == []


def test_replay_of_nothing_dead_is_not_found() -> None:
    repos = MemoryStore()
    with pytest.raises(NotFoundError):
        replay(repos, [42])
    assert replay(repos, None) == 0


def test_publish_changes_become_webhooks_once(repos: Any) -> None:
    """The change dicts `sendwise publish` returns (PublishResult.changes)."""
    import json

    from sendwise.serving.hooks import from_changes

    base = {"customer_id": "c1", "snapshot": 3, "at": "2026-12-06T10:00:00"}
    changes = [
        {"type": "segment.entered", **base, "segment": "vip"},
        {"type": "segment.left", **base, "segment": "new"},
        {"type": "score.crossed", **base, "score": "churn_risk", "threshold": 0.5,
         "direction": "up", "old": 0.4, "new": 0.61},
    ]  # fmt: skip
    add_subscription(repos, "https://a.example/hook", ["*"], at=T0)
    assert enqueue(repos, from_changes(changes), at=T0) == 3
    assert enqueue(repos, from_changes(changes), at=T0) == 0  # the same snapshot again
    next_snapshot = [{**c, "snapshot": 4} for c in changes]
    assert enqueue(repos, from_changes(next_snapshot), at=T0) == 3
    bodies = [json.loads(e.body) for e in repos.webhooks.entries()][:3]
    assert [b["type"] for b in bodies] == ["segment.entered", "segment.left", "score.crossed"]
    assert bodies[0]["timestamp"] == "2026-12-06T10:00:00.000000Z"
    crossed = {"customer_id": "c1", "snapshot": 3, "score": "churn_risk", "threshold": 0.5,
               "direction": "up", "old": 0.4, "new": 0.61}  # fmt: skip
    assert bodies[2]["data"] == crossed


def test_purge_deletes_old_delivered_rows_only(repos: Any) -> None:
    w = repos.webhooks
    w.add_subscription(sub("s1"))
    w.enqueue(rows(4))
    a, b, c, _ = w.claim(T0 + timedelta(seconds=9), 10, T0 + timedelta(hours=1))
    w.record([Outcome(a.outbox_id, "delivered"), Outcome(b.outbox_id, "dead", error="x")], T0)
    w.record([Outcome(c.outbox_id, "delivered")], T0 + timedelta(days=2))
    assert w.purge(T0 + timedelta(days=1)) == 1
    assert [e.message_id for e in w.entries()] == ["msg_s1_1", "msg_s1_2", "msg_s1_3"]
    assert w.purge(T0 + timedelta(days=1)) == 0
    assert w.counts() == {"dead": 1, "delivered": 1, "pending": 1}
