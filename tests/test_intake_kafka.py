"""Streaming intake from Kafka, with the Redis consumer's contract (tests/test_intake_streams.py),
against a broker on loopback in its own process (librdkafka's mock cluster: why not Apache
Kafka's own broker is in tests/kafka_support.py and docs/adr/0161) and a real store (SQLite and
PostgreSQL): records parsed as the HTTP intake parses calls, bad ones dead-lettered with their
reason before their offsets are committed, a batch stored but not committed stored once, a store
that refuses a batch waited for, and the figures `sendwise status` shows."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from kafka_support import start_kafka
from sendwise.config import StreamSettings
from sendwise.errors import ConfigError, IntakeError
from sendwise.intake.streams.entries import parse_raw_call
from sendwise.intake.streams.kafka import TopicConsumer, made_id_of
from sendwise.intake.streams.kafka_connect import (
    brokers_of,
    kafka_producer,
    produce_events,
    topic_name,
)
from sendwise.intake.streams.kafka_status import kafka_status
from sendwise.intake.streams.producer import encode_call
from sendwise.intake.writer import append_unique
from sendwise.store.schema import intake_event
from test_intake_streams import FlakyIntake, Repos, call, count, log_ids

_names = itertools.count()


@pytest.fixture(scope="module")
def kafka_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from start_kafka(tmp_path_factory.mktemp("kafka"))


@pytest.fixture
def s(kafka_url: str) -> StreamSettings:
    """Settings of a topic and group of this test alone (the broker is the module's)."""
    n = next(_names)
    return StreamSettings(url=kafka_url, stream=f"ev{n}", group=f"g{n}", batch=300, block_ms=100,
                          claim_idle_ms=3_000)  # fmt: skip


def produce(s: StreamSettings, calls: list[dict[str, Any]]) -> None:
    produce_events(kafka_producer(s), topic_name(s.stream), calls)


def produce_raw(s: StreamSettings, values: list[bytes | None]) -> None:
    p = kafka_producer(s)
    for v in values:
        p.produce(topic_name(s.stream), value=v, key=b"k")
    assert p.flush(30) == 0


def dead_letters(s: StreamSettings) -> list[tuple[bytes | None, dict[str, bytes]]]:
    """Every record of the dead-letter topic: (value, headers)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": brokers_of(str(s.url)), "group.id": "reader",
                  "enable.partition.eof": True})  # fmt: skip
    topic = topic_name(s.dead_letter_stream())
    found = c.list_topics(timeout=10).topics.get(topic)
    if found is None or found.error is not None:
        c.close()
        return []
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in found.partitions])
    out: list[tuple[bytes | None, dict[str, bytes]]] = []
    ended: set[int] = set()
    deadline = time.monotonic() + 30
    while len(ended) < len(found.partitions) and time.monotonic() < deadline:
        for m in c.consume(100, 0.5):
            if m.error() is not None:
                if m.error().code() == -191:  # _PARTITION_EOF
                    ended.add(m.partition())
                continue
            out.append((m.value(), {k: v for k, v in (m.headers() or [])}))
    c.close()
    return out


# -- settings ------------------------------------------------------------------------------


def test_urls_and_topic_names() -> None:
    assert brokers_of("kafka://a:9092,b.example:19092") == "a:9092,b.example:19092"
    assert brokers_of("kafka://[::1]:9092/") == "[::1]:9092"
    assert topic_name("sendwise:events") == "sendwise.events"
    for url in ("kafka://", "kafka://host", "kafka://u:secret@h:9092", "redis://h:1"):
        with pytest.raises(ConfigError) as refused:
            brokers_of(url)
        assert "secret" not in str(refused.value)
    for bad in ("a b", "x/y", "..", "é"):
        with pytest.raises(ConfigError, match="not a Kafka topic name"):
            topic_name(bad)


# -- the consumer, on a broker and a real store ---------------------------------------------


def test_good_records_stored_once_bad_ones_dead_lettered_all_committed(
    s: StreamSettings, store: Any
) -> None:
    good = [call(i) for i in range(1_000)]
    produce(s, good)
    produce_raw(s, [b"{not json", json.dumps({"type": "track", "event": "e"}).encode(), None])
    produce(s, good[:200])  # a producer's retry: the same messageIds

    report = TopicConsumer(store, s, consumer="c1").run(until_idle=True)

    assert sorted(log_ids(store)) == sorted(c["messageId"] for c in good)
    assert (report.read, report.stored, report.duplicates, report.dead) == (1_203, 1_000, 200, 3)
    dead = dead_letters(s)
    reasons = sorted(h["reason"].decode() for _, h in dead)
    assert len(dead) == 3
    assert "not valid JSON" in reasons[0] and "tombstone" in reasons[1] and "userId" in reasons[2]
    assert {h["topic"] for _, h in dead} == {topic_name(s.stream).encode()}
    assert b"{not json" in [v for v, _ in dead]
    g = kafka_status(s)
    assert (g.length, g.lag, g.dead_letters) == (1_203, 0, 3)
    with store.begin() as conn:
        source = conn.execute(select(intake_event.c.source).limit(1)).scalar()
    assert source == f"kafka:{topic_name(s.stream)}"


def _stored_not_committed(s: StreamSettings, store: Any, n: int) -> int:
    """A consumer that stores up to ``n`` records and dies before it commits their offsets
    (it leaves the group, as after a crash its session would expire)."""
    a = TopicConsumer(store, s, consumer="a")
    a._subscribe()
    taken: list[Any] = []
    deadline = time.monotonic() + 30
    while len(taken) < n and time.monotonic() < deadline:
        taken += [m for m in a.kafka.consume(n - len(taken), 0.5) if m.error() is None]
    rows = [
        parse_raw_call(m.value(), received_at=time_of(m), made_id=made_id_of(a.tag, m),
                       source=a.source) for m in taken
    ]  # fmt: skip
    append_unique(store, rows)
    a.close()
    return len(taken)


def time_of(record: Any) -> Any:
    from sendwise.intake.streams.kafka import _record_time

    return _record_time(record)


def test_records_stored_but_not_committed_are_stored_once_by_the_next_consumer(
    s: StreamSettings, store: Any
) -> None:
    calls = [call(i) for i in range(1_500)]
    for c in calls[::3]:
        del c["messageId"]  # the consumer makes one of topic, partition and offset
    produce(s, calls)
    held = _stored_not_committed(s, store, 600)
    assert held == 600 and count(store) == 600

    b = TopicConsumer(store, s, consumer="b").run(until_idle=True)

    assert count(store) == 1_500 and len(set(log_ids(store))) == 1_500
    assert b.duplicates == 600 and b.stored == 900
    assert kafka_status(s).lag == 0


BAD_VALUES: list[bytes | None] = [
    b"{not json", b"[]", None, b'{"type":"track","event":"e"}', b'{"type":"nope","userId":"u"}',
    b"\xff\xfe", b'{"type":"track","userId":"u","event":"e","properties":{"x":"\\u0000"}}',
]  # fmt: skip


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    records=st.lists(
        st.integers(0, 12).map(lambda i: ("good", i))
        | st.integers(0, len(BAD_VALUES) - 1).map(lambda j: ("bad", j)),
        min_size=1,
        max_size=40,
    ),
    batch=st.integers(1, 7),
    batches_before_death=st.integers(0, 3),
    died_after_store=st.booleans(),
)
def test_any_records_any_death_every_good_call_once_every_bad_record_dead_once(
    kafka_url: str,
    store: Any,
    records: list[tuple[str, int]],
    batch: int,
    batches_before_death: int,
    died_after_store: bool,
) -> None:
    """Whatever the mix of good calls (messageIds repeated), bad records and batch size, and
    wherever the first consumer dies (before or after its store commit, never after its
    offset commit), the second one leaves every good messageId in the log once and every bad
    record in the dead-letter topic once."""
    n = next(_names)
    s = StreamSettings(url=kafka_url, stream=f"p{n}", group=f"g{n}", batch=batch, block_ms=100,
                       claim_idle_ms=3_000)  # fmt: skip
    run = f"p{n}"
    values = [encode_call(call(i, run)) if kind == "good" else BAD_VALUES[i] for kind, i in records]
    produce_raw(s, values)
    a = TopicConsumer(store, s, consumer="a")
    a._subscribe()
    for _ in range(batches_before_death):
        a.poll()
    taken = [m for m in a.kafka.consume(batch, 1.0) if m.error() is None]
    if died_after_store and taken:
        rows = []
        for m in taken:
            with contextlib.suppress(IntakeError):
                rows.append(
                    parse_raw_call(
                        m.value() or b"",
                        received_at=time_of(m),
                        made_id=made_id_of(a.tag, m),
                        source=a.source,
                    )
                )
        append_unique(store, rows)  # fmt: skip
    a.close()
    TopicConsumer(store, s, consumer="b").run(until_idle=True)

    good = {f"{run}-{i:06d}" for kind, i in records if kind == "good"}
    stored = [m for m in log_ids(store) if m.startswith(f"{run}-")]
    assert sorted(stored) == sorted(good)
    bad = sorted(BAD_VALUES[i] or b"" for kind, i in records if kind == "bad")
    assert sorted(v or b"" for v, _ in dead_letters(s)) == bad
    assert kafka_status(s).lag == 0


class DownFor:
    """The real repository, refusing every append for ``seconds`` after the first one."""

    def __init__(self, real: Any, seconds: float) -> None:
        self.real, self.seconds, self.since, self.refused = real, seconds, 0.0, 0

    def append(self, rows: Any) -> list[bool]:
        self.since = self.since or time.monotonic()
        if time.monotonic() - self.since < self.seconds:
            self.refused += 1
            raise OSError("connection refused")
        return self.real.append(rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_a_store_that_refuses_a_batch_is_waited_for_and_the_batch_read_again(
    s: StreamSettings, store: Any
) -> None:
    produce(s, [call(i) for i in range(900)])
    down = DownFor(store.intake, seconds=1.5)
    report = TopicConsumer(Repos(store, down), s, consumer="c").run(until_idle=True)
    assert down.refused > 1
    assert count(store) == 900 and report.dead == 0 and report.stored == 900
    assert dead_letters(s) == [] and kafka_status(s).lag == 0


def test_a_row_the_store_alone_refuses_is_dead_lettered_and_the_rest_stored(
    s: StreamSettings, store: Any
) -> None:
    produce(s, [call(i) for i in range(10)])

    class RefusesFive(FlakyIntake):
        def append(self, rows: Any) -> list[bool]:
            if any(r["message_id"] == "r-000005" for r in rows):
                raise ValueError("value out of range")
            return self.real.append(rows)

    report = TopicConsumer(Repos(store, RefusesFive(store.intake, 0)), s, consumer="c").run(
        until_idle=True
    )
    assert count(store) == 9 and report.dead == 1
    [(value, headers)] = dead_letters(s)
    assert headers["reason"] == b"the store refused it: ValueError: value out of range"
    assert value is not None and json.loads(value)["messageId"] == "r-000005"


def test_status_reports_lag_dead_letters_and_each_consumers_throughput(
    s: StreamSettings, store: Any
) -> None:
    produce(s, [call(i) for i in range(250)])
    produce_raw(s, [b"[]"])
    before = kafka_status(s)
    assert (before.length, before.lag, before.pending, before.consumers) == (251, 251, None, [])
    c = TopicConsumer(store, s, consumer="worker[/bold]")
    c.run(until_idle=True)
    g = kafka_status(s)
    assert (g.length, g.lag, g.dead_letters) == (251, 0, 1)
    [fig] = g.consumers
    assert fig.name == "worker[/bold]" and fig.read == 251 and fig.dead == 1 and fig.active
    assert fig.stored == 250 and g.rate > 0


def test_a_consumer_that_stops_hands_its_partitions_to_the_one_still_running(
    s: StreamSettings, store: Any
) -> None:
    """Two members share the topic's partitions; when one leaves, the other gets them all
    and the group ends with every record stored once."""
    produce(s, [call(i) for i in range(3_000)])
    first_stop = threading.Event()
    a = TopicConsumer(store, s.model_copy(update={"batch": 50}), consumer="a")
    runner = threading.Thread(target=lambda: a.run(stop=first_stop))
    runner.start()
    deadline = time.monotonic() + 60
    while a.report.read < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    first_stop.set()
    runner.join(60)
    b = TopicConsumer(store, s, consumer="b").run(until_idle=True)
    assert a.report.read >= 200 and a.report.read + b.read >= 3_000
    assert sorted(log_ids(store)) == sorted(call(i)["messageId"] for i in range(3_000))


def test_a_consumer_started_before_its_topic_exists_reads_it_once_it_is_made(
    s: StreamSettings, store: Any
) -> None:
    stop = threading.Event()
    c = TopicConsumer(store, s, consumer="early")
    runner = threading.Thread(target=lambda: c.run(stop=stop))
    runner.start()
    try:
        time.sleep(1.0)  # subscribed to a topic no broker has yet
        produce(s, [call(i) for i in range(100)])
        deadline = time.monotonic() + 40
        while count(store) < 100 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        runner.join(30)
    assert count(store) == 100


# -- the command ------------------------------------------------------------------------------


def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from sendwise.cli.app import app

    return CliRunner().invoke(app, list(args))


def test_consume_command_then_status(s: StreamSettings, kafka_url: str, tmp_path: Path) -> None:
    from sendwise.config import init_project

    folder = tmp_path / "shop"
    init_project(folder)
    with (folder / "sendwise.toml").open("a") as f:
        f.write(f'\n[streams]\nurl = "{kafka_url}"\nstream = "shop:events"\nblock_ms = 50\n'
                f'group = "{s.group}"\n')  # fmt: skip
    shop = s.model_copy(update={"stream": "shop:events"})
    produce(shop, [call(i) for i in range(300)])
    produce_raw(shop, [b"nope"])
    done = _cli("intake", "consume", "-p", str(folder), "--until-idle", "--consumer", "w1")
    assert done.exit_code == 0, done.output
    out = " ".join(done.output.split())
    assert "consuming shop.events from kafka://" in out
    assert "took 301 records" in out and "300 stored" in out
    assert "1 dead-lettered (to shop.events.dead)" in out
    shown = _cli("status", "-p", str(folder))
    assert shown.exit_code == 0, shown.output
    said = " ".join(shown.output.split())
    assert "topic shop.events at kafka://" in said and "lag 0, dead letters 1" in said
    assert "w1" in shown.output


def test_consume_with_kafka_unreachable_is_one_line(tmp_path: Path) -> None:
    from sendwise.config import init_project

    init_project(tmp_path / "shop")
    done = _cli("intake", "consume", "-p", str(tmp_path / "shop"), "--kafka", "127.0.0.1:1")
    assert done.exit_code == 1, done.output
    assert "Kafka at 127.0.0.1:1 is not reachable" in done.output
    assert "Traceback" not in done.output
    bad = _cli("intake", "consume", "-p", str(tmp_path / "shop"), "--kafka", "no port")
    assert bad.exit_code == 1 and "is not a broker's host:port" in bad.output


# -- what a hostile producer or user can do (each a class of defect found in review) ---------


def test_a_record_stamped_past_year_9999_is_stored_as_received_now(
    s: StreamSettings, store: Any
) -> None:
    p = kafka_producer(s)
    for i, stamp in enumerate((2_534_023_008_000_000, 2**62, 253_402_300_800_000)):
        p.produce(topic_name(s.stream), value=encode_call(call(i)), timestamp=stamp)
    assert p.flush(30) == 0
    before = time.time()
    report = TopicConsumer(store, s, consumer="c").run(until_idle=True)
    assert (report.stored, report.dead) == (3, 0)
    with store.begin() as conn:
        received = conn.execute(select(intake_event.c.received_at)).scalars().all()
    assert all(abs(r.replace(tzinfo=None).timestamp() - before) < 120 for r in received)


def test_calls_without_messageid_at_the_same_offsets_of_a_new_topic_are_not_duplicates(
    tmp_path: Path, store: Any
) -> None:
    """A topic made again (or moved to another cluster) starts at offset 0 again: its records
    must not be taken for those stored from the old one."""
    stored = []
    for n, run in enumerate(("old", "new")):
        (tmp_path / run).mkdir()
        brokers = start_kafka(tmp_path / run)
        url = next(brokers)
        try:
            t = StreamSettings(url=url, stream="orders", group=f"g-{run}", block_ms=100)
            calls = [{k: v for k, v in call(i + 100 * n).items() if k != "messageId"}
                     for i in range(5)]  # fmt: skip
            produce(t, calls)
            report = TopicConsumer(store, t, consumer="c").run(until_idle=True)
            stored.append(report.stored)
        finally:
            brokers.close()
    assert stored == [5, 5]
    assert count(store) == 10 and len(set(log_ids(store))) == 10


def test_a_record_too_big_to_dead_letter_whole_is_dead_lettered_cut_and_the_rest_stored(
    s: StreamSettings, store: Any
) -> None:
    from confluent_kafka import Producer

    big = Producer({"bootstrap.servers": brokers_of(str(s.url)), "message.max.bytes": 5_000_000})
    own = [("trace", b"t-1"), ("reason", b"a header of the producer's own")]
    big.produce(topic_name(s.stream), value=b"x" * 2_000_000, key=b"big", headers=own)
    big.produce(topic_name(s.stream), value=None, key=b"gone")  # a tombstone
    assert big.flush(30) == 0
    produce(s, [call(1)])
    report = TopicConsumer(store, s, consumer="c").run(until_idle=True)
    assert (report.stored, report.dead) == (1, 2)
    by_reason = {h["reason"]: (v, h) for v, h in dead_letters(s)}  # the last of a name: ours
    [(value, headers)] = [x for r, x in by_reason.items() if b"larger than" in r]
    assert headers["truncated"] == b"2000000" and len(value or b"") == 900_000
    assert headers["trace"] == b"t-1" and "entry" in headers and "timestamp" in headers
    [(_, tomb)] = [x for r, x in by_reason.items() if b"tombstone" in r]
    assert kafka_status(s).lag == 0 and tomb["topic"] == topic_name(s.stream).encode()


def test_dead_letters_that_fill_the_producers_queue_wait_for_it(kafka_url: str, store: Any) -> None:
    n = next(_names)
    t = StreamSettings(url=kafka_url, stream=f"ev{n}", group=f"g{n}", block_ms=100, batch=50,
                       kafka={"queue.buffering.max.kbytes": 1_000})  # fmt: skip
    roomy = t.model_copy(update={"kafka": {}})
    produce_raw(roomy, [b"[" + b"1," * 50_000 + b"1]" for _ in range(20)])  # 100 KB, not calls
    report = TopicConsumer(store, t, consumer="c").run(until_idle=True)
    assert report.dead == 20 and len(dead_letters(t)) == 20


def test_a_transactional_producers_topic_reaches_lag_zero(s: StreamSettings, store: Any) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": brokers_of(str(s.url)), "transactional.id": s.group})
    p.init_transactions(30)
    for batch in (range(3), range(3, 10)):
        p.begin_transaction()
        for i in batch:
            p.produce(topic_name(s.stream), value=encode_call(call(i)), key=b"k")
        p.commit_transaction(30)
    done = threading.Event()
    result: list[Any] = []

    def consume() -> None:
        result.append(TopicConsumer(store, s, consumer="c").run(until_idle=True))
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    assert done.wait(60), "until_idle never ended: the transactions' markers count as lag"
    assert result[0].stored == 10 and kafka_status(s).lag == 0


def test_settings_that_cannot_work_are_refused_in_one_line(
    s: StreamSettings, store: Any, tmp_path: Path
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="back into the stream"):
        StreamSettings(url=s.url, stream=s.stream, dead_letter=s.stream)
    with pytest.raises(ValidationError, match="back into the stream"):  # ':' is '.' on Kafka
        StreamSettings(url=s.url, stream="a.b", dead_letter="a:b")
    StreamSettings(url="redis://h:6379", stream="a.b", dead_letter="a:b")  # two Redis streams
    for key in ("bootstrap.servers", "group.id", "enable.auto.commit", "session.timeout.ms"):
        with pytest.raises(ValidationError, match="is not set here"):
            StreamSettings(url=s.url, kafka={key: "x"})
    assert StreamSettings(url=s.url, kafka={"fetch.min.bytes": 1, "check.crcs": True}).kafka
    missing = str(tmp_path / "no.pem")
    for conf in ({"no.such.property": "1"}, {"session.timeout": "x"},
                 {"security.protocol": "bogus"},
                 {"security.protocol": "ssl", "ssl.ca.location": missing}):  # fmt: skip
        bad = s.model_copy(update={"kafka": conf})
        with pytest.raises(ConfigError, match=r"^\[streams.kafka\] settings: "):
            TopicConsumer(store, bad, consumer="c")
        with pytest.raises(ConfigError, match=r"^\[streams.kafka\] settings: "):
            kafka_status(bad)
    for url in ("kafka://h:9092?sasl.password=hunter2", "kafka://h:9092#hunter2",
                "kafka://h:99999", "kafka://h:0"):  # fmt: skip
        with pytest.raises(ConfigError) as refused:
            brokers_of(url)
        assert "hunter2" not in str(refused.value)


def test_status_ignores_commit_metadata_that_is_not_figures(s: StreamSettings) -> None:
    from confluent_kafka import Consumer, TopicPartition

    produce(s, [call(i) for i in range(4)])
    c = Consumer({"bootstrap.servers": brokers_of(str(s.url)), "group.id": s.group})
    odd = ['{"consumer":"evil","read":Infinity,"stored":0,"duplicates":0,"dead":0,"rate":1,'
           '"at":1}', '{"consumer":"x","read":1,"stored":1,"duplicates":0,"dead":0,'
           '"rate":1e999,"at":1}', "[" * 3000, "{}"]  # fmt: skip
    c.commit(offsets=[TopicPartition(topic_name(s.stream), p, 1, metadata=m)
                      for p, m in enumerate(odd)], asynchronous=False)  # fmt: skip
    c.close()
    g = kafka_status(s)
    assert g.consumers == [] and g.length == 4
