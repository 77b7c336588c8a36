"""Small use cases over the store: suppressions, consents and email events."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from sendwise.store.connection import Store
from sendwise.store.schema import consent, email_event, suppression

logger = logging.getLogger(__name__)

SUPPRESSION_REASONS = ("hard_bounce", "complaint", "unsubscribe", "manual")
CONSENT_STATUSES = ("granted", "withdrawn")


def utcnow() -> datetime:
    """Now in UTC, naive (the store's convention)."""
    return datetime.now(UTC).replace(tzinfo=None)


def suppress(
    store: Store,
    email: str,
    reason: str,
    *,
    source: str = "",
    customer_id: str | None = None,
    at: datetime | None = None,
) -> bool:
    """Put ``email`` on the global suppression list; False when it already was."""
    if reason not in SUPPRESSION_REASONS:
        raise ValueError(f"suppression reason must be one of {SUPPRESSION_REASONS}")
    row = {
        "email": email.strip().lower(),
        "reason": reason,
        "source": source,
        "customer_id": customer_id,
        "created_at": at or utcnow(),
    }
    with store.begin() as conn:
        stmt = store.insert_ignore(suppression).returning(suppression.c.email)
        added = conn.execute(stmt, row).first() is not None
    logger.info("suppression %s for customer %s", reason, customer_id)
    return bool(added)


def suppressed(store: Store) -> pd.DataFrame:
    """The suppression list: email (lower case) and reason."""
    with store.begin() as conn:
        rows = conn.execute(select(suppression.c.email, suppression.c.reason)).all()
    return pd.DataFrame(rows, columns=["email", "reason"])


def record_consent(
    store: Store,
    customer_id: str,
    status: str,
    *,
    channel: str = "email",
    purpose: str = "marketing",
    source: str,
    at: datetime | None = None,
) -> None:
    """Record a consent change with where it came from; the latest change is in force."""
    if status not in CONSENT_STATUSES:
        raise ValueError(f"consent status must be one of {CONSENT_STATUSES}")
    row = dict(
        customer_id=customer_id,
        channel=channel,
        purpose=purpose,
        status=status,
        source=source,
        recorded_at=at or utcnow(),
    )
    with store.begin() as conn:
        conn.execute(store.insert_ignore(consent), [row])


def import_consent(store: Store, frame: pd.DataFrame) -> int:
    """Copy consent changes (the warehouse ``consent`` table's shape) into the store; rows it
    already holds are skipped, so importing again is harmless. Returns the rows added."""
    if frame.empty:
        return 0
    cols = ["customer_id", "channel", "purpose", "status", "source", "recorded_at"]
    data = frame[cols].copy()
    data["recorded_at"] = pd.to_datetime(data["recorded_at"], utc=True).dt.tz_localize(None)
    data["source"] = data["source"].fillna("warehouse")
    records = [
        {k: (v.to_pydatetime() if isinstance(v, pd.Timestamp) else v) for k, v in r.items()}
        for r in data.astype(object).where(data.notna(), None).to_dict("records")
    ]
    # executemany's rowcount is not reliable across drivers: count before and after
    with store.begin() as conn:
        before = conn.execute(select(func.count()).select_from(consent)).scalar_one()
        for start in range(0, len(records), 5000):
            conn.execute(store.insert_ignore(consent), records[start : start + 5000])
        return conn.execute(select(func.count()).select_from(consent)).scalar_one() - before


def consent_in_force(store: Store, channel: str = "email", purpose: str = "marketing") -> pd.Series:
    """The latest consent status per customer for this channel and purpose (customer_id index)."""
    query = select(
        consent.c.customer_id, consent.c.status, consent.c.recorded_at, consent.c.id
    ).where(consent.c.channel == channel, consent.c.purpose == purpose)
    with store.begin() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(rows, columns=["customer_id", "status", "recorded_at", "id"])
    latest = frame.sort_values(["recorded_at", "id"]).drop_duplicates("customer_id", keep="last")
    return latest.set_index("customer_id")["status"]


def add_events(conn: Any, store: Store, events: Sequence[Mapping[str, Any]]) -> None:
    """Insert email events; one whose event_id is already stored is skipped (idempotent)."""
    if events:
        rows = [{"is_machine": False, **e} for e in events]
        conn.execute(store.insert_ignore(email_event), rows)


def event_rows(store: Store, where: Iterable[Any] = ()) -> list[Any]:
    with store.begin() as conn:
        return list(conn.execute(select(email_event).where(*where)).mappings())
