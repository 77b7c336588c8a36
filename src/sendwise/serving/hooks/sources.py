"""Where webhook events come from: the store's ``email_event`` table (sends and unsubscribes),
and the changes ``sendwise publish`` finds between two snapshots (:func:`from_changes`).

The reader keeps its place in ``repos.watermarks`` (``webhooks.email_event``): it reads the
events after its watermark, enqueues their webhooks, then moves the watermark. A crash between
the two reads those events again, and their webhooks are not added twice (each one's
``webhook-id`` comes from the email event's id): every send and unsubscribe reaches the outbox
exactly once, and nothing needs to call the webhooks code when it records one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from sendwise.serving.hooks.events import WebhookEvent
from sendwise.serving.hooks.outbox import enqueue
from sendwise.store.repositories import Repositories

WATERMARK = "webhooks.email_event"
TYPES = {"send": "message.sent", "unsubscribe": "customer.unsubscribed"}
FIELDS = ("customer_id", "email", "campaign_id", "variant", "reason")
PAGE = 1000


def start_reading(repos: Repositories, at: datetime) -> None:
    """Start from the newest email event: a first subscription gets what happens next, not
    the whole history."""
    head = repos.webhooks.email_event_seq()
    if head > repos.watermarks.get(WATERMARK):
        repos.watermarks.set(WATERMARK, head, at)


def _value(row: Mapping[str, Any], name: str) -> Any:
    value = row.get(name)
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else value


def to_event(row: Mapping[str, Any]) -> WebhookEvent | None:
    """The webhook event of one email event (None for the types not published)."""
    kind = TYPES.get(str(row.get("type")))
    if kind is None:
        return None
    data = {name: _value(row, name) for name in FIELDS}
    data["message_id"] = _value(row, "message_id")
    if kind == "message.sent":
        data.pop("reason")
    occurred = pd.Timestamp(row["occurred_at"]).to_pydatetime()
    return WebhookEvent(kind, data, occurred, key=f"email_event:{row['event_id']}")


def pull_email_events(repos: Repositories, *, at: datetime, page: int = PAGE) -> int:
    """Enqueue the webhooks of the sends and unsubscribes recorded since the last call;
    returns the webhooks added. Without an active subscription nothing is read or written (the
    next first subscription starts at the head of the table)."""
    if not any(s.active for s in repos.webhooks.subscriptions()):
        return 0
    seq = repos.watermarks.get(WATERMARK)
    added = 0
    while True:
        frame = repos.events.since(seq, page)
        if frame.empty:
            return added
        rows = frame.to_dict("records")
        events = [e for e in map(to_event, rows) if e is not None]
        added += enqueue(repos, events, at=at)
        seq = int(frame["seq"].max())
        repos.watermarks.set(WATERMARK, seq, at)
        if len(frame) < page:
            return added


def from_changes(changes: Iterable[Mapping[str, Any]]) -> list[WebhookEvent]:
    """Webhook events of ``publish``'s changes (dicts with ``type``, ``customer_id``,
    ``snapshot``, ``at`` and the segment or score fields), keyed by snapshot, customer and
    change, so that publishing the same snapshot twice sends nothing new."""
    events = []
    for change in changes:
        data = {k: v for k, v in change.items() if k not in ("type", "at")}
        at = change["at"]
        occurred = datetime.fromisoformat(at) if isinstance(at, str) else at
        what = change.get("segment", change.get("score"))
        key = ":".join(
            str(p)
            for p in ("publish", change.get("snapshot"), change.get("customer_id"),
                      change["type"], what, change.get("threshold", ""))
        )  # fmt: skip
        events.append(WebhookEvent(str(change["type"]), data, occurred, key=key))
    return events
