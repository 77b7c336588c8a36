"""Outgoing webhooks, signed and delivered per the Standard Webhooks specification.

Admins subscribe URLs to event types (:mod:`.subscriptions`); events are fanned out into the
store's outbox (:func:`enqueue`, or read from the ``email_event`` table by :mod:`.sources`); the
:class:`Dispatcher` delivers them with retries, exponential backoff and jitter, and dead-letters
what its last attempt could not deliver; dead letters can be replayed. See docs/webhooks.md.
"""

from sendwise.serving.hooks.dispatcher import Dispatcher, PassReport
from sendwise.serving.hooks.events import EVENT_TYPES, WebhookEvent
from sendwise.serving.hooks.outbox import dead_letters, enqueue, replay
from sendwise.serving.hooks.sources import from_changes
from sendwise.serving.hooks.subscriptions import (
    add_subscription,
    list_subscriptions,
    remove_subscription,
)

__all__ = [
    "EVENT_TYPES",
    "Dispatcher",
    "PassReport",
    "WebhookEvent",
    "add_subscription",
    "dead_letters",
    "enqueue",
    "from_changes",
    "list_subscriptions",
    "remove_subscription",
    "replay",
]
