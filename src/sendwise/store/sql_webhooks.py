"""SQLAlchemy repository of webhook subscriptions and the outbox (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, delete, func, select, update

from sendwise.store.schema import email_event, webhook_outbox, webhook_subscription
from sendwise.store.webhooks import (
    OUTBOX_FIELDS,
    Delivery,
    OutboxEntry,
    Outcome,
    Subscription,
    check_outcomes,
    entry,
    subscription,
)

if TYPE_CHECKING:
    from sendwise.store.connection import Store

o = webhook_outbox.c
s = webhook_subscription.c
CLAIMED = (o.outbox_id, o.message_id, o.subscription_id, o.event_type, o.body, o.attempts)


class SqlWebhooks:
    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- subscriptions ---------------------------------------------------------------------

    def add_subscription(self, sub: Subscription) -> bool:
        row = {**asdict(sub), "events": list(sub.events)}
        stmt = self.store.insert_ignore(webhook_subscription).returning(s.subscription_id)
        with self.store.begin() as conn:
            return conn.execute(stmt, row).first() is not None

    def subscriptions(self) -> list[Subscription]:
        query = select(webhook_subscription).order_by(s.created_at, s.subscription_id)
        with self.store.begin() as conn:
            return [subscription(r) for r in conn.execute(query).mappings()]

    def get_subscription(self, subscription_id: str) -> Subscription | None:
        query = select(webhook_subscription).where(s.subscription_id == subscription_id)
        with self.store.begin() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else subscription(row)

    def remove_subscription(self, subscription_id: str) -> bool:
        with self.store.begin() as conn:
            conn.execute(delete(webhook_outbox).where(o.subscription_id == subscription_id))
            gone = conn.execute(
                delete(webhook_subscription).where(s.subscription_id == subscription_id)
            )
            return bool(gone.rowcount)

    def disable_subscription(self, subscription_id: str, reason: str, at: datetime) -> bool:
        with self.store.begin() as conn:
            done = conn.execute(
                update(webhook_subscription)
                .where(s.subscription_id == subscription_id, s.disabled_at.is_(None))
                .values(disabled_at=at, disabled_reason=reason)
            )
            conn.execute(
                update(webhook_outbox)
                .where(o.subscription_id == subscription_id, o.status == "pending")
                .values(status="dead", last_error=reason)
            )
            return bool(done.rowcount)

    # ---- outbox ----------------------------------------------------------------------------

    def insert(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Enqueue inside a caller's open transaction (an event and its webhooks commit
        together); returns the rows added."""
        if not rows:
            return 0
        values = [
            {
                **{k: r[k] for k in OUTBOX_FIELDS},
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": r["created_at"],
            }
            for r in rows
        ]
        stmt = self.store.insert_ignore(webhook_outbox).returning(o.outbox_id)
        return len(conn.execute(stmt, values).all())

    def enqueue(self, rows: Sequence[Mapping[str, Any]]) -> int:
        with self.store.begin() as conn:
            return self.insert(conn, rows)

    def claim(self, now: datetime, limit: int, lease_until: datetime) -> list[Delivery]:
        due = (
            select(o.outbox_id)
            .where(o.status == "pending", o.next_attempt_at <= now)
            .order_by(o.next_attempt_at, o.outbox_id)
            .limit(limit)
        )
        stmt = (
            update(webhook_outbox)
            .where(o.status == "pending", o.next_attempt_at <= now)
            .values(attempts=o.attempts + 1, next_attempt_at=lease_until)
            .returning(*CLAIMED)
        )
        with self.store.begin() as conn:
            if self.store.is_sqlite:
                # one statement: SQLite runs it under its single write lock
                stmt = stmt.where(o.outbox_id.in_(due.scalar_subquery()))
            else:
                # PostgreSQL: lock the due rows first (a concurrent claim skips them); a LIMIT
                # subquery inside the UPDATE could be evaluated more than once
                ids = list(conn.execute(due.with_for_update(skip_locked=True)).scalars())
                stmt = stmt.where(o.outbox_id.in_(ids))
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
            ids = sorted({r["subscription_id"] for r in rows})
            subs = {
                r.subscription_id: r
                for r in conn.execute(
                    select(s.subscription_id, s.url, s.secret).where(s.subscription_id.in_(ids))
                )
            }
        rows.sort(key=lambda r: r["outbox_id"])
        return [
            Delivery(
                url=subs[r["subscription_id"]].url, secret=subs[r["subscription_id"]].secret, **r
            )
            for r in rows
            if r["subscription_id"] in subs
        ]

    def record(self, outcomes: Sequence[Outcome], at: datetime) -> None:
        check_outcomes(outcomes)
        if not outcomes:
            return
        stmt = (
            update(webhook_outbox)
            .where(o.outbox_id == bindparam("k"))
            .values(
                status=bindparam("st"),
                next_attempt_at=func.coalesce(bindparam("nx"), o.next_attempt_at),
                delivered_at=bindparam("dl"),
                last_status=bindparam("hs"),
                last_error=bindparam("er"),
            )
        )
        params = [
            {
                "k": x.outbox_id,
                "st": x.status,
                "nx": x.next_attempt_at,
                "dl": at if x.status == "delivered" else None,
                "hs": x.http_status,
                "er": x.error,
            }
            for x in outcomes
        ]
        with self.store.begin() as conn:
            conn.execute(stmt, params)

    def entries(
        self,
        *,
        status: str | None = None,
        subscription_id: str | None = None,
        limit: int = 100,
    ) -> list[OutboxEntry]:
        query = select(webhook_outbox).order_by(o.outbox_id).limit(limit)
        if status is not None:
            query = query.where(o.status == status)
        if subscription_id is not None:
            query = query.where(o.subscription_id == subscription_id)
        with self.store.begin() as conn:
            return [entry(r) for r in conn.execute(query).mappings()]

    def replay(self, outbox_ids: Sequence[int] | None, at: datetime) -> int:
        stmt = (
            update(webhook_outbox)
            .where(o.status == "dead")
            .values(status="pending", attempts=0, next_attempt_at=at)
        )
        if outbox_ids is not None:
            if not outbox_ids:
                return 0
            stmt = stmt.where(o.outbox_id.in_(list(outbox_ids)))
        with self.store.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    def counts(self) -> dict[str, int]:
        query = select(o.status, func.count()).group_by(o.status)
        with self.store.begin() as conn:
            return {str(k): int(v) for k, v in conn.execute(query).all()}

    def purge(self, delivered_before: datetime) -> int:
        stmt = delete(webhook_outbox).where(
            o.status == "delivered", o.delivered_at < delivered_before
        )
        with self.store.begin() as conn:
            return int(conn.execute(stmt).rowcount)

    def email_event_seq(self) -> int:
        with self.store.begin() as conn:
            found = conn.execute(select(func.max(email_event.c.seq))).scalar_one()
        return int(found or 0)
