"""Group commit for the event log: many requests, one transaction, an answer after the commit.

Each request hands its rows to :meth:`IntakeWriter.write` and waits. One flusher task commits
whatever requests are waiting in one ``repos.intake.append`` call (one transaction) and then
wakes them; while a commit runs, the next requests gather, so the batch grows with the load and
an idle service commits at once (no fixed delay). A request is therefore answered 2xx only once
its rows are durably stored: a crash at any point loses nothing that was acknowledged, and what
was not acknowledged the client sends again (its messageId makes the retry harmless).

Anonymous calls get the customer their anonymous id was linked to (:func:`resolve`); the
consent an identify call carries is recorded in the store's ledger right after the commit
(sendwise.intake.consent). Under double opt-in a new consent is recorded ``pending`` before the
answer, and its confirmation email is mailed right after the answer (``mail``).

When the combined transaction fails, each request's rows are tried again on their own, so one
request the store refuses does not fail the others; a request whose rows cannot be stored gets a
:class:`StoreError` (503: Segment's clients retry it).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sendwise.errors import StoreError
from sendwise.intake.consent import Confirmation, record_consents
from sendwise.store.repositories import LINKING

logger = logging.getLogger(__name__)

Pending = tuple[list[dict[str, Any]], asyncio.Future[list[bool]]]


def resolve(repos: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Give anonymous rows (no userId) the customer their anonymous id was linked to by an
    identify or alias call, stored earlier or in this group (the first link wins, as in the
    warehouse's identity resolution), so that the live profile sees them at once."""
    anonymous = {r["anonymous_id"] for r in rows if r["anonymous_id"] and not r["user_id"]}
    if not anonymous:
        return
    linked = repos.intake.links(sorted(anonymous))
    for row in rows:
        if row["type"] in LINKING and row["user_id"] and row["anonymous_id"] in anonymous:
            linked.setdefault(row["anonymous_id"], row["user_id"])
    for row in rows:
        if not row["user_id"] and row["anonymous_id"] in linked:
            row["customer_id"] = linked[row["anonymous_id"]]


def append_unique(
    repos: Any,
    rows: Sequence[dict[str, Any]],
    *,
    confirm: Callable[[str, str], str] | None = None,
    sent: list[Confirmation] | None = None,
) -> list[bool]:
    """``repos.intake.append`` of a group's rows, which may repeat a messageId among themselves
    (two requests of one group): the repository writes the first and answers "not new" for the
    later ones, as for one stored before."""
    resolve(repos, rows)
    stored = repos.intake.append(rows) if rows else []
    # The consent an identify carries is part of what a 2xx promises: when recording it fails,
    # the request fails (the client sends it again). Every identify of the group is recorded,
    # the repeats too, so a retry of a call whose event was stored but whose consent was not
    # records it then; recording the status already in force adds nothing.
    record_consents(repos, rows, confirm=confirm, sent=sent)
    return stored


class IntakeWriter:
    """Queue + one flusher task; :meth:`write` returns once the rows are committed."""

    def __init__(
        self,
        repos: Any,
        *,
        max_rows: int = 5_000,
        flush_seconds: float = 0.0,
        confirm: Callable[[str, str], str] | None = None,
        mail: Callable[[list[Confirmation]], Awaitable[int]] | None = None,
    ):
        """``confirm`` and ``mail``: double opt-in (sendwise.privacy.ledger.confirmer and
        send_confirmations); without them a consent is recorded as given."""
        self.repos = repos
        self.confirm = confirm if mail is not None else None
        self.mail = mail
        self.max_rows = max_rows
        self.flush_seconds = flush_seconds
        self._pending: deque[Pending] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.written = 0
        self.commits = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def write(self, rows: list[dict[str, Any]]) -> list[bool]:
        """Store ``rows`` (one request's, all or none); per row, whether it was new."""
        if not rows:
            return []
        done: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        if self._task is None or self._closing:
            await self._commit([(rows, done)])
        else:
            self._pending.append((rows, done))
            self._wake.set()
        return await done

    async def _run(self) -> None:
        while not (self._closing and not self._pending):
            await self._wake.wait()
            self._wake.clear()
            if self.flush_seconds:
                await asyncio.sleep(self.flush_seconds)
            await self._flush()

    async def _flush(self) -> None:
        while self._pending:
            group: list[Pending] = []
            size = 0
            while self._pending and (not group or size + len(self._pending[0][0]) <= self.max_rows):
                item = self._pending.popleft()
                group.append(item)
                size += len(item[0])
            await self._commit(group)

    async def _commit(self, group: list[Pending]) -> None:
        rows = [row for rows, _ in group for row in rows]
        sent: list[Confirmation] = []
        try:
            new = await asyncio.to_thread(
                append_unique, self.repos, rows, confirm=self.confirm, sent=sent
            )
        except Exception as exc:
            if len(group) == 1:
                self._fail(group[0][1], exc)
                return
            logger.warning("intake group of %d requests not written; one by one", len(group))
            for item in group:
                await self._commit([item])
            return
        self.commits += 1
        self.written += sum(new)
        start = 0
        for part, done in group:
            if not done.done():
                done.set_result(new[start : start + len(part)])
            start += len(part)
        if sent and self.mail is not None:  # after the answers: the consents are recorded
            await self.mail(sent)

    def _fail(self, done: asyncio.Future[list[bool]], exc: Exception) -> None:
        logger.error("intake request not stored: %s: %s", exc.__class__.__name__, exc)
        if not done.done():
            done.set_exception(StoreError("events not stored; send them again"))

    async def stop(self) -> None:
        """Commit everything queued, then end the flusher."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._flush()
