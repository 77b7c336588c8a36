"""Writing tracking events with group commit: many requests, one transaction every few ms.

Each request hands its event to :class:`EventRecorder`. Unsubscribes and webhooks wait until the
batch holding them is committed (an answer means stored; an ESP retries what was not answered);
opens and clicks wait too when ``tracking.wait_for_commit`` is on, and otherwise are answered at
once and written within a flush interval. A stop (SIGTERM, the end of the app's lifespan)
flushes whatever is queued before the process exits. Batching turns thousands of tiny
transactions per second into a few hundred larger ones (docs/adr/0041-tracking-writes.md).
The writer holds no SQL: it writes each batch with ``events.record_batch``, which reads the
batch's messages and writes what the writer builds from them in one transaction
(docs/adr/0087), so it runs on any store, the fake included.

One event the store refuses must not cost the others of its batch (docs/adr/0056): when a
batch fails while the store answers, it is split in halves until every event that can be
written is, and each one that cannot goes to the :class:`Quarantine` file with its reason. When
the store does not answer, the batch is retried, then quarantined whole. A request waiting for
an event that was quarantined gets an error (503: an ESP retries it); an open already answered
is in the file, never silently lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sendwise.errors import StoreError
from sendwise.store.repositories import (
    EventBatch,
    MessageInfo,
    Repositories,
    SuppressionChange,
)
from sendwise.tracking.machines import is_machine
from sendwise.tracking.quarantine import Quarantine, reason_of

logger = logging.getLogger(__name__)

RETRY_PAUSES = (0.05, 0.5)
MESSAGE_COLUMNS = ("customer_id", "email", "campaign_id", "variant")
# every row of one executemany must name the same columns
EMPTY = dict.fromkeys(
    ("customer_id", "email", "message_id", "campaign_id", "variant", "url", "user_agent", "reason")
)


def write_events(store: Repositories, pending: Sequence[Mapping[str, Any]]) -> int:
    """Complete each event from its message (customer, campaign, variant), flag machines, and
    write the batch through the events repository in one transaction: the events (duplicates
    by event_id skipped), the unsubscribes (suppression + withdrawn consent) and the
    suppressions webhooks ask for."""

    def build(known: Mapping[str, MessageInfo]) -> EventBatch:
        rows: list[dict[str, Any]] = []
        suppressions: list[SuppressionChange] = []
        for event in pending:
            row = {**EMPTY, **{k: v for k, v in event.items() if not k.startswith("_")}}
            msg = known.get(row.get("message_id") or "")
            if msg is not None:
                for col in MESSAGE_COLUMNS:
                    row[col] = row.get(col) or getattr(msg, col)
            if row["type"] in ("open", "click") and not row.get("is_machine"):
                sent_at = msg.updated_at if msg is not None and msg.status == "sent" else None
                row["is_machine"] = is_machine(
                    row.get("user_agent"),
                    event.get("_ip"),
                    occurred_at=row["occurred_at"],
                    sent_at=sent_at,
                )
            reason = event.get("_suppress")
            if reason and row.get("email"):
                suppressions.append(
                    SuppressionChange(
                        email=row["email"],
                        reason=reason,
                        source=row["type"],
                        customer_id=row.get("customer_id"),
                        at=row["occurred_at"],
                    )
                )
            rows.append(row)
        return rows, suppressions

    store.events.record_batch([e["message_id"] for e in pending if e.get("message_id")], build)
    return len(pending)


class StoreUnavailable(StoreError):
    """The store did not answer (not one event's fault): the batch is retried, then kept."""


def _reachable(store: Repositories) -> bool:
    return store.ping()


def write_or_report(store: Repositories, events: Sequence[Mapping[str, Any]]) -> list[str | None]:
    """Write ``events``; for each, None when it is stored, else the reason the store refused it.

    One transaction for the whole batch when it succeeds (the common case). When it fails and
    the store answers, the batch is split in halves, recursively, so every event that can be
    written is, at a cost of about 2 log2(n) transactions per refused event. Raises
    StoreUnavailable when the store does not answer at all."""
    try:
        write_events(store, events)
        return [None] * len(events)
    except Exception as exc:
        if not _reachable(store):
            raise StoreUnavailable(f"store unavailable ({reason_of(exc)})") from exc
    reasons: list[str | None] = [None] * len(events)
    _split(store, events, list(range(len(events))), reasons)
    return reasons


def _split(
    store: Repositories,
    events: Sequence[Mapping[str, Any]],
    part: list[int],
    reasons: list[str | None],
) -> None:
    """``part`` failed as a whole: write its halves, and split again the half that fails."""
    if len(part) == 1:
        try:
            write_events(store, [events[part[0]]])
        except Exception as exc:
            if not _reachable(store):
                raise StoreUnavailable(f"store unavailable ({reason_of(exc)})") from exc
            reasons[part[0]] = reason_of(exc)
        return
    mid = len(part) // 2
    for half in (part[:mid], part[mid:]):
        try:
            write_events(store, [events[i] for i in half])
        except Exception:
            _split(store, events, half, reasons)


Waiter = asyncio.Future[None] | None


class EventRecorder:
    """Queue + flusher task; :meth:`record` returns once the event is committed (or kept in the
    quarantine, for an event nobody waits for)."""

    def __init__(
        self,
        store: Repositories,
        *,
        flush_seconds: float = 0.004,
        max_batch: int = 2000,
        quarantine: Quarantine | None = None,
    ):
        self.store = store
        self.flush_seconds = flush_seconds
        self.max_batch = max_batch
        self.quarantine = quarantine or Quarantine(None)
        self._pending: list[tuple[dict[str, Any], Waiter]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def record(self, event: dict[str, Any], *, wait: bool = True) -> None:
        """Queue ``event``; with ``wait`` return once it is committed (StoreError when it could
        not be: it is then in the quarantine), otherwise at once (it is written within a flush
        interval, and on shutdown at the latest; or quarantined)."""
        done = asyncio.get_running_loop().create_future() if wait else None
        if self._task is None or self._closing:
            await self._settle([(event, done)])
        else:
            self._pending.append((event, done))
            self._wake.set()
        if done is not None:
            await done

    async def reject(self, items: Sequence[tuple[Any, str]]) -> None:
        """Keep events that failed validation on the way in (webhooks) in the quarantine,
        durably, before the request is answered."""
        if items:
            await asyncio.to_thread(self.quarantine.add, items, kind="invalid")

    async def _run(self) -> None:
        while not (self._closing and not self._pending):
            await self._wake.wait()
            await asyncio.sleep(self.flush_seconds)  # let a batch gather
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = (
                self._pending[: self.max_batch],
                self._pending[self.max_batch :],
            )
            await self._settle(batch)

    async def _settle(self, batch: list[tuple[dict[str, Any], Waiter]]) -> None:
        """Write one batch; quarantine what cannot be written; answer the waiting requests."""
        events = [e for e, _ in batch]
        try:
            reasons = await self._write(events)
        except Exception as exc:  # the store does not answer: keep everything, fail the waiters
            down = reason_of(exc)
            logger.error("%d tracking events not written: %s", len(batch), down)
            reasons = [down] * len(batch)
        refused = [(e, r) for e, r in zip(events, reasons, strict=True) if r is not None]
        if refused:
            try:
                await asyncio.to_thread(self.quarantine.add, refused, kind="write")
            except OSError as exc:
                logger.error("%d tracking events lost: quarantine failed: %s", len(refused), exc)
        self.written += len(batch) - len(refused)
        for (_, done), refusal in zip(batch, reasons, strict=True):
            if done is None or done.done():
                continue
            if refusal is None:
                done.set_result(None)
            else:
                done.set_exception(StoreError("tracking event not stored (kept in quarantine)"))

    async def _write(self, events: list[dict[str, Any]]) -> list[str | None]:
        """One batch; retried twice after a short pause while the store does not answer (a busy
        or restarting database). One refused event does not fail the others."""
        for pause in RETRY_PAUSES:
            try:
                return await asyncio.to_thread(write_or_report, self.store, events)
            except StoreUnavailable:
                logger.warning("tracking batch of %d not written; retrying", len(events))
                await asyncio.sleep(pause)
        return await asyncio.to_thread(write_or_report, self.store, events)

    async def stop(self) -> None:
        """Write everything queued, then end the flusher."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._flush()
