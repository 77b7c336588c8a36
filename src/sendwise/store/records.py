"""Small use cases over the store's repositories, kept as functions for their callers
(tracking, the CLI, tests): suppressions, consents and email events."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from sendwise.store.claims import normalize_email, utcnow
from sendwise.store.repositories import CONSENT_STATUSES, SUPPRESSION_REASONS, Repositories

logger = logging.getLogger(__name__)

__all__ = [
    "CONSENT_STATUSES",
    "SUPPRESSION_REASONS",
    "add_events",
    "consent_in_force",
    "event_rows",
    "import_consent",
    "record_consent",
    "suppress",
    "suppressed",
    "utcnow",
]


def suppress(
    store: Repositories,
    email: str,
    reason: str,
    *,
    source: str = "",
    customer_id: str | None = None,
    at: datetime | None = None,
) -> bool:
    """Put ``email`` on the global suppression list; False when it already was."""
    return store.suppressions.add(
        email, reason, source=source, customer_id=customer_id, at=at or utcnow()
    )


def suppressed(store: Repositories) -> pd.DataFrame:
    """The suppression list: email (lower case) and reason."""
    items = sorted(store.suppressions.reasons().items())
    return pd.DataFrame(items, columns=["email", "reason"])


def record_consent(
    store: Repositories,
    customer_id: str,
    status: str,
    *,
    email: str | None = None,
    channel: str = "email",
    purpose: str = "marketing",
    source: str,
    at: datetime | None = None,
    proof: Mapping[str, str | None] | None = None,
) -> bool:
    """Record a consent change for the address ``email`` (or, without one, the customer
    record) with where it came from and its ``proof`` (legal_basis, ip, user_agent, token);
    the latest change is in force. Recording the status already in force adds nothing (a
    repeated unsubscribe is one change). True when recorded."""
    return store.consents.record(
        customer_id,
        status,
        email=email,
        channel=channel,
        purpose=purpose,
        source=source,
        at=at or utcnow(),
        proof=proof,
    )


def import_consent(store: Repositories, frame: pd.DataFrame) -> int:
    """Copy consent changes (the warehouse ``consent`` table's shape, optionally with each
    customer's ``email``) into the store; rows it already holds are skipped, so importing again
    is harmless. Returns the rows added."""
    return store.consents.import_changes(frame)


def latest_by_customer(changes: pd.DataFrame, customers: pd.DataFrame | None = None) -> pd.Series:
    """The consent in force per customer_id: the latest change for the customer's address
    (``customers``: customer_id, email; the address of each change's own record otherwise)
    or, for changes without an address, for the customer record."""
    frame = changes.sort_values(["recorded_at", "id"])
    frame = frame.assign(address=frame["email"].map(normalize_email))
    by_address = frame.dropna(subset=["address"]).drop_duplicates("address", keep="last")
    by_record = frame[frame["address"].isna()].drop_duplicates("customer_id", keep="last")
    if customers is None:
        customers = frame[["customer_id", "email"]].drop_duplicates("customer_id", keep="last")
    who = customers[["customer_id", "email"]].copy()
    who["customer_id"] = who["customer_id"].astype(str)
    who["address"] = who["email"].map(normalize_email)
    cols = ["status", "recorded_at", "id"]
    a = who.merge(by_address[["address", *cols]], on="address", how="left")
    r = who[["customer_id"]].merge(by_record[["customer_id", *cols]], on="customer_id", how="left")
    sa, sr = a["status"].to_numpy(dtype=object), r["status"].to_numpy(dtype=object)
    ta, tr = pd.to_datetime(a["recorded_at"]), pd.to_datetime(r["recorded_at"])
    a_later = ((ta > tr) | ((ta == tr) & (a["id"] >= r["id"]))).to_numpy()
    status = np.where(pd.isna(sr), sa, np.where(pd.isna(sa), sr, np.where(a_later, sa, sr)))
    out = pd.Series(status, index=who["customer_id"].to_numpy(), dtype=object)
    return out[out.notna()]


def consent_in_force(
    store: Repositories,
    channel: str = "email",
    purpose: str = "marketing",
    customers: pd.DataFrame | None = None,
) -> pd.Series:
    """The latest consent status per customer for this channel and purpose (customer_id
    index), per address: see :func:`latest_by_customer`."""
    return latest_by_customer(store.consents.changes(channel, purpose), customers)


def add_events(conn: Any, store: Any, events: Sequence[Mapping[str, Any]]) -> None:
    """Insert email events in an open transaction of a SQL store (duplicates skipped)."""
    store.events.insert(conn, events)


def event_rows(store: Repositories, where: Iterable[Any] = (), **equal: Any) -> list[Any]:
    """Stored email events whose columns equal ``equal``; ``where`` (SQLAlchemy conditions,
    for older callers) is only understood by a SQL store."""
    conds = list(where)
    if conds:
        from sqlalchemy import select

        from sendwise.store.schema import email_event

        with store.begin() as conn:  # type: ignore[attr-defined]
            return list(conn.execute(select(email_event).where(*conds)).mappings())
    return store.events.rows(**equal)
