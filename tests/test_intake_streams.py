"""Streaming intake through a real redis-server into a real store (SQLite and PostgreSQL):
entries parsed as the HTTP intake parses calls, bad entries dead-lettered with their reason and
acknowledged, redeliveries stored once, abandoned entries taken over, the store waited for, and
the figures `sendwise status` shows."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from redis_support import start_redis
from sendwise.config import StreamSettings
from sendwise.intake.body import parse_request
from sendwise.intake.streams import (
    StreamConsumer,
    connect,
    encode_call,
    publish_events,
    stream_status,
)
from sendwise.intake.streams.entries import FIELD, entry_time, parse_entries, stream_tag
from sendwise.store.schema import intake_event


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from start_redis(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def redis(redis_url: str) -> Iterator[Any]:
    client = connect(redis_url)
    client.flushall()
    yield client
    client.close()


def call(i: int, run: str = "r", **extra: Any) -> dict[str, Any]:
    return {
        "type": "track", "messageId": f"{run}-{i:06d}", "userId": f"C{i % 50}",
        "event": "Product Viewed", "timestamp": "2026-12-01T10:00:00+00:00",
        "properties": {"product_id": f"sku{i % 7}", "price": 9.5}, **extra,
    }  # fmt: skip


def log_ids(store: Any) -> list[str]:
    with store.begin() as conn:
        return list(conn.execute(select(intake_event.c.message_id)).scalars())


def count(store: Any) -> int:
    with store.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(intake_event)).scalar())


def fast(**kw: Any) -> StreamSettings:
    return StreamSettings(**{"stream": "ev", "batch": 300, "block_ms": 50, **kw})


# -- entries: the HTTP intake's rules, and every entry a row or a dead letter ----------------


def test_an_entry_becomes_the_row_the_http_intake_makes_of_the_same_call() -> None:
    c = call(1, sentAt="2026-12-01T10:00:05+00:00", anonymousId="a1")
    entry_id = "1764583210123-0"
    parsed = parse_entries([(entry_id, {FIELD: encode_call(c)})], tag="t", source="s")
    http = parse_request(
        "track", json.dumps(c).encode(), received_at=entry_time(entry_id), source="s"
    )
    assert parsed.rows == http and not parsed.dead
    assert entry_time(entry_id) == datetime(2025, 12, 1, 10, 0, 10, 123000)


def test_a_call_without_message_id_gets_the_same_one_on_every_delivery() -> None:
    c = call(1)
    del c["messageId"]
    entries = [
        ("5-0", {FIELD: encode_call(c)}),
        ("5-1", {FIELD: encode_call({**c, "messageId": " "})}),
    ]
    first = parse_entries(entries, tag=stream_tag("ev"), source="s").rows
    again = parse_entries(entries, tag=stream_tag("ev"), source="s").rows
    assert [r["message_id"] for r in first] == [r["message_id"] for r in again]
    assert first[0]["message_id"] == f"sw-{stream_tag('ev')}-5-0" != first[1]["message_id"]


BAD = {
    "not json": ({FIELD: b"{oops"}, "not valid JSON"),
    "no user": ({FIELD: encode_call({"type": "track", "event": "x"})}, "userId"),
    "no type": ({FIELD: encode_call({"userId": "u", "event": "x"})}, "type"),
    "no field": ({b"payload": b"{}"}, "no 'call' field"),
    "too large": ({FIELD: encode_call(call(1, pad="x" * 40_000))}, "larger than 32 KB"),
    "nul": ({FIELD: b'{"type":"track","userId":"u\\u0000","event":"x"}'}, "NUL"),
    "deleted": ({}, "deleted from the stream"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_a_bad_entry_is_dead_with_a_reason_naming_what(name: str) -> None:
    fields, reason = BAD[name]
    parsed = parse_entries([("7-0", fields)], tag="t", source="s")
    assert not parsed.rows and len(parsed.dead) == 1
    assert reason in parsed.dead[0].reason and parsed.dead[0].fields == fields


values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
calls = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["track", "identify", "page", "alias", "group", "bogus"]),
        "userId": values, "anonymousId": values, "event": values, "messageId": values,
        "timestamp": values, "properties": values, "traits": values, "previousId": values,
        "groupId": values, "sentAt": values,
    },
)  # fmt: skip
raw_fields = st.dictionaries(st.binary(max_size=8), st.binary(max_size=40), max_size=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(calls.map(lambda c: {FIELD: json.dumps(c).encode()}) | raw_fields, max_size=6))
def test_every_entry_is_a_row_or_a_dead_letter_and_nothing_raises(
    entries: list[dict[bytes, bytes]],
) -> None:
    batch = [(f"{i + 1}-0", fields) for i, fields in enumerate(entries)]
    parsed = parse_entries(batch, tag="t", source="s")
    assert sorted(parsed.row_ids + [d.entry_id for d in parsed.dead]) == sorted(i for i, _ in batch)
    assert all(d.reason for d in parsed.dead)


# -- the consumer, on a real Redis and a real store --------------------------------------------


def test_good_entries_stored_once_bad_ones_dead_lettered_all_acknowledged(
    redis: Any, store: Any
) -> None:
    s = fast()
    good = [call(i) for i in range(1_000)]
    publish_events(redis, s.stream, good)
    redis.xadd(s.stream, {FIELD: b"{not json"})
    redis.xadd(s.stream, {b"other": b"x", FIELD: encode_call({"type": "track", "event": "e"})})
    publish_events(redis, s.stream, good[:200])  # a producer's retry: the same messageIds

    report = StreamConsumer(redis, store, s, consumer="c1").run(until_idle=True)

    ids = log_ids(store)
    assert sorted(ids) == sorted(c["messageId"] for c in good)
    assert (report.read, report.stored, report.duplicates, report.dead) == (1_202, 1_000, 200, 2)
    assert redis.xpending(s.stream, s.group)["pending"] == 0
    dead = redis.xrange(s.dead_letter_stream())
    reasons = [f[b"reason"].decode() for _, f in dead]
    assert "not valid JSON" in reasons[0] and "userId" in reasons[1]
    assert dead[1][1][b"field:other"] == b"x" and dead[0][1][b"field:call"] == b"{not json"
    with store.begin() as conn:
        source = conn.execute(select(intake_event.c.source).limit(1)).scalar()
    assert source == "stream:ev"


def test_entries_abandoned_by_a_dead_consumer_are_taken_over_and_stored_once(
    redis: Any, store: Any
) -> None:
    s = fast(claim_idle_ms=200)
    publish_events(redis, s.stream, [call(i) for i in range(2_000)])
    a = StreamConsumer(redis, store, s, consumer="a")
    a.run(stop=_stopped())  # makes the group
    stored_then_killed = a._read(">", None)  # killed after its commit, before its XACK
    parsed = parse_entries(stored_then_killed, tag=a.tag, source=a.source)
    from sendwise.intake.writer import append_unique

    append_unique(store, parsed.rows)
    a._read(">", None)  # killed before its commit
    assert redis.xpending(s.stream, s.group)["pending"] == 600

    b = StreamConsumer(redis, store, s, consumer="b").run(until_idle=True)

    assert sorted(log_ids(store)) == sorted(call(i)["messageId"] for i in range(2_000))
    assert b.claimed == 600 and b.duplicates == 300 and b.stored == 1_700
    assert redis.xpending(s.stream, s.group)["pending"] == 0


def test_a_restarted_consumer_takes_its_own_pending_entries_back_first(
    redis: Any, store: Any
) -> None:
    s = fast(claim_idle_ms=3_600_000)  # nothing is claimed from others: only its own
    publish_events(redis, s.stream, [call(i) for i in range(500)])
    first = StreamConsumer(redis, store, s, consumer="same")
    first.run(stop=_stopped())
    first._read(">", None)
    again = StreamConsumer(redis, store, s, consumer="same").run(until_idle=True)
    assert count(store) == 500 and again.claimed == 0 and again.read == 500


_run = iter(range(1_000_000))
_bad_fields = [fields for fields, _ in BAD.values() if fields]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    entries=st.lists(
        st.integers(0, 12).map(lambda i: ("good", i))
        | st.sampled_from(range(6)).map(lambda j: ("bad", j)),
        max_size=30,
    ),
    batch=st.integers(1, 7),
    batches_before_death=st.integers(0, 3),
    died_after_commit=st.booleans(),
)
def test_any_entries_any_death_every_good_call_once_every_bad_entry_dead_once(
    redis: Any,
    store: Any,
    entries: list[tuple[str, int]],
    batch: int,
    batches_before_death: int,
    died_after_commit: bool,
) -> None:
    """Whatever the mix of good calls (messageIds repeated), bad entries and batch size, and
    wherever the first consumer dies (before or after its commit), the second one leaves every
    good messageId in the log and every bad entry in the dead-letter stream, each once."""
    run = f"p{next(_run)}"
    s = fast(stream=run, batch=batch, claim_idle_ms=100, block_ms=10)
    ids = []
    for kind, i in entries:
        fields = {FIELD: encode_call(call(i, run))} if kind == "good" else _bad_fields[i]
        ids.append(redis.xadd(run, fields).decode())
    a = StreamConsumer(redis, store, s, consumer="a")
    a.run(stop=_stopped())
    for _ in range(batches_before_death):
        a.poll()
    taken = a._read(">", None)
    if died_after_commit and taken:
        from sendwise.intake.writer import append_unique

        append_unique(store, parse_entries(taken, tag=a.tag, source=a.source).rows)
    StreamConsumer(redis, store, s, consumer="b").run(until_idle=True)

    good = {f"{run}-{i:06d}" for kind, i in entries if kind == "good"}
    stored = [m for m in log_ids(store) if m.startswith(f"{run}-")]
    assert sorted(stored) == sorted(good)
    bad = {entry_id for entry_id, (kind, _) in zip(ids, entries, strict=True) if kind == "bad"}
    dead = [f[b"entry"].decode() for _, f in redis.xrange(s.dead_letter_stream())]
    assert sorted(dead) == sorted(bad)
    assert redis.xpending(run, s.group)["pending"] == 0


class FlakyIntake:
    """The real repository, refusing its first ``failures`` appends (the store is down)."""

    def __init__(self, real: Any, failures: int) -> None:
        self.real, self.failures = real, failures

    def append(self, rows: Any) -> list[bool]:
        if self.failures > 0:
            self.failures -= 1
            raise OSError("connection refused")
        return self.real.append(rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


class Repos:
    def __init__(self, store: Any, intake: Any) -> None:
        self.store, self.intake = store, intake

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_a_store_that_refuses_a_batch_is_waited_for_and_nothing_is_acknowledged_meanwhile(
    redis: Any, store: Any
) -> None:
    s = fast()
    publish_events(redis, s.stream, [call(i) for i in range(900)])
    flaky = FlakyIntake(store.intake, failures=301)  # the batch, then each of its 300 rows
    report = StreamConsumer(redis, Repos(store, flaky), s, consumer="c").run(until_idle=True)
    assert count(store) == 900 and report.dead == 0 and report.stored == 900
    assert redis.xlen(s.dead_letter_stream()) == 0


def test_a_row_the_store_alone_refuses_is_dead_lettered_and_the_rest_stored(
    redis: Any, store: Any
) -> None:
    s = fast()
    publish_events(redis, s.stream, [call(i) for i in range(10)])

    class RefusesFive(FlakyIntake):
        def append(self, rows: Any) -> list[bool]:
            if any(r["message_id"] == "r-000005" for r in rows):
                raise ValueError("value out of range")
            return self.real.append(rows)

    report = StreamConsumer(redis, Repos(store, RefusesFive(store.intake, 0)), s, consumer="c").run(
        until_idle=True
    )
    assert count(store) == 9 and report.dead == 1
    ((_, fields),) = redis.xrange(s.dead_letter_stream())
    assert fields[b"reason"] == b"the store refused it: ValueError: value out of range"
    assert json.loads(fields[b"field:call"])["messageId"] == "r-000005"


def test_status_reports_lag_pending_dead_letters_and_throughput(redis: Any, store: Any) -> None:
    s = fast(batch=100)
    publish_events(redis, s.stream, [call(i) for i in range(250)])
    redis.xadd(s.stream, {FIELD: b"[]"})
    before = stream_status(redis, s)
    assert (before.length, before.lag, before.pending) == (251, 251, 0)
    c = StreamConsumer(redis, store, s, consumer="c")
    c.run(stop=_stopped())
    c.poll()
    c._read(">", None)  # 100 delivered, not acknowledged
    g = stream_status(redis, s)
    assert (g.length, g.lag, g.pending, g.dead_letters) == (251, 51, 100, 0)
    [fig] = g.consumers
    assert fig.name == "c" and fig.read == 100 and fig.active and g.rate > 0


def test_an_idle_consumer_keeps_reporting_and_its_rate_falls_to_zero(
    redis: Any, store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sendwise.intake.streams.consumer as module

    monkeypatch.setattr(module, "HEARTBEAT", 0.0)
    monkeypatch.setattr(module, "RATE_WINDOW", 0.05)
    s = fast()
    publish_events(redis, s.stream, [call(i) for i in range(10)])
    c = StreamConsumer(redis, store, s, consumer="idle")
    c.run(stop=_stopped())
    assert c.poll() == 10
    [busy] = stream_status(redis, s).consumers
    assert busy.rate > 0
    for _ in range(3):
        assert c.poll() == 0  # empty reads of 50 ms each
    [idle] = stream_status(redis, s).consumers
    assert idle.rate == 0 and idle.active and idle.seconds_ago < busy.seconds_ago + 1
    assert idle.read == 10


def _stopped() -> threading.Event:
    stop = threading.Event()
    stop.set()
    return stop


# -- the command ------------------------------------------------------------------------------


def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from sendwise.cli.app import app

    return CliRunner().invoke(app, list(args))


def test_consume_command_then_status(redis: Any, redis_url: str, tmp_path: Path) -> None:
    from sendwise.config import init_project

    folder = tmp_path / "shop"
    init_project(folder)
    with (folder / "sendwise.toml").open("a") as f:
        f.write(f'\n[streams]\nurl = "{redis_url}"\nstream = "shop:events"\nblock_ms = 50\n')
    publish_events(redis, "shop:events", [call(i) for i in range(300)])
    redis.xadd("shop:events", {FIELD: b"nope"})
    name = "w1[/bold]"  # printed literally, never as markup
    done = _cli("intake", "consume", "-p", str(folder), "--until-idle", "--consumer", name)
    assert done.exit_code == 0, done.output
    out = " ".join(done.output.split())
    assert "took 301 entries" in out and "300 stored" in out
    assert "1 dead-lettered (to shop:events:dead)" in out
    shown = _cli("status", "-p", str(folder))
    assert shown.exit_code == 0, shown.output
    assert "lag 0, pending 0, dead letters 1" in " ".join(shown.output.split())
    assert name in shown.output


def test_consume_with_redis_unreachable_is_one_line(tmp_path: Path) -> None:
    from sendwise.config import init_project

    init_project(tmp_path / "shop")
    done = _cli("intake", "consume", "-p", str(tmp_path / "shop"), "--redis",
                "redis://:secret@127.0.0.1:1/0")  # fmt: skip
    assert done.exit_code == 1
    assert "Redis at 127.0.0.1:1 is not reachable" in done.output
    assert "Traceback" not in done.output and "secret" not in done.output


def test_a_consent_from_the_stream_waits_for_confirmation(redis: Any, store: Any) -> None:
    """The stream consumer applies double opt-in as the HTTP intake: pending, one confirmation
    per new consent, a withdrawal at once."""
    s = fast()
    identify = {"type": "identify", "userId": "C1", "timestamp": "2026-12-01T10:00:00+00:00",
                "traits": {"email": "ann@example.com", "email_consent": True}}  # fmt: skip
    calls = [
        {**identify, "messageId": "i-1"},
        {**identify, "messageId": "i-2", "timestamp": "2026-12-01T10:00:01+00:00"},
        {**identify, "messageId": "i-3", "userId": "C2", "traits": {"email": "bo@example.com",
         "email_consent": True}},
        {**identify, "messageId": "i-4", "userId": "C2", "timestamp": "2026-12-01T10:00:05+00:00",
         "traits": {"email": "bo@example.com", "email_consent": False}},
    ]  # fmt: skip
    publish_events(redis, s.stream, calls)
    mailed: list[Any] = []
    StreamConsumer(redis, store, s, consumer="c1", confirm=lambda c, e: f"t-{c}",
                   mail=mailed.extend).run(until_idle=True)  # fmt: skip
    assert sorted(mailed) == [("C1", "ann@example.com", "t-C1"), ("C2", "bo@example.com", "t-C2")]
    assert store.consents.in_force("C1", "ann@example.com") == "pending"
    assert store.consents.in_force("C2", "bo@example.com") == "withdrawn"
