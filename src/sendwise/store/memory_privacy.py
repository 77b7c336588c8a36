"""The in-memory fake of the store's privacy repository (sendwise.store.sql_privacy): the
tombstone list, the audit log, frequency choices and the send policy's privacy facts (erased
people, the policy's topic, frequency choices), so that the fake skips the same messages for
the same reasons as SQLite and PostgreSQL (tests/test_store_contract.py). Finding and erasing
one person's rows in every table is SQL-only (it reflects the real tables)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sendwise.errors import InputError
from sendwise.store.claims import Claimed, Facts, consent_by_message
from sendwise.store.sql_privacy import FREQUENCIES

if TYPE_CHECKING:
    from sendwise.store.memory import MemoryStore


class MemoryPrivacy:
    def __init__(self, db: MemoryStore) -> None:
        self.db = db
        self.hashes: dict[str, str] = {}
        self.log: list[dict[str, Any]] = []
        self.chosen: dict[str, str] = {}

    # -- tombstones --------------------------------------------------------------------------
    def add_tombstones(self, rows: Sequence[tuple[str, str]], at: datetime) -> int:
        before = len(self.hashes)
        for digest, kind in rows:
            self.hashes.setdefault(digest, kind)
        return len(self.hashes) - before

    def tombstones(self) -> set[str]:
        return set(self.hashes)

    def tombstoned(self, conn: Any, hashes: Any) -> set[str]:
        return {h for h in hashes if h in self.hashes}

    def erased_keys(self, conn: Any, policy: Any, batch: Sequence[Claimed]) -> set[str]:
        hashes_of = getattr(policy, "identity_hashes", None)
        by_key: dict[str, list[str]] = hashes_of(batch) if hashes_of is not None else {}
        return {k for k, hs in by_key.items() if self.hashes.keys() & set(hs)}

    # -- audit -------------------------------------------------------------------------------
    def audit(
        self, request_id: str, action: str, subjects: int, by: str, at: datetime, detail: dict
    ) -> None:
        self.log.append(dict(id=len(self.log) + 1, request_id=request_id, action=action,
                             subjects=subjects, requested_by=by, at=at, detail=detail))  # fmt: skip

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        return [dict(r) for r in reversed(self.log)][:limit]

    # -- preferences -------------------------------------------------------------------------
    def set_frequency(self, customer_id: str, frequency: str, at: datetime) -> None:
        if frequency not in FREQUENCIES:
            raise InputError(f"frequency must be one of {tuple(FREQUENCIES)}")
        self.chosen[customer_id] = frequency

    def frequencies(self, conn: Any, customer_ids: Sequence[str]) -> dict[str, str]:
        return {c: self.chosen[c] for c in set(customer_ids) if c in self.chosen}

    def frequency_of(self, customer_id: str) -> str:
        return self.chosen.get(customer_id, "any")

    # -- the send policy's facts -----------------------------------------------------------
    def fill_facts(
        self, conn: Any, policy: Any, batch: Sequence[Claimed], now: datetime, facts: Facts
    ) -> None:
        """As SqlPrivacy.fill_facts: erased people, the topic's consent, frequency choices."""
        facts.erased = self.erased_keys(conn, policy, batch)
        topic = getattr(policy, "topic", None)
        if topic:
            changes = self.db.consents.all(policy.channel, f"topic:{topic}")
            facts.topic = consent_by_message(batch, changes)
        chosen = self.frequencies(conn, [m.customer_id for m in batch])
        limited = {c: FREQUENCIES[f] for c, f in chosen.items() if FREQUENCIES.get(f)}
        last: dict[str, datetime] = {}
        for e in self.db.events.stored:
            c = e.get("customer_id")
            if e["type"] == "send" and c in limited and e["occurred_at"] is not None:
                last[c] = max(last.get(c, e["occurred_at"]), e["occurred_at"])
        for msg in batch:
            days = limited.get(msg.customer_id)
            sent = last.get(msg.customer_id)
            if days and sent is not None and sent > now - timedelta(days=days):
                word = "week" if days == 7 else "month"
                facts.too_frequent[msg.message_key] = f"preference: at most one email a {word}"
