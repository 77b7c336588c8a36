"""From a verified tracking token and a request to the event the store records."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sendwise.store.records import utcnow

# a transparent 1x1 GIF
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def engagement(
    kind: str,
    message_key: str,
    *,
    user_agent: str | None,
    ip: str | None,
    url: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    """An open or click event; each request is its own event (unique counts come later)."""
    return {
        "event_id": f"{message_key}:{kind}:{uuid.uuid4().hex}",
        "message_id": message_key,
        "type": kind,
        "occurred_at": at or utcnow(),
        "url": url,
        "user_agent": (user_agent or "")[:500] or None,
        "is_machine": False,
        "_ip": ip,
    }


def unsubscribe(
    message_key: str, *, user_agent: str | None, at: datetime | None = None
) -> dict[str, Any]:
    """The one unsubscribe of a message (its id is fixed: repeating the POST changes nothing)."""
    return {
        "event_id": f"{message_key}:unsubscribe",
        "message_id": message_key,
        "type": "unsubscribe",
        "occurred_at": at or utcnow(),
        "user_agent": (user_agent or "")[:500] or None,
        "is_machine": False,
        "_suppress": "unsubscribe",
    }
