"""SQLAlchemy repositories for email events, consents and suppressions (SQLite, PostgreSQL)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Connection, and_, func, or_, select

from sendwise.store.claims import Claimed, ConsentChange, normalize_email
from sendwise.store.repositories import (
    CONSENT_STATUSES,
    EVENT_FIELDS,
    PROOF_FIELDS,
    SUPPRESSION_REASONS,
    BuildBatch,
)
from sendwise.store.schema import consent, email_event, suppression

if TYPE_CHECKING:
    from sendwise.store.connection import Store

logger = logging.getLogger(__name__)
CHUNK = 500
CHANGE_COLUMNS = ["customer_id", "email", "status", "recorded_at", "id"]
BLANK_EVENT: dict[str, Any] = {**dict.fromkeys(EVENT_FIELDS), "is_machine": False}


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def check_suppression(reason: str) -> None:
    if reason not in SUPPRESSION_REASONS:
        raise ValueError(f"suppression reason must be one of {SUPPRESSION_REASONS}")


def check_consent(status: str) -> None:
    if status not in CONSENT_STATUSES:
        raise ValueError(f"consent status must be one of {CONSENT_STATUSES}")


class SqlEvents:
    def __init__(self, store: Store) -> None:
        self.store = store

    def insert(self, conn: Connection, events: Sequence[Mapping[str, Any]]) -> None:
        if events:  # every row of one executemany names the same columns
            rows = [{**BLANK_EVENT, **e} for e in events]
            conn.execute(self.store.insert_ignore(email_event), rows)

    def add(self, events: Sequence[Mapping[str, Any]]) -> None:
        with self.store.begin() as conn:
            self.insert(conn, events)

    def record_batch(self, keys: Sequence[str], build: BuildBatch) -> None:
        store = self.store
        with store.begin() as conn:
            events, suppressions = build(store.messages.lookup(conn, keys) if keys else {})
            for change in suppressions:
                check_suppression(change.reason)
            self.insert(conn, events)
            for change in suppressions:
                store.suppressions.insert(
                    conn, change.email, change.reason, change.source, change.customer_id, change.at
                )
                if change.reason == "unsubscribe" and change.customer_id:
                    store.consents.insert(
                        conn,
                        dict(customer_id=change.customer_id, email=normalize_email(change.email),
                             channel="email", purpose="marketing", status="withdrawn",
                             source="unsubscribe_link", recorded_at=change.at),
                    )  # fmt: skip

    def rows(self, **equal: Any) -> list[dict[str, Any]]:
        e = email_event.c
        query = select(email_event).where(*(getattr(e, k) == v for k, v in equal.items()))
        with self.store.begin() as conn:
            return [dict(r) for r in conn.execute(query.order_by(e.seq)).mappings()]

    def since(self, seq: int, limit: int) -> pd.DataFrame:
        e = email_event.c
        query = (
            select(e.seq, *(getattr(e, c) for c in EVENT_FIELDS))
            .where(e.seq > seq)
            .order_by(e.seq)
            .limit(limit)
        )
        with self.store.begin() as conn:
            return pd.DataFrame(conn.execute(query).all(), columns=["seq", *EVENT_FIELDS])

    def sends_by_customer(self, since: datetime) -> dict[str, int]:
        e = email_event.c
        query = (
            select(e.customer_id, func.count())
            .where(e.type == "send", e.occurred_at >= since)
            .group_by(e.customer_id)
        )
        with self.store.begin() as conn:
            return {str(k): int(v) for k, v in conn.execute(query).all() if k is not None}

    def for_campaign(self, campaign_id: str, types: Iterable[str]) -> pd.DataFrame:
        e = email_event.c
        cols = ["message_id", "type", "occurred_at", "is_machine", "url"]
        query = select(*(getattr(e, c) for c in cols)).where(
            e.campaign_id == campaign_id, e.type.in_(list(types))
        )
        with self.store.begin() as conn:
            frame = pd.DataFrame(conn.execute(query).all(), columns=cols)
        frame["occurred_at"] = pd.to_datetime(frame["occurred_at"])
        frame["is_machine"] = frame["is_machine"].astype(bool)
        return frame

    def recent_sends(
        self, conn: Connection, batch: Sequence[Claimed], since: datetime
    ) -> dict[str, int]:
        """Sends since ``since`` to each address of the batch (trimmed, lower case)."""
        e = email_event.c
        address = func.lower(func.trim(e.email))
        out: dict[str, int] = {}
        for part in chunks(sorted({m.address for m in batch if m.address})):
            query = (
                select(address, func.count())
                .where(address.in_(part), e.type == "send", e.occurred_at >= since)
                .group_by(address)
            )
            out.update({str(a): int(n) for a, n in conn.execute(query).all()})
        return out


class SqlConsents:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _latest(
        self, conn: Connection, customer_id: str, email: str | None, channel: str, purpose: str
    ) -> str | None:
        c = consent.c
        who = c.email == email if email else and_(c.email.is_(None), c.customer_id == customer_id)
        row = conn.execute(
            select(c.status)
            .where(who, c.channel == channel, c.purpose == purpose)
            .order_by(c.recorded_at.desc(), c.id.desc())
            .limit(1)
        ).first()
        return None if row is None else str(row.status)

    def in_force(
        self,
        customer_id: str,
        email: str | None,
        channel: str = "email",
        purpose: str = "marketing",
    ) -> str | None:
        """The status in force for the address (or, without one, the customer record)."""
        with self.store.begin() as conn:
            return self._latest(conn, customer_id, normalize_email(email), channel, purpose)

    def in_force_many(
        self, customer_ids: Sequence[str], channel: str = "email", purpose: str = "marketing"
    ) -> dict[str, str]:
        """:meth:`in_force` of many customer records (no address) in one read: the status of
        each customer with one, by id; customers with none are absent."""
        ids, c, out = list(dict.fromkeys(customer_ids)), consent.c, {}
        with self.store.begin() as conn:
            for start in range(0, len(ids), 500):
                query = (
                    select(c.customer_id, c.status)
                    .where(c.email.is_(None), c.channel == channel, c.purpose == purpose,
                           c.customer_id.in_(ids[start : start + 500]))
                    .order_by(c.recorded_at, c.id)
                )  # fmt: skip
                for cid, status in conn.execute(query):
                    out[str(cid)] = str(status)  # oldest first: the latest wins
        return out

    def record(
        self,
        customer_id: str,
        status: str,
        *,
        email: str | None = None,
        channel: str = "email",
        purpose: str = "marketing",
        source: str,
        at: datetime,
        proof: Mapping[str, str | None] | None = None,
    ) -> bool:
        check_consent(status)
        row = dict(
            customer_id=customer_id,
            email=normalize_email(email),
            channel=channel,
            purpose=purpose,
            status=status,
            source=source,
            recorded_at=at,
            **{k: (proof or {}).get(k) for k in PROOF_FIELDS},
        )
        with self.store.begin() as conn:
            return self.insert(conn, row)

    def insert(self, conn: Connection, row: Mapping[str, Any]) -> bool:
        """Record one change in an open transaction unless its status is already in force."""
        if self._latest(conn, row["customer_id"], row["email"], row["channel"],
                        row["purpose"]) == row["status"]:  # fmt: skip
            return False
        stmt = self.store.insert_ignore(consent).returning(consent.c.id)
        return conn.execute(stmt, dict(row)).first() is not None

    def import_changes(self, frame: pd.DataFrame) -> int:
        records = consent_records(frame)
        if not records:
            return 0
        # executemany's rowcount is not reliable across drivers: count before and after
        with self.store.begin() as conn:
            before = conn.execute(select(func.count()).select_from(consent)).scalar_one()
            for part in chunks(records, 5000):
                conn.execute(self.store.insert_ignore(consent), list(part))
            return conn.execute(select(func.count()).select_from(consent)).scalar_one() - before

    def changes(self, channel: str = "email", purpose: str = "marketing") -> pd.DataFrame:
        c = consent.c
        query = select(*(getattr(c, n) for n in CHANGE_COLUMNS)).where(
            c.channel == channel, c.purpose == purpose
        )
        with self.store.begin() as conn:
            return pd.DataFrame(conn.execute(query).all(), columns=CHANGE_COLUMNS)

    def for_batch(
        self, conn: Connection, batch: Sequence[Claimed], channel: str, purpose: str
    ) -> list[ConsentChange]:
        """The changes that concern the batch: by address, or by customer when addressless."""
        c = consent.c
        addresses = sorted({m.address for m in batch if m.address})
        customers = sorted({m.customer_id for m in batch})
        out: list[ConsentChange] = []
        for emails, ids in _pairs(addresses, customers):
            who = or_(c.email.in_(emails), and_(c.email.is_(None), c.customer_id.in_(ids)))
            query = select(*(getattr(c, n) for n in CHANGE_COLUMNS)).where(
                who, c.channel == channel, c.purpose == purpose
            )
            out += [ConsentChange(*row) for row in conn.execute(query).all()]
        return out


def _pairs(a: Sequence[str], b: Sequence[str]) -> Iterable[tuple[Sequence[str], Sequence[str]]]:
    n = max(len(a), len(b))
    for start in range(0, n, CHUNK):
        yield a[start : start + CHUNK], b[start : start + CHUNK]


def consent_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a consent frame as the store writes them (times naive UTC, addresses
    normalized, a missing source is ``warehouse``)."""
    if frame.empty:
        return []
    cols = ["customer_id", "channel", "purpose", "status", "source", "recorded_at"]
    data = frame[cols].copy()
    data["email"] = frame["email"].map(normalize_email) if "email" in frame else None
    data["recorded_at"] = pd.to_datetime(data["recorded_at"], utc=True).dt.tz_localize(None)
    data["source"] = data["source"].fillna("warehouse")
    data["customer_id"] = data["customer_id"].astype(str)
    for name in PROOF_FIELDS:
        data[name] = frame.get(name)
    return [
        {k: (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}
        for r in data.astype(object).where(data.notna(), None).to_dict("records")
    ]


class SqlSuppressions:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(
        self,
        email: str,
        reason: str,
        *,
        source: str = "",
        customer_id: str | None = None,
        at: datetime,
    ) -> bool:
        check_suppression(reason)
        with self.store.begin() as conn:
            return self.insert(conn, email, reason, source, customer_id, at)

    def insert(
        self,
        conn: Connection,
        email: str,
        reason: str,
        source: str,
        customer_id: str | None,
        at: datetime,
    ) -> bool:
        """Put one address on the list in an open transaction; False when it already was."""
        row = {
            "email": normalize_email(email),
            "reason": reason,
            "source": source,
            "customer_id": customer_id,
            "created_at": at,
        }
        stmt = self.store.insert_ignore(suppression).returning(suppression.c.email)
        added = conn.execute(stmt, row).first() is not None
        logger.info("suppression %s for customer %s", reason, customer_id)
        return added

    def reasons(self, emails: Iterable[str] | None = None) -> dict[str, str]:
        with self.store.begin() as conn:
            return self.lookup(conn, emails)

    def lookup(self, conn: Connection, emails: Iterable[str] | None) -> dict[str, str]:
        s = suppression.c
        if emails is None:
            return {e: r for e, r in conn.execute(select(s.email, s.reason)).all()}
        out: dict[str, str] = {}
        wanted = sorted({a for a in map(normalize_email, emails) if a})
        for part in chunks(wanted):
            query = select(s.email, s.reason).where(s.email.in_(part))
            out.update({e: r for e, r in conn.execute(query).all()})
        return out
