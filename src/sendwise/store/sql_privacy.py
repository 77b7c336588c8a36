"""The store's side of privacy: the tombstone list, the audit log, frequency choices, the send
policy's privacy facts, and one person's rows in every table (to export or to erase).

Erasure and export reflect the tables the database really holds, so a table added by a later
migration is covered as soon as it names people the usual way: a ``customer_id`` or
``user_id`` column (the customer ids), ``email`` (the addresses), ``anonymous_id`` (the
anonymous ids linked to them), ``message_id`` / ``message_key`` (their messages, in a table
without a customer id). Tables without such a column but with text or JSON columns
(the webhook outbox's bodies, campaign definitions) are scanned for the identifiers as tokens.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Connection, MetaData, String, Table, Text, delete, func, select
from sqlalchemy.exc import SAWarning

from sendwise.errors import InputError
from sendwise.store.claims import Claimed, Facts, consent_by_message
from sendwise.store.schema import email_event, preference, privacy_audit, privacy_tombstone

if TYPE_CHECKING:
    from sendwise.store.connection import Store

CHUNK = 500
WIDE = 5000
"""Values per IN list when finding a person's rows (few scans of a table without an index)."""
PRIVATE = ("privacy_tombstone", "privacy_audit", "alembic_version")
"""Tables erasure never touches (the list itself, the audit log without personal data)."""
FREQUENCIES = {"any": None, "weekly": 7, "monthly": 30}
"""A frequency choice -> at most one email in this many days."""
TOKEN = re.compile(r"[\w.%+@-]+")


def _chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def tokens(text: object) -> set[str]:
    """Words of a text or JSON value as identifiers appear in them (lower case)."""
    if text is None:
        return set()
    raw = text if isinstance(text, str) else json.dumps(text, default=str)
    return {t.lower() for t in TOKEN.findall(raw)}


class People:
    """The identifiers of the people one request names."""

    def __init__(self, customer_ids: Iterable[str], emails: Iterable[str]) -> None:
        self.customer_ids = sorted({str(c) for c in customer_ids if c})
        self.emails = sorted({e.strip().lower() for e in emails if e and e.strip()})
        self.anonymous_ids: list[str] = []
        self.message_keys: list[str] = []

    def words(self) -> set[str]:
        return {w.lower() for w in (*self.customer_ids, *self.emails, *self.anonymous_ids)}


class SqlPrivacy:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- tombstones --------------------------------------------------------------------------
    def add_tombstones(self, rows: Sequence[tuple[str, str]], at: datetime) -> int:
        """(hash, kind) pairs onto the list; returns how many were new."""
        t = privacy_tombstone
        with self.store.begin() as conn:
            before = conn.execute(select(func.count()).select_from(t)).scalar_one()
            for part in _chunks(list(rows), 5000):
                conn.execute(
                    self.store.insert_ignore(t),
                    [{"hash": h, "kind": k, "created_at": at} for h, k in part],
                )
            return int(conn.execute(select(func.count()).select_from(t)).scalar_one() - before)

    def tombstones(self) -> set[str]:
        with self.store.begin() as conn:
            return {h for (h,) in conn.execute(select(privacy_tombstone.c.hash)).all()}

    def tombstoned(self, conn: Connection, hashes: Iterable[str]) -> set[str]:
        found: set[str] = set()
        c = privacy_tombstone.c
        for part in _chunks(sorted(set(hashes))):
            found.update(h for (h,) in conn.execute(select(c.hash).where(c.hash.in_(part))).all())
        return found

    def erased_keys(self, conn: Connection, policy: Any, batch: Sequence[Claimed]) -> set[str]:
        """Keys of the messages whose customer id or address is on the list."""
        hashes_of = getattr(policy, "identity_hashes", None)
        by_key: dict[str, list[str]] = hashes_of(batch) if hashes_of is not None else {}
        if not by_key:
            return set()
        found = self.tombstoned(conn, (h for hs in by_key.values() for h in hs))
        return {k for k, hs in by_key.items() if found.intersection(hs)}

    # -- audit -------------------------------------------------------------------------------
    def audit(
        self, request_id: str, action: str, subjects: int, by: str, at: datetime, detail: dict
    ) -> None:
        with self.store.begin() as conn:
            conn.execute(
                privacy_audit.insert(),
                dict(
                    request_id=request_id,
                    action=action,
                    subjects=subjects,
                    requested_by=by,
                    at=at,
                    detail=detail,
                ),
            )

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        a = privacy_audit.c
        query = select(privacy_audit).order_by(a.id.desc()).limit(limit)
        with self.store.begin() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # -- preferences -------------------------------------------------------------------------
    def set_frequency(self, customer_id: str, frequency: str, at: datetime) -> None:
        if frequency not in FREQUENCIES:
            raise InputError(f"frequency must be one of {tuple(FREQUENCIES)}")
        p = preference
        with self.store.begin() as conn:
            conn.execute(delete(p).where(p.c.customer_id == customer_id))
            conn.execute(
                p.insert(), dict(customer_id=customer_id, frequency=frequency, updated_at=at)
            )

    def frequencies(self, conn: Connection, customer_ids: Sequence[str]) -> dict[str, str]:
        p = preference.c
        out: dict[str, str] = {}
        for part in _chunks(sorted(set(customer_ids))):
            query = select(p.customer_id, p.frequency).where(p.customer_id.in_(part))
            out.update({str(k): str(v) for k, v in conn.execute(query).all()})
        return out

    def frequency_of(self, customer_id: str) -> str:
        with self.store.begin() as conn:
            return self.frequencies(conn, [customer_id]).get(customer_id, "any")

    # -- the send policy's facts -----------------------------------------------------------
    def fill_facts(
        self, conn: Connection, policy: Any, batch: Sequence[Claimed], now: datetime, facts: Facts
    ) -> None:
        """Erased people, the topic's consent and frequency choices of a claimed batch."""
        facts.erased = self.erased_keys(conn, policy, batch)
        topic = getattr(policy, "topic", None)
        if topic:
            changes = self.store.consents.for_batch(conn, batch, policy.channel, f"topic:{topic}")
            facts.topic = consent_by_message(batch, changes)
        chosen = self.frequencies(conn, [m.customer_id for m in batch])
        limited = {c: FREQUENCIES[f] for c, f in chosen.items() if FREQUENCIES.get(f)}
        if not limited:
            return
        e = email_event.c
        last: dict[str, datetime] = {}
        for part in _chunks(sorted(limited)):
            query = (
                select(e.customer_id, func.max(e.occurred_at))
                .where(e.customer_id.in_(part), e.type == "send")
                .group_by(e.customer_id)
            )
            last.update({str(c): t for c, t in conn.execute(query).all() if t is not None})
        for msg in batch:
            days = limited.get(msg.customer_id)
            sent = last.get(msg.customer_id)
            if days and sent is not None and sent > now - timedelta(days=days):
                word = "week" if days == 7 else "month"
                facts.too_frequent[msg.message_key] = f"preference: at most one email a {word}"

    # -- one person's rows everywhere ---------------------------------------------------------
    def _tables(self, conn: Connection) -> list[Table]:
        meta = MetaData()
        with warnings.catch_warnings():  # expression indexes are not needed to find rows
            warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
            meta.reflect(conn)
        return [t for name, t in sorted(meta.tables.items()) if name not in PRIVATE]

    def _resolve(self, conn: Connection, tables: Sequence[Table], people: People) -> None:
        """The anonymous ids and message keys of the people (from the tables that link them)."""
        anonymous: set[str] = set()
        keys: set[str] = set()
        for t in tables:
            cols = t.c
            if "customer_id" not in cols:
                continue
            wanted = [c for c in ("anonymous_id", "message_key") if c in cols]
            for name in wanted:
                for part in _chunks(people.customer_ids):
                    query = select(cols[name]).where(
                        cols.customer_id.in_(part), cols[name].is_not(None)
                    )
                    found = {str(v) for (v,) in conn.execute(query).all()}
                    (anonymous if name == "anonymous_id" else keys).update(found)
        people.anonymous_ids = sorted(anonymous)
        people.message_keys = sorted(keys)
        known = {t.name: t for t in tables}
        if "message" in known:  # their addresses as messages knew them (the suppression list)
            m = known["message"].c
            for part in _chunks(people.customer_ids):
                query = select(m.email).where(m.customer_id.in_(part), m.email.is_not(None))
                people.emails = sorted(
                    {
                        *people.emails,
                        *(str(e).strip().lower() for (e,) in conn.execute(query).all()),
                    }
                )

    def _conditions(self, t: Table, people: People) -> list[tuple[Any, Sequence[str]]]:
        """(column, values) pairs: a row matching any of them is the people's."""
        cols = t.c
        out: list[tuple[Any, Sequence[str]]] = []
        for name in ("customer_id", "user_id"):
            if name in cols:
                out.append((cols[name], people.customer_ids))
        if "email" in cols:  # stored normalized where they are keys (consent, suppression)
            out.append((cols.email, people.emails))
        if "anonymous_id" in cols:
            out.append((cols.anonymous_id, people.anonymous_ids))
        for name in ("message_id", "message_key"):  # rows of their messages without their id
            if (
                name in cols
                and "customer_id" not in cols
                and t.name not in ("intake_event", "webhook_outbox")
            ):
                out.append((cols[name], people.message_keys))
        return [(c, v) for c, v in out if v]

    def _text_columns(self, t: Table) -> list[str]:
        return [
            c.name
            for c in t.columns
            if isinstance(c.type, (Text, JSON))
            or (isinstance(c.type, String) and (c.type.length or 0) > 320)
        ]

    def _scan(self, conn: Connection, t: Table, words: set[str]) -> list[dict[str, Any]]:
        """Rows of a table without identifying columns whose text names one of ``words``."""
        rows = []
        for row in conn.execute(select(t)).mappings():
            if any(words & tokens(row[c]) for c in self._text_columns(t)):
                rows.append(dict(row))
        return rows

    def _scanned(self, t: Table) -> bool:
        return not any(n in t.c for n in ("customer_id", "user_id", "email")) and bool(
            self._text_columns(t)
        )

    def rows_of(self, customer_ids: Iterable[str], emails: Iterable[str]) -> dict[str, list[dict]]:
        """Every row of every table that is about these people, by table."""
        people = People(customer_ids, emails)
        out: dict[str, list[dict]] = {}
        with self.store.begin() as conn:
            tables = self._tables(conn)
            self._resolve(conn, tables, people)
            for t in tables:
                found: dict[str, dict] = {}
                for column, values in self._conditions(t, people):
                    for part in _chunks(values, WIDE):
                        for hit in conn.execute(select(t).where(column.in_(part))).mappings():
                            found[repr(tuple(hit.values()))] = dict(hit)
                if self._scanned(t):
                    for row in self._scan(conn, t, people.words()):
                        found[repr(tuple(row.values()))] = row
                if found:
                    out[t.name] = list(found.values())
        return out

    def erase(
        self, customer_ids: Iterable[str], emails: Iterable[str]
    ) -> tuple[dict[str, int], list[str]]:
        """Delete every row about these people, in one transaction; (rows deleted by table,
        the message keys they had: their outbox files)."""
        people = People(customer_ids, emails)
        counts: dict[str, int] = {}
        with self.store.begin() as conn:
            if self.store.is_sqlite:  # zero the deleted rows' bytes in the pages
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
            tables = self._tables(conn)
            self._resolve(conn, tables, people)
            for t in tables:
                n = 0
                for column, values in self._conditions(t, people):
                    for part in _chunks(values, WIDE):
                        n += conn.execute(delete(t).where(column.in_(part))).rowcount or 0
                if self._scanned(t):
                    pk = list(t.primary_key.columns)
                    for row in self._scan(conn, t, people.words()):
                        cond = [c == row[c.name] for c in pk]
                        n += conn.execute(delete(t).where(*cond)).rowcount or 0
                if n:
                    counts[t.name] = n
            if self.store.is_sqlite:
                conn.exec_driver_sql("PRAGMA secure_delete=OFF")
        return counts, people.message_keys

    def compact(self) -> None:
        """Leave no deleted bytes in the database files. On SQLite the erasure ran with
        ``secure_delete`` (deleted cells and freed pages are overwritten with zeros), so writing
        the WAL back into the file and truncating it is enough: no page image from before the
        erasure is left anywhere (tests/test_privacy_erasure.py searches the bytes).
        PostgreSQL reuses the space of deleted rows after its own VACUUM (docs/privacy.md)."""
        if not self.store.is_sqlite:
            return
        with self.store.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
