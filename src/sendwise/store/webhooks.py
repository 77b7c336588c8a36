"""The outgoing-webhook repository as the serving plane sees it: subscriptions and the outbox.

An outbox row is one event for one subscription (fanned out when it is enqueued), carrying the
exact JSON body that is signed and sent and its ``message_id`` (the ``webhook-id`` header, the
same on every attempt). A row is ``pending`` until a 2xx answer makes it ``delivered``, or the
last attempt makes it ``dead``; ``replay`` makes a dead row ``pending`` again.

A dispatcher *claims* due rows: in one statement their attempt count goes up and their due time
moves to the end of a lease, so that a second dispatcher (another ``serve`` worker, a
``sendwise webhooks deliver``) does not send them too; a dispatcher killed mid-flight leaves rows
that fall due again when the lease ends (at-least-once, with the same ``webhook-id``).

Implementations: :class:`sendwise.store.sql_webhooks.SqlWebhooks` (SQLite, PostgreSQL) and
:class:`sendwise.store.memory_webhooks.MemoryWebhooks`, under one contract suite
(tests/test_webhook_outbox.py). Times are naive UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import RowMapping

OUTBOX_STATUSES = ("pending", "delivered", "dead")
OUTBOX_FIELDS = ("message_id", "subscription_id", "event_type", "body", "created_at")
"""What :meth:`WebhookRepository.enqueue` takes per row."""


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    url: str
    events: tuple[str, ...]
    """Event types delivered, or ``("*",)`` for every type."""
    secret: str = field(repr=False)
    """The ``whsec_`` signing secret (left out of the repr: never in a log)."""
    description: str
    created_at: datetime
    disabled_at: datetime | None = None
    disabled_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def wants(self, event_type: str) -> bool:
        return self.active and ("*" in self.events or event_type in self.events)


@dataclass(frozen=True)
class Delivery:
    """A claimed outbox row, ready to send."""

    outbox_id: int
    message_id: str
    subscription_id: str
    url: str
    secret: str = field(repr=False)
    event_type: str
    body: str
    attempts: int
    """Attempts made so far, this one included."""


@dataclass(frozen=True)
class Outcome:
    """What became of a delivery: ``delivered``, ``pending`` again (at ``next_attempt_at``) or
    ``dead``; ``http_status`` None when nothing answered."""

    outbox_id: int
    status: str
    next_attempt_at: datetime | None = None
    http_status: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class OutboxEntry:
    outbox_id: int
    message_id: str
    subscription_id: str
    event_type: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None
    body: str


def entry(row: Mapping[str, Any] | RowMapping) -> OutboxEntry:
    return OutboxEntry(**{k: row[k] for k in OutboxEntry.__dataclass_fields__})


def subscription(row: Mapping[str, Any] | RowMapping) -> Subscription:
    values = {k: row[k] for k in Subscription.__dataclass_fields__}
    values["events"] = tuple(values["events"])
    return Subscription(**values)


def check_outcomes(outcomes: Sequence[Outcome]) -> None:
    for o in outcomes:
        if o.status not in OUTBOX_STATUSES:
            raise ValueError(f"outbox status must be one of {OUTBOX_STATUSES}")
        if o.status == "pending" and o.next_attempt_at is None:
            raise ValueError("a pending outcome needs its next_attempt_at")


class WebhookRepository(Protocol):
    def add_subscription(self, sub: Subscription) -> bool:
        """Store a new subscription; False (nothing written) when its id is taken."""

    def subscriptions(self) -> list[Subscription]:
        """Every subscription, disabled ones too, oldest first."""

    def get_subscription(self, subscription_id: str) -> Subscription | None: ...

    def remove_subscription(self, subscription_id: str) -> bool:
        """Delete the subscription and its outbox rows; False when there was none."""

    def disable_subscription(self, subscription_id: str, reason: str, at: datetime) -> bool:
        """Stop enqueueing for it and make its pending rows dead (the receiver said 410 Gone);
        False when there was no active one."""

    def enqueue(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert ``pending`` rows (``OUTBOX_FIELDS``, due at ``created_at``) in one
        transaction; a row whose ``message_id`` is stored already is skipped. Returns the rows
        added."""

    def claim(self, now: datetime, limit: int, lease_until: datetime) -> list[Delivery]:
        """Up to ``limit`` pending rows due at ``now``, oldest due first, with one more attempt
        counted and their due time moved to ``lease_until``, in one transaction."""

    def record(self, outcomes: Sequence[Outcome], at: datetime) -> None:
        """Write the outcomes of claimed deliveries, in one transaction."""

    def entries(
        self,
        *,
        status: str | None = None,
        subscription_id: str | None = None,
        limit: int = 100,
    ) -> list[OutboxEntry]:
        """Outbox rows (of that status and subscription), oldest first."""

    def replay(self, outbox_ids: Sequence[int] | None, at: datetime) -> int:
        """Make dead rows (those of ``outbox_ids``; every one with None) pending again, due at
        ``at`` with their attempts reset; returns how many."""

    def counts(self) -> dict[str, int]:
        """Outbox rows by status."""

    def purge(self, delivered_before: datetime) -> int:
        """Delete the rows delivered before that time (dead ones stay until replayed or their
        subscription is removed); returns how many."""

    def email_event_seq(self) -> int:
        """The newest ``seq`` of the ``email_event`` table (0 when empty): where a webhook
        source that starts now begins reading."""
