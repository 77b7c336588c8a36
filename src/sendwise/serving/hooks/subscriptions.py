"""Webhook subscriptions (admin): add, list, remove.

A subscription is a URL, the event types it wants and its signing secret, generated here and
shown once (the caller prints or returns it; listing never shows it again). Only ``http`` and
``https`` URLs are taken. Subscribing is an admin's act: sendwise calls whatever URL an admin
gives it, so keep admin keys to people you would let reach your network (docs/webhooks.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime

import httpx

from sendwise.errors import InputError, NotFoundError
from sendwise.serving.hooks.events import ALL, EVENT_TYPES
from sendwise.serving.hooks.signing import new_secret
from sendwise.serving.hooks.sources import start_reading
from sendwise.store.claims import utcnow
from sendwise.store.repositories import Repositories
from sendwise.store.webhooks import Subscription

MAX_URL = 2000
MAX_DESCRIPTION = 500


def check_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host, else an InputError."""
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise InputError(f"a webhook URL must be 1 to {MAX_URL} characters")
    if not url.isprintable() or not url.isascii():
        raise InputError("a webhook URL must be printable ASCII (percent-encode the rest)")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise InputError("the webhook URL cannot be parsed") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InputError("a webhook URL must be http:// or https:// with a host")
    return url


def check_events(events: Iterable[str]) -> tuple[str, ...]:
    """The event types asked for, known, deduplicated, in the catalogue's order (or ``*``)."""
    wanted = {e.strip() for e in events if e.strip()}
    if not wanted:
        raise InputError(f"name at least one event type: {', '.join(EVENT_TYPES)} or *")
    unknown = sorted(wanted - {*EVENT_TYPES, ALL})
    if unknown:
        raise InputError(
            f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)} or *"
        )
    return (ALL,) if ALL in wanted else tuple(e for e in EVENT_TYPES if e in wanted)


def add_subscription(
    repos: Repositories,
    url: str,
    events: Iterable[str],
    *,
    description: str = "",
    at: datetime | None = None,
) -> Subscription:
    """Subscribe ``url`` to ``events``; the returned record holds the new secret (show it once).
    The subscription receives events that happen from now on."""
    at = at or utcnow()
    if len(description) > MAX_DESCRIPTION:
        raise InputError(f"a description must be at most {MAX_DESCRIPTION} characters")
    if not description.isprintable():
        raise InputError("a description must be one line of printable text")
    sub = Subscription(
        subscription_id="wh_" + secrets.token_hex(12),
        url=check_url(url),
        events=check_events(events),
        secret=new_secret(),
        description=description,
        created_at=at,
    )
    first = not any(s.active for s in repos.webhooks.subscriptions())
    if first:
        start_reading(repos, at)
    repos.webhooks.add_subscription(sub)
    return sub


def list_subscriptions(repos: Repositories) -> list[Subscription]:
    """Every subscription, oldest first (they hold their secrets: never print those)."""
    return repos.webhooks.subscriptions()


def remove_subscription(repos: Repositories, subscription_id: str) -> None:
    """Delete the subscription and every webhook still waiting for it."""
    if not repos.webhooks.remove_subscription(subscription_id):
        raise NotFoundError("webhook subscription", subscription_id)
