"""Streaming intake from a Kafka topic: a consumer group member with the Redis consumer's
contract (sendwise.intake.streams.consumer), through confluent-kafka (librdkafka).
docs/streaming.md ("Kafka"), docs/adr/0161.

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
messageId gets ``sw-<topic tag>-<partition>-<offset>``, its ``receivedAt`` is the record's
timestamp: both the same on every delivery.

The consumer's figures for `sendwise status` travel in the metadata of its offset commits, so
status needs nothing but the brokers (no stats topic, no store).
"""

from __future__ import annotations

import contextlib
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
    kafka_config,
    kafka_errors,
    said,
    topic_name,
)
from sendwise.intake.streams.kafka_status import topic_lag

logger = logging.getLogger(__name__)
DEAD_LETTER_WAIT = 30.0


def _record_time(record: Any) -> datetime:
    """The naive-UTC time of a record (the producer's or the broker's timestamp)."""
    from confluent_kafka import TIMESTAMP_NOT_AVAILABLE

    kind, millis = record.timestamp()
    if kind == TIMESTAMP_NOT_AVAILABLE or millis is None or millis < 0:
        return datetime.now(UTC).replace(tzinfo=None)
    return datetime.fromtimestamp(millis / 1000, UTC).replace(tzinfo=None)


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
        self._batch_start = {}
        for record in records:
            entry_id = _entry_id(record)
            part, offset = record.partition(), record.offset()
            self._batch_start[part] = min(offset, self._batch_start.get(part, offset))
            value = record.value()
            key = record.key()
            fields[entry_id] = {FIELD: value or b"", **({b"key": key} if key else {})}
            if value is None:
                parsed.dead.append(Dead(entry_id, "record: no value (a tombstone)", {}))
                continue
            try:
                row = parse_raw_call(
                    value,
                    received_at=_record_time(record),
                    made_id=f"sw-{self.tag}-{part}-{offset}",
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
            self._dead_letter(parsed.dead)
        ends: dict[int, int] = {}
        for record in records:
            ends[record.partition()] = max(record.offset() + 1, ends.get(record.partition(), 0))
        self._commit(ends)

    def _dead_letter(self, dead: list[Dead]) -> None:
        """Produce the dead letters and wait until Kafka has them all (before any commit)."""
        failed: list[str] = []

        def delivered(err: Any, _msg: Any) -> None:
            if err is not None:
                failed.append(err.str())

        with kafka_errors(self.brokers):
            for d in dead:
                logger.warning("Kafka record %s dead-lettered: %s", d.entry_id, d.reason)
                headers: list[tuple[str, str | bytes | None]] = [
                    ("reason", d.reason.encode("utf-8", "replace")),
                    ("entry", d.entry_id.encode()),
                    ("topic", self.topic.encode()),
                    ("consumer", self.consumer.encode("utf-8", "replace")),
                ]
                self.producer.produce(
                    self.dead_topic,
                    value=d.fields.get(FIELD),
                    key=d.fields.get(b"key"),
                    headers=headers,
                    on_delivery=delivered,
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
        self._commit({p: o for p, o in self._committed.items() if p in mine})
        self._last_report = time.monotonic()

    def rewind(self) -> None:
        """Read the last batch again (its store transaction failed): back to its first offsets
        in the partitions this consumer still has."""
        from confluent_kafka import KafkaException, TopicPartition

        for part, offset in self._batch_start.items():
            # no longer ours: its new owner starts at the last commit
            with contextlib.suppress(KafkaException):
                self.kafka.seek(TopicPartition(self.topic, part, offset))
        self._batch_start = {}

    def lag(self) -> int | None:
        """Records of the topic the group has not committed yet (all its members)."""
        with kafka_errors(self.brokers):
            return topic_lag(self.kafka, self.topic)

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
                lambda: self.lag() == 0,
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
