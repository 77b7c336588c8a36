"""Several processes sending one campaign (or journey) at once on PostgreSQL.

A claimed message is ``sending`` until its outcome is recorded. When one process sent a campaign
at a time, a ``sending`` row at the start of a run could only be a killed run's, and the run
claimed it again. With several senders it may be another live sender's message in flight, and
claiming it again sends it twice. So a sender holds a *run*: a session advisory lock on the
campaign, shared, on a connection of its own, for as long as it claims and records:

- on entry the run also tries the same lock exclusively (a session's own shared lock does not
  stand in its way): it gets it only when no other process is sending the campaign, and then
  every ``sending`` row is a dead sender's and goes back to ``pending`` (the killed-run recovery
  of before); the exclusive lock is released at once, the shared one kept;
- while a run is open, the process claims only ``pending`` rows, with ``FOR UPDATE SKIP
  LOCKED`` (see :meth:`SqlMessages.claim_due`), so two senders never claim the same row;
- a killed sender's connection closes, PostgreSQL drops its lock, and the next run that finds
  itself alone hands the killed sender's messages over (docs/adr/0170).

SQLite takes one writer at a time and keeps the one-sender-per-campaign rule: the run is a no-op
there and in the in-memory fake.
"""

from __future__ import annotations

import threading
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update

from sendwise.store.schema import message as message_table

if TYPE_CHECKING:
    from sendwise.store.connection import Store

RUN_LOCK = 0x53575255
"""First key ("SWRU") of the advisory locks of sending runs; the second is the campaign's."""


def run_key(campaign_id: str) -> int:
    """The campaign's advisory lock key: a signed 32-bit CRC of its id (a collision only makes
    two campaigns wait for each other's recovery, never share messages)."""
    value = zlib.crc32(campaign_id.encode("utf-8"))
    return value - (1 << 32) if value >= 1 << 31 else value


class SendingRuns:
    """The runs this process holds, by campaign (a store is shared by threads: counted)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def active(self, campaign_id: str) -> bool:
        """True while this process holds a run of the campaign (claims take only ``pending``)."""
        return self._open[campaign_id] > 0

    @contextmanager
    def run(self, campaign_id: str) -> Iterator[bool]:
        """Hold a sending run of ``campaign_id``; yields True when this run found no other
        sender and recovered a dead one's ``sending`` messages (always True on SQLite)."""
        if self.store.is_sqlite:
            yield True
            return
        key = run_key(campaign_id)
        conn = self.store.engine.connect()
        released = False
        try:
            conn.execute(select(func.pg_advisory_lock_shared(RUN_LOCK, key)))
            alone = bool(conn.execute(select(func.pg_try_advisory_lock(RUN_LOCK, key))).scalar())
            conn.commit()  # session locks outlive the transaction; no idle transaction held
            if alone:
                try:
                    self._recover(campaign_id)
                finally:
                    conn.execute(select(func.pg_advisory_unlock(RUN_LOCK, key)))
                    conn.commit()
            with self._lock:
                self._open[campaign_id] += 1
            try:
                yield alone
            finally:
                with self._lock:
                    self._open[campaign_id] -= 1
            conn.execute(select(func.pg_advisory_unlock_shared(RUN_LOCK, key)))
            conn.commit()
            released = True
        finally:
            if not released:  # closing the session is what surely drops its locks
                conn.invalidate()
            conn.close()

    def _recover(self, campaign_id: str) -> None:
        m = message_table.c
        with self.store.begin() as tx:
            tx.execute(
                update(message_table)
                .where(m.campaign_id == campaign_id, m.status == "sending")
                .values(status="pending")
            )
