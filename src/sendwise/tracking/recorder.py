"""Writing tracking events with group commit: many requests, one transaction every few ms.

Each request hands its event to :class:`EventRecorder`. Unsubscribes and webhooks wait until the
batch holding them is committed (an answer means stored; an ESP retries what was not answered);
opens and clicks wait too when ``tracking.wait_for_commit`` is on, and otherwise are answered at
once and written within a flush interval. A stop (SIGTERM, the end of the app's lifespan)
flushes whatever is queued before the process exits. Batching turns thousands of tiny
transactions per second into a few hundred larger ones (docs/adr/0041-tracking-writes.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from sendwise.store.connection import Store
from sendwise.store.records import add_events, record_consent, suppress
from sendwise.store.schema import message as message_table
from sendwise.tracking.machines import is_machine

logger = logging.getLogger(__name__)

RETRY_PAUSES = (0.05, 0.5)
MESSAGE_COLUMNS = ("customer_id", "email", "campaign_id", "variant")
# every row of one executemany must name the same columns
EMPTY = dict.fromkeys(
    ("customer_id", "email", "message_id", "campaign_id", "variant", "url", "user_agent", "reason")
)


def _messages(conn: Any, keys: Sequence[str]) -> dict[str, Any]:
    m = message_table.c
    found: dict[str, Any] = {}
    unique = sorted(set(keys))
    for start in range(0, len(unique), 500):
        chunk = unique[start : start + 500]
        query = select(
            m.message_key, m.customer_id, m.email, m.campaign_id, m.variant, m.status, m.updated_at
        ).where(m.message_key.in_(chunk))
        found.update({row.message_key: row for row in conn.execute(query)})
    return found


def write_events(store: Store, pending: Sequence[Mapping[str, Any]]) -> int:
    """Complete each event from its message (customer, campaign, variant), flag machines and
    insert them in one transaction (duplicates by event_id skipped); then apply unsubscribes
    (suppression + withdrawn consent) and the suppressions webhooks ask for."""
    rows: list[dict[str, Any]] = []
    suppressions: list[tuple[str, str, str | None, Any]] = []
    with store.begin() as conn:
        known = _messages(conn, [e["message_id"] for e in pending if e.get("message_id")])
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
                suppressions.append((row["email"], reason, row.get("customer_id"), row))
            rows.append(row)
        add_events(conn, store, rows)
    for email, reason, customer_id, row in suppressions:
        suppress(store, email, reason, source=row["type"], customer_id=customer_id)
        if reason == "unsubscribe" and customer_id:
            record_consent(
                store,
                customer_id,
                "withdrawn",
                email=email,
                source="unsubscribe_link",
                at=row["occurred_at"],
            )
    return len(rows)


class EventRecorder:
    """Queue + flusher task; :meth:`record` returns once the event is committed."""

    def __init__(self, store: Store, *, flush_seconds: float = 0.004, max_batch: int = 2000):
        self.store = store
        self.flush_seconds = flush_seconds
        self.max_batch = max_batch
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def record(self, event: dict[str, Any], *, wait: bool = True) -> None:
        """Queue ``event``; with ``wait`` return once it is committed, otherwise at once (it is
        written within a flush interval, and on shutdown at the latest)."""
        if self._task is None or self._closing:
            await asyncio.to_thread(write_events, self.store, [event])
            return
        done = asyncio.get_running_loop().create_future()
        self._pending.append((event, done))
        self._wake.set()
        if wait:
            await done

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
            try:
                self.written += await self._write([e for e, _ in batch])
            except Exception as exc:  # every waiting request answers with the error
                logger.error(
                    "%d tracking events not written: %s", len(batch), exc.__class__.__name__
                )
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                        done.exception()  # retrieved: no "never retrieved" warning if nobody waits
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

    async def _write(self, events: list[dict[str, Any]]) -> int:
        """One batch, retried twice after a short pause (a busy or restarting database)."""
        for pause in RETRY_PAUSES:
            try:
                return await asyncio.to_thread(write_events, self.store, events)
            except Exception:
                logger.warning("tracking batch of %d not written; retrying", len(events))
                await asyncio.sleep(pause)
        return await asyncio.to_thread(write_events, self.store, events)

    async def stop(self) -> None:
        """Write everything queued, then end the flusher."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._flush()
