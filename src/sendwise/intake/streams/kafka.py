"""Streaming intake from a Kafka topic: a consumer group member with the Redis consumer's
contract (sendwise.intake.streams.consumer), through confluent-kafka (librdkafka).
docs/streaming.md ("Kafka"), docs/adr/0173.

One record holds one Segment call as its value (UTF-8 JSON, as the Redis field ``call``).
Each round takes up to ``batch`` records of the partitions the group gave this consumer, parses
them with the HTTP intake's checks, appends the rows with ``append_unique`` in one store
transaction, produces the records that cannot be stored to the dead-letter topic (and waits
for Kafka to have them), and only then commits the offsets after the batch. Kafka acknowledges
by offset per partition, not per record, which is why a bad record must be dead-lettered
before its offset is passed, never skipped.

A consumer killed anywhere loses nothing: its partitions go to the others after the group's
session timeout (``claim_idle_ms``), and they start at the last committed offset; what it had
stored but not committed comes back as "already stored" (the messageId). A record without a
messageId gets ``sw-<topic tag>-<partition>-<offset>-<digest of the record>``, its
``receivedAt`` is the record's timestamp: both the same on every delivery.

The consumer's figures for `sendwise status` travel in the metadata of its offset commits, so
status needs nothing but the brokers (no stats topic, no store).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from sendwise.config import StreamSettings
from sendwise.errors import IntakeError, StreamError
from sendwise.intake.streams.batch import run_rounds, store_batch
from sendwise.intake.streams.consumer import HEARTBEAT, MAX_BACKOFF, RATE_WINDOW, ConsumeReport
from sendwise.intake.streams.entries import FIELD, Dead, Fields, Parsed, parse_raw_call, stream_tag
from sendwise.intake.streams.kafka_connect import (
    REACH_TIMEOUT,
    UNREACHABLE,
    kafka_config,
    kafka_errors,
    produce_when_room,
    said,
    settings_errors,
    topic_name,
)
from sendwise.intake.streams.kafka_status import topic_lag

logger = logging.getLogger(__name__)
DEAD_LETTER_WAIT = 30.0
LATEST_MILLIS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: Python's last datetime; a record stamped later came in now."""
DEAD_LETTER_BYTES = 900_000
"""A dead letter's value is cut to this many bytes (a header says so), under the 1 MB a
broker takes by default: a record too big to store must not be too big to dead-letter."""
LAG_PATIENCE = 60.0
"""Seconds the group's offsets may be unreadable (a rebalance under way) before the brokers
are called unreachable."""


def _record_time(record: Any) -> datetime:
    """The naive-UTC time of a record (the producer's or the broker's timestamp)."""
    from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

    kind, millis = record.timestamp()
    if kind != TIMESTAMP_NOT_AVAILABLE and millis is not None and 0 <= millis <= LATEST_MILLIS:
        return datetime.fromtimestamp(millis / 1000, UTC).replace(tzinfo=None)
    # none, or one a producer made up (Kafka accepts any 64-bit value): the time it came in
    return datetime.now(UTC).replace(tzinfo=None)


def made_id_of(tag: str, record: Any) -> str:
    """The messageId of a record that has none: the same on every delivery of the record, and
    not the same for another record at the same offset (a topic deleted and made again, a
    cluster moved): the offset plus a digest of the record's timestamp, key and value."""
    digest = hashlib.blake2b(digest_size=8)
    kind, millis = record.timestamp()
    digest.update(f"{kind}:{millis}:".encode())
    for part in (record.key(), record.value()):
        digest.update(len(part or b"").to_bytes(8, "big") + (part or b""))
    return f"sw-{tag}-{record.partition()}-{record.offset()}-{digest.hexdigest()}"


def _entry_id(record: Any) -> str:
    return f"{record.partition()}:{record.offset()}"


class TopicConsumer:
    """One named member of ``settings.group`` on ``settings.stream``'s topic writing into
    ``repos``: :class:`sendwise.intake.streams.StreamConsumer`'s contract on Kafka."""

    def __init__(
        self,
        repos: Any,
        settings: StreamSettings,
        *,
        consumer: str,
        confirm: Callable[[str, str], str] | None = None,
        mail: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        from confluent_kafka import Consumer, Producer

        self.repos = repos
        self.settings = settings
        self.consumer = consumer[:200]
        self.confirm = confirm if mail is not None else None
        self.mail = mail
        self.topic = topic_name(settings.stream)
        self.dead_topic = topic_name(settings.dead_letter_stream())
        self.tag = stream_tag(self.topic)
        self.source = f"kafka:{self.topic}"[:200]
        common = kafka_config(settings)
        self.brokers = common["bootstrap.servers"]
        with settings_errors():
            self.kafka = Consumer(
                {
                    **common,
                    "group.id": settings.group,
                    "client.id": self.consumer,
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "auto.offset.reset": "earliest",
                    "session.timeout.ms": settings.claim_idle_ms,
                    "heartbeat.interval.ms": max(100, settings.claim_idle_ms // 3),
                    # a topic made after the consumer started is seen within 10 s, not 5 minutes
                    "topic.metadata.refresh.interval.ms": 10_000,
                }
            )
            self.producer = Producer({**common, "acks": "all", "linger.ms": 5})
        self.report = ConsumeReport()
        self._batch_start: dict[int, int] = {}
        self._committed: dict[int, int] = {}
        self._subscribed = False
        self._unread_since: float | None = None
        self._started = time.monotonic()
        self._last_report = self._started
        self._rates: deque[tuple[float, int]] = deque([(self._started, 0)])

    # -- one batch ---------------------------------------------------------------------------

    def take(self, records: Sequence[Any]) -> None:
        """Store one batch, dead-letter what cannot be stored, then commit its offsets."""
        if not records:
            return
        parsed = Parsed([], [], [])
        fields: dict[str, Fields] = {}
        by_entry: dict[str, Any] = {}
        self._batch_start = {}
        for record in records:
            entry_id = _entry_id(record)
            by_entry[entry_id] = record
            part, offset = record.partition(), record.offset()
            self._batch_start[part] = min(offset, self._batch_start.get(part, offset))
            value = record.value()
            key = record.key()
            fields[entry_id] = {FIELD: value or b"", **({b"key": key} if key else {})}
            if value is None:
                parsed.dead.append(
                    Dead(entry_id, "record: no value (a tombstone)", fields[entry_id])
                )
                continue
            try:
                row = parse_raw_call(
                    value,
                    received_at=_record_time(record),
                    made_id=made_id_of(self.tag, record),
                    source=self.source,
                )
            except IntakeError as exc:
                parsed.dead.append(Dead(entry_id, str(exc), fields[entry_id]))
                continue
            parsed.rows.append(row)
            parsed.row_ids.append(entry_id)
        new = store_batch(self.repos, parsed, fields, self.confirm, self.mail)
        self.report.read += len(records)
        self.report.stored += sum(new)
        self.report.duplicates += len(new) - sum(new)
        self.report.dead += len(parsed.dead)
        if parsed.dead:
            self._dead_letter(parsed.dead, by_entry)
        ends: dict[int, int] = {}
        for record in records:
            ends[record.partition()] = max(record.offset() + 1, ends.get(record.partition(), 0))
        self._commit(self._past_markers(ends))

    def _past_markers(self, ends: dict[int, int]) -> dict[int, int]:
        """``ends`` moved to the consumer's position where that is further: past the control
        records of transactions (never delivered, yet offsets), so that the group's lag can
        reach 0. The position covers only records delivered, all of them taken by now."""
        from confluent_kafka import KafkaException, TopicPartition

        try:
            where = self.kafka.position([TopicPartition(self.topic, p) for p in ends])
        except KafkaException:
            return ends
        for tp in where:
            if tp.error is None and tp.offset > ends.get(tp.partition, tp.offset):
                ends[tp.partition] = tp.offset
        return ends

    def _dead_letter(self, dead: list[Dead], records: Mapping[str, Any]) -> None:
        """Produce the dead letters and wait until Kafka has them all (before any commit).
        Each keeps its record's key, value (cut to ``DEAD_LETTER_BYTES``), headers and
        timestamp, with the reason and where it came from in headers of its own."""
        failed: list[str] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                failed.append(err.str())

        with kafka_errors(self.brokers):
            for d in dead:
                logger.warning("Kafka record %s dead-lettered: %s", d.entry_id, d.reason)
                record = records[d.entry_id]
                value = record.value()
                # the record's own headers first: readers take a name's last value (ours)
                headers: list[tuple[str, str | bytes | None]] = [
                    *(record.headers() or []),
                    ("reason", d.reason.encode("utf-8", "replace")),
                    ("entry", d.entry_id.encode()),
                    ("topic", self.topic.encode()),
                    ("consumer", self.consumer.encode("utf-8", "replace")),
                    ("timestamp", str(record.timestamp()[1]).encode()),
                ]
                if value is not None and len(value) > DEAD_LETTER_BYTES:
                    headers.append(("truncated", str(len(value)).encode()))
                    value = value[:DEAD_LETTER_BYTES]
                produce_when_room(
                    self.producer,
                    self.dead_topic,
                    value=value,
                    key=record.key(),
                    headers=headers,
                    on_delivery=delivered,
                    wait=DEAD_LETTER_WAIT,
                    what="dead letters",
                )
            left = self.producer.flush(DEAD_LETTER_WAIT)
        if left or failed:
            reason = failed[0] if failed else f"{left} not acknowledged in {DEAD_LETTER_WAIT:.0f} s"
            raise StreamError(f"dead letters not written to {self.dead_topic}: {reason}")

    def _commit(self, ends: Mapping[int, int]) -> None:
        """Commit ``ends`` (partition -> next offset) with this consumer's figures attached. A
        commit refused because the partitions went to another member is only logged: that
        member reads them again from the last commit and finds them already stored."""
        from confluent_kafka import KafkaException, TopicPartition

        if not ends:
            return
        stats = self._stats()
        offsets = [TopicPartition(self.topic, p, o, metadata=stats) for p, o in ends.items()]
        try:
            self.kafka.commit(offsets=offsets, asynchronous=False)
            self._committed.update(ends)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else exc
            if getattr(error, "fatal", lambda: False)():
                raise StreamError(said(self.brokers, error)) from None
            logger.warning(
                "offsets not committed (%s); the batch is stored, and whoever reads it again "
                "finds it already stored",
                error.str() if hasattr(error, "str") else error,
            )

    def _stats(self) -> str:
        now = time.monotonic()
        self._last_report = now
        self.report.seconds = now - self._started
        self._rates.append((now, self.report.read))
        while len(self._rates) > 2 and now - self._rates[1][0] >= RATE_WINDOW:
            self._rates.popleft()
        t0, n0 = self._rates[0]
        rate = (self.report.read - n0) / (now - t0) if now > t0 else 0.0
        figures = {**asdict(self.report), "rate": round(rate, 1), "at": time.time()}
        return json.dumps({"consumer": self.consumer, **figures})

    # -- reading -----------------------------------------------------------------------------

    def _subscribe(self) -> None:
        if self._subscribed:
            return
        with kafka_errors(self.brokers):
            self.kafka.list_topics(timeout=REACH_TIMEOUT)  # unreachable brokers: one line, at once
            self.kafka.subscribe([self.topic])
        self._subscribed = True

    def poll(self) -> int:
        """One round: up to ``batch`` records, stored, dead-lettered and committed."""
        self._subscribe()
        with kafka_errors(self.brokers):
            records = self.kafka.consume(
                num_messages=self.settings.batch, timeout=self.settings.block_ms / 1000
            )
        good = []
        for record in records:
            error = record.error()
            if error is None:
                good.append(record)
            elif error.fatal():
                raise StreamError(said(self.brokers, error))
            else:  # a topic not made yet, a rebalance under way: the client carries on
                logger.info("Kafka: %s", error.str())
        self.take(good)
        if not good and time.monotonic() - self._last_report >= HEARTBEAT:
            self._report_idle()
        return len(good)

    def _report_idle(self) -> None:
        """An idle consumer commits its partitions' last offsets again, with its figures."""
        from confluent_kafka import KafkaException

        try:
            mine = {tp.partition for tp in self.kafka.assignment()}
        except KafkaException:
            return
        # the partitions' positions too: a transaction's last marker moves them with no record
        ends = {p: self._committed.get(p, -1) for p in mine}
        self._commit({p: o for p, o in self._past_markers(ends).items() if o >= 0})
        self._restart_stalled(mine)
        self._last_report = time.monotonic()

    def _restart_stalled(self, mine: set[int]) -> None:
        """Fetch again the partitions that have records after this consumer's position and
        gave it none for a whole heartbeat: librdkafka may leave a partition's fetcher
        stopped when a commit was in flight during a rebalance (confluentinc/librdkafka
        #1605, #2933; seen here with two members, the first leaving). Seeking to the position
        (the next record not yet delivered) restarts it and skips or repeats nothing."""
        from confluent_kafka import KafkaException, TopicPartition

        try:
            parts = [TopicPartition(self.topic, p) for p in sorted(mine)]
            where = self.kafka.position(parts)
            last: dict[int, int] = {}
            if any(tp.offset < 0 for tp in where):  # nothing delivered since the assignment
                last = {tp.partition: tp.offset for tp in self.kafka.committed(parts, 10)}
            for tp in where:
                if tp.error is not None:
                    continue
                low, high = self.kafka.get_watermark_offsets(tp, timeout=REACH_TIMEOUT)
                at = tp.offset if tp.offset >= 0 else max(last.get(tp.partition, -1), low)
                if 0 <= at < high:
                    logger.info("Kafka partition %d stalled at %d of %d: fetching it again",
                                tp.partition, at, high)  # fmt: skip
                    self.kafka.seek(TopicPartition(self.topic, tp.partition, at))
        except KafkaException as exc:  # a rebalance under way: the next heartbeat looks again
            logger.info("Kafka: stalled partitions not checked: %s", exc)

    def rewind(self) -> None:
        """Read the last batch again (its store transaction failed): back to its first offsets
        in the partitions this consumer still has."""
        from confluent_kafka import KafkaException, TopicPartition

        for part, offset in self._batch_start.items():
            # no longer ours: its new owner starts at the last commit
            with contextlib.suppress(KafkaException):
                self.kafka.seek(TopicPartition(self.topic, part, offset))
        self._batch_start = {}

    def _idle(self) -> bool:
        """Whether the group has committed every record. Offsets that cannot be read while
        the group forms or rebalances (the brokers wait out a departed member's session) mean
        "not yet"; only after ``LAG_PATIENCE`` seconds of that are the brokers unreachable."""
        from confluent_kafka import KafkaException

        try:
            lag = topic_lag(self.kafka, self.topic)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else exc
            now = time.monotonic()
            self._unread_since = self._unread_since or now
            if getattr(error, "name", lambda: "")() not in UNREACHABLE or (
                now - self._unread_since > LAG_PATIENCE
            ):
                raise StreamError(said(self.brokers, error)) from None
            return False
        self._unread_since = None
        return lag == 0

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        until_idle: bool = False,
        on_progress: Callable[[ConsumeReport], None] | None = None,
        progress_seconds: float = 2.0,
    ) -> ConsumeReport:
        """Consume until ``stop`` is set (or, with ``until_idle``, until a read finds nothing
        and the group has committed every record of the topic). A store that refuses a whole
        batch is waited for (growing pauses up to 30 s) and the batch read again; brokers that
        cannot be reached end the run with a StreamError. The consumer leaves its group at
        the end, so its partitions go to the others at once."""
        stop = stop or threading.Event()
        try:
            run_rounds(
                self.poll,
                self._idle,
                self.rewind,
                self.report,
                self._started,
                stop=stop,
                until_idle=until_idle,
                on_progress=on_progress,
                progress_seconds=progress_seconds,
                max_backoff=MAX_BACKOFF,
            )
        finally:
            self.close()
        return self.report

    def close(self) -> None:
        """Leave the group (its partitions go to the others now) and let the producer go."""
        with contextlib.suppress(Exception):
            self.kafka.close()
        with contextlib.suppress(Exception):
            self.producer.flush(5)
