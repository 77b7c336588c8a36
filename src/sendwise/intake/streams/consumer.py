"""A consumer of a Redis stream's consumer group that feeds the event log, at least once, and
(by messageId) effectively exactly once. docs/streaming.md, docs/adr/0160.

Each round takes a batch of entries: first the ones this consumer was given and never
acknowledged (after a restart or a failed commit), then the ones other consumers left idle for
``claim_idle_ms`` (XAUTOCLAIM: their consumer is taken for dead), then new ones (XREADGROUP
``>``). A batch goes through the HTTP intake's own path: each entry checked and parsed
(sendwise.intake.streams.entries), the rows appended with
:func:`sendwise.intake.writer.append_unique` in one store transaction (identity resolution,
consent), and only after that commit are the entries acknowledged. An entry that cannot be
stored is added to the dead-letter stream with its reason in the same Redis transaction
(MULTI/EXEC) that acknowledges it, so it neither blocks the stream nor disappears.

A consumer killed anywhere loses nothing: what it had not acknowledged another consumer claims
and stores again, and the messageIds already stored are answered "not new" by the store.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sendwise.config import StreamSettings
from sendwise.intake.streams.batch import run_rounds, store_batch
from sendwise.intake.streams.connect import ensure_group, redis_errors
from sendwise.intake.streams.entries import Dead, Fields, parse_entries, stream_tag

logger = logging.getLogger(__name__)

STATS_PREFIX = "sendwise:intake-stats"
RATE_WINDOW = 10.0
"""Seconds over which a consumer's throughput is measured for `sendwise status`."""
HEARTBEAT = 5.0
"""An idle consumer still reports its figures this often (its rate falling to 0), so that
`sendwise status` tells an idle consumer from a stopped one."""
MAX_BACKOFF = 30.0

Entries = list[tuple[str, Fields | None]]


def stats_key(stream: str, group: str) -> str:
    """The Redis hash where each consumer of ``group`` on ``stream`` reports its figures."""
    return f"{STATS_PREFIX}:{stream}:{group}"


@dataclass
class ConsumeReport:
    read: int = 0
    """Entries taken (new ones, this consumer's own pending ones, and claimed ones)."""
    stored: int = 0
    """Events new to the event log."""
    duplicates: int = 0
    """Events whose messageId the event log already held (a redelivery or a producer retry)."""
    dead: int = 0
    """Entries sent to the dead-letter stream with their reason."""
    claimed: int = 0
    """Entries taken over from consumers that left them idle (XAUTOCLAIM)."""
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Entries a second since the consumer started."""
        return self.read / self.seconds if self.seconds > 0 else 0.0


def _decode(entries: Sequence[Any]) -> Entries:
    return [(i.decode() if isinstance(i, bytes) else str(i), f) for i, f in entries]


class StreamConsumer:
    """One named consumer of ``settings.group`` on ``settings.stream`` writing into ``repos``."""

    def __init__(
        self,
        redis: Any,
        repos: Any,
        settings: StreamSettings,
        *,
        consumer: str,
        confirm: Callable[[str, str], str] | None = None,
        mail: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        """``confirm`` and ``mail``: double opt-in for the consents of identify calls, as the
        HTTP intake (sendwise.intake.consent); without them a consent is recorded as given."""
        self.confirm = confirm if mail is not None else None
        self.mail = mail
        self.redis = redis
        self.repos = repos
        self.settings = settings
        self.consumer = consumer
        self.stream = settings.stream
        self.group = settings.group
        self.tag = stream_tag(settings.stream)
        self.source = f"stream:{settings.stream}"[:200]
        self.report = ConsumeReport()
        self._own_pending = True
        self._claim_cursor = "0-0"
        self._last_claim = float("-inf")
        self._started = time.monotonic()
        self._rates: deque[tuple[float, int]] = deque([(self._started, 0)])

    # -- one batch ---------------------------------------------------------------------------

    def take(self, entries: Entries) -> None:
        """Store one batch, then dead-letter what cannot be stored and acknowledge it all."""
        if not entries:
            return
        parsed = parse_entries(entries, tag=self.tag, source=self.source)
        dead = parsed.dead
        new = store_batch(self.repos, parsed, dict(entries), self.confirm, self.mail)
        self.report.read += len(entries)
        self.report.stored += sum(new)
        self.report.duplicates += len(new) - sum(new)
        self.report.dead += len(dead)
        for d in dead:
            logger.warning("stream entry %s dead-lettered: %s", d.entry_id, d.reason)
        with redis_errors(self.redis):
            pipe = self.redis.pipeline(transaction=True)
            for d in dead:
                pipe.xadd(self.settings.dead_letter_stream(), self._dead_fields(d))
            pipe.xack(self.stream, self.group, *[entry_id for entry_id, _ in entries])
            pipe.hset(stats_key(self.stream, self.group), self.consumer, self._stats())
            pipe.execute()

    def _dead_fields(self, d: Dead) -> dict[bytes, bytes]:
        meta = {
            b"reason": d.reason.encode("utf-8", "replace"),
            b"entry": d.entry_id.encode(),
            b"stream": self.stream.encode("utf-8", "replace"),
            b"consumer": self.consumer.encode("utf-8", "replace"),
        }
        return {**meta, **{b"field:" + k: v for k, v in d.fields.items()}}

    def _stats(self) -> str:
        now = time.monotonic()
        self.report.seconds = now - self._started
        self._rates.append((now, self.report.read))
        while len(self._rates) > 2 and now - self._rates[1][0] >= RATE_WINDOW:
            self._rates.popleft()
        t0, n0 = self._rates[0]
        rate = (self.report.read - n0) / (now - t0) if now > t0 else 0.0
        return json.dumps({**asdict(self.report), "rate": round(rate, 1), "at": time.time()})

    # -- reading -----------------------------------------------------------------------------

    def _read(self, last_id: str, block: int | None) -> Entries:
        with redis_errors(self.redis):
            answer = self.redis.xreadgroup(
                self.group,
                self.consumer,
                {self.stream: last_id},
                count=self.settings.batch,
                block=block,
            )
        return _decode(answer[0][1]) if answer else []

    def _claim(self) -> Entries:
        with redis_errors(self.redis):
            answer = self.redis.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=self.settings.claim_idle_ms,
                start_id=self._claim_cursor,
                count=self.settings.batch,
            )
        cursor = answer[0]
        self._claim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        if len(answer) > 2 and answer[2]:
            logger.warning("%d pending entries were deleted from the stream", len(answer[2]))
        return _decode(answer[1])

    def poll(self) -> int:
        """One round (see the module's docstring); how many entries it took."""
        if self._own_pending:
            entries = self._read("0", None)
            if entries:
                self.take(entries)
                return len(entries)
            self._own_pending = False
        every = min(self.settings.claim_idle_ms / 2000, 5.0)
        if time.monotonic() - self._last_claim >= every or self._claim_cursor != "0-0":
            self._last_claim = time.monotonic()
            entries = self._claim()
            if entries:
                self.report.claimed += len(entries)
                self.take(entries)
                return len(entries)
        entries = self._read(">", self.settings.block_ms)
        self.take(entries)
        if not entries and time.monotonic() - self._rates[-1][0] >= HEARTBEAT:
            with redis_errors(self.redis):
                self.redis.hset(stats_key(self.stream, self.group), self.consumer, self._stats())
        return len(entries)

    def pending(self) -> int:
        """Entries of the group delivered and not acknowledged (by any consumer)."""
        with redis_errors(self.redis):
            return int(self.redis.xpending(self.stream, self.group)["pending"])

    def run(
        self,
        *,
        stop: threading.Event | None = None,
        until_idle: bool = False,
        on_progress: Callable[[ConsumeReport], None] | None = None,
        progress_seconds: float = 2.0,
    ) -> ConsumeReport:
        """Consume until ``stop`` is set (or, with ``until_idle``, until a read finds nothing
        new and the group has nothing pending). A store that refuses a whole batch is waited
        for (growing pauses up to 30 s); the batch is taken again from this consumer's own
        pending entries. A Redis that cannot be reached ends the run with a StreamError."""
        stop = stop or threading.Event()
        with redis_errors(self.redis):
            ensure_group(self.redis, self.stream, self.group)

        def again() -> None:
            self._own_pending = True  # the refused batch is this consumer's pending entries

        run_rounds(
            self.poll,
            lambda: self.pending() == 0,
            again,
            self.report,
            self._started,
            stop=stop,
            until_idle=until_idle,
            on_progress=on_progress,
            progress_seconds=progress_seconds,
            max_backoff=MAX_BACKOFF,
        )
        return self.report
