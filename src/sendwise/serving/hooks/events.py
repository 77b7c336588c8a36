"""Webhook events and their payloads.

A payload follows the Standard Webhooks structure: ``{"type", "timestamp", "data"}``, where
``timestamp`` is when the event occurred (ISO 8601, UTC, ``Z``), serialised once as minified
JSON; those exact bytes are stored in the outbox, signed and sent on every attempt.

The ``webhook-id`` of an event for a subscription is derived from the subscription and the
event's idempotency key, so enqueueing the same event again (a source read twice after a crash)
adds nothing, and every retry or replay carries the same id.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sendwise.errors import InputError

EVENT_TYPES = (
    "segment.entered",
    "segment.left",
    "score.crossed",
    "customer.unsubscribed",
    "message.sent",
    "journey.step",
)
"""What a subscription can ask for; ``*`` asks for every type."""
ALL = "*"


@dataclass(frozen=True)
class WebhookEvent:
    """One event to deliver to every subscription that wants its ``type``.

    ``key``: the event's idempotency key at its source (an email event's id, ``publish``'s
    snapshot and customer ...); without one, the digest of the payload, so that the same event
    enqueued twice is delivered once."""

    type: str
    data: Mapping[str, Any]
    occurred_at: datetime
    key: str | None = field(default=None)

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise InputError(f"unknown webhook event type {self.type!r}; known: {EVENT_TYPES}")


def utc_text(at: datetime) -> str:
    """``at`` (naive UTC, or aware) as ISO 8601 in UTC with a ``Z``."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds") + "Z"


def _plain(value: Any) -> Any:
    """A JSON-ready copy of ``value``: times as ISO text, numpy scalars as Python ones, NaN
    and missing values as null."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy and pandas scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if value.__class__.__name__ in ("NaTType", "NAType"):
        return None
    raise InputError(f"webhook data holds a {type(value).__name__}, which JSON cannot carry")


def body(event: WebhookEvent) -> str:
    """The payload as sent: minified JSON, keys sorted, plain ASCII (other characters as
    ``\\u`` escapes, so that any text, even a lone surrogate, makes a body that encodes)."""
    payload = {"type": event.type, "timestamp": utc_text(event.occurred_at), "data": event.data}
    return json.dumps(_plain(payload), separators=(",", ":"), sort_keys=True, allow_nan=False)


def event_key(event: WebhookEvent, payload: str) -> str:
    return event.key if event.key is not None else hashlib.sha256(payload.encode()).hexdigest()


def message_id(subscription_id: str, key: str) -> str:
    """The ``webhook-id``: ``msg_`` and 32 hex digits (no ``.``, never user controlled)."""
    digest = hashlib.sha256(f"{subscription_id}\n{key}".encode()).hexdigest()
    return f"msg_{digest[:32]}"
