"""Putting events into the outbox, and the dead-letter list.

:func:`enqueue` fans each event out to every active subscription that wants its type, one
outbox row each, in one transaction of the store. Code that writes its own change through a
SQL store can call :func:`fan_out` and insert the rows with ``store.webhooks.insert(conn, rows)``
inside its own transaction, so that the change and its webhooks commit together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sendwise.errors import NotFoundError
from sendwise.serving.hooks.events import WebhookEvent, body, event_key, message_id
from sendwise.store.claims import utcnow
from sendwise.store.repositories import Repositories
from sendwise.store.webhooks import OutboxEntry, Subscription


def fan_out(
    subscriptions: Iterable[Subscription], events: Iterable[WebhookEvent], at: datetime
) -> list[dict[str, Any]]:
    """Outbox rows: one per event and active subscription that wants it."""
    subs = [s for s in subscriptions if s.active]
    rows = []
    for event in events:
        payload = body(event)
        key = event_key(event, payload)
        for sub in subs:
            if sub.wants(event.type):
                rows.append(
                    {
                        "message_id": message_id(sub.subscription_id, key),
                        "subscription_id": sub.subscription_id,
                        "event_type": event.type,
                        "body": payload,
                        "created_at": at,
                    }
                )
    return rows


def enqueue(
    repos: Repositories, events: Iterable[WebhookEvent], *, at: datetime | None = None
) -> int:
    """Put ``events`` in the outbox for every subscription that wants them (one transaction);
    an event enqueued before (same key) is not added again. Returns the webhooks added."""
    events = list(events)
    if not events:
        return 0
    rows = fan_out(repos.webhooks.subscriptions(), events, at or utcnow())
    return repos.webhooks.enqueue(rows) if rows else 0


def dead_letters(repos: Repositories, *, limit: int = 100) -> list[OutboxEntry]:
    """Webhooks whose last attempt failed, oldest first."""
    return repos.webhooks.entries(status="dead", limit=limit)


def replay(
    repos: Repositories, outbox_ids: Sequence[int] | None, *, at: datetime | None = None
) -> int:
    """Send dead webhooks again (those of ``outbox_ids``; all with None), with the same
    ``webhook-id`` and body and a fresh attempt schedule. Returns how many."""
    done = repos.webhooks.replay(None if outbox_ids is None else list(outbox_ids), at or utcnow())
    if outbox_ids is not None and outbox_ids and done == 0:
        raise NotFoundError("dead webhook", ", ".join(map(str, sorted(set(outbox_ids)))))
    return done
