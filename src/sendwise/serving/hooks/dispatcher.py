"""The dispatcher: claims due webhooks, signs and POSTs them, records what became of each.

One pass (:meth:`Dispatcher.run_once`, ``sendwise webhooks deliver``) reads new email events
into the outbox, then claims and sends due webhooks until none is due. :meth:`Dispatcher.run`
repeats passes every ``poll_seconds`` until stopped (``sendwise serve``'s background task).

Per the Standard Webhooks specification: a 2xx answer is a success; anything else (3xx, which
is not followed, 4xx, 5xx, a timeout, a refused connection) is retried after the next delay of
``webhooks.schedule_seconds`` times a random jitter factor, or after ``Retry-After`` when the
receiver asks for longer; after the last delay the webhook is dead. ``410 Gone`` disables the
subscription at once. Delivery is at-least-once: a dispatcher killed after the receiver answered
but before the outcome was committed sends that webhook again, with the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from sendwise.config import WebhookSettings
from sendwise.errors import SendwiseError
from sendwise.serving.hooks import signing
from sendwise.serving.hooks.sources import pull_email_events
from sendwise.store.claims import utcnow
from sendwise.store.repositories import Repositories
from sendwise.store.webhooks import Delivery, Outcome

logger = logging.getLogger(__name__)
PURGE_EVERY = timedelta(hours=1)
MAX_DELAY = 86_400.0
"""A Retry-After longer than a day is taken as a day."""
ERROR_CHARS = 300


@dataclass
class PassReport:
    enqueued: int = 0
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    purged: int = 0


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds asked for by a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now.replace(tzinfo=UTC)).total_seconds())


class Dispatcher:
    """Delivers the outbox of ``repos``. ``transport``: an httpx transport (tests); ``rng``:
    the jitter's random source."""

    def __init__(
        self,
        repos: Repositories,
        settings: WebhookSettings,
        *,
        clock: Callable[[], datetime] = utcnow,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.repos = repos
        self.settings = settings
        self.clock = clock
        self.transport = transport
        self.rng = rng or random.Random()
        rounds = math.ceil(settings.batch_size / settings.concurrency)
        self.lease = timedelta(seconds=rounds * settings.timeout_seconds + 30)
        self.purged_at: datetime | None = None

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.settings.timeout_seconds,
            follow_redirects=False,
            transport=self.transport,
        )

    def delay(self, attempts: int) -> float | None:
        """Seconds before the next attempt after ``attempts`` failed ones (None: no more)."""
        schedule = self.settings.schedule_seconds
        if attempts > len(schedule):
            return None
        jitter = self.settings.jitter
        return float(schedule[attempts - 1]) * self.rng.uniform(1 - jitter, 1 + jitter)

    async def run_once(
        self, client: httpx.AsyncClient | None = None, stop: asyncio.Event | None = None
    ) -> PassReport:
        """Read new events into the outbox, then deliver every due webhook (until ``stop`` is
        set: the batch in flight is finished and recorded)."""
        if client is None:
            async with self.client() as own:
                return await self.run_once(own, stop)
        report = PassReport()
        report.enqueued = await asyncio.to_thread(pull_email_events, self.repos, at=self.clock())
        report.purged = await asyncio.to_thread(self._purge)
        gate = asyncio.Semaphore(self.settings.concurrency)
        while stop is None or not stop.is_set():
            now = self.clock()
            batch = await asyncio.to_thread(
                self.repos.webhooks.claim, now, self.settings.batch_size, now + self.lease
            )
            if not batch:
                return report
            outcomes = await asyncio.gather(*(self._attempt(client, d, gate) for d in batch))
            await asyncio.to_thread(self.repos.webhooks.record, outcomes, self.clock())
            for d, o in zip(batch, outcomes, strict=True):
                if o.status == "delivered":
                    report.delivered += 1
                elif o.status == "dead":
                    report.dead += 1
                    if o.http_status == 410:
                        await asyncio.to_thread(self._gone, d)
                else:
                    report.retried += 1
        return report

    def _purge(self) -> int:
        """Delete delivered webhooks past ``keep_delivered_days`` (at most once an hour)."""
        now = self.clock()
        if self.purged_at is not None and now - self.purged_at < PURGE_EVERY:
            return 0
        self.purged_at = now
        keep = timedelta(days=self.settings.keep_delivered_days)
        return self.repos.webhooks.purge(now - keep)

    def _gone(self, d: Delivery) -> None:
        reason = "the receiver answered 410 Gone"
        if self.repos.webhooks.disable_subscription(d.subscription_id, reason, self.clock()):
            logger.warning("webhook subscription %s disabled: %s", d.subscription_id, reason)

    async def _attempt(
        self, client: httpx.AsyncClient, d: Delivery, gate: asyncio.Semaphore
    ) -> Outcome:
        async with gate:
            stamp = int(self.clock().replace(tzinfo=UTC).timestamp())
            head = signing.headers(d.secret, d.message_id, stamp, d.body)
            try:
                answer = await client.post(d.url, content=d.body.encode(), headers=head)
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                return self._failed(d, None, f"{type(exc).__name__}: {exc}"[:ERROR_CHARS], None)
            except Exception as exc:  # one bad row must not stop its batch from being recorded
                logger.exception("webhook %s: unexpected failure", d.message_id)
                return self._failed(d, None, f"{type(exc).__name__}: {exc}"[:ERROR_CHARS], None)
            if 200 <= answer.status_code < 300:
                return Outcome(d.outbox_id, "delivered", http_status=answer.status_code)
            text = f"HTTP {answer.status_code}: {answer.text[:ERROR_CHARS]}".strip()
            if answer.status_code == 410:
                return Outcome(d.outbox_id, "dead", http_status=410, error=text)
            asked = retry_after(answer.headers.get("retry-after"), self.clock())
            return self._failed(d, answer.status_code, text, asked)

    def _failed(self, d: Delivery, status: int | None, error: str, asked: float | None) -> Outcome:
        wait = self.delay(d.attempts)
        if wait is None:
            logger.warning("webhook %s dead after %d attempts", d.message_id, d.attempts)
            return Outcome(d.outbox_id, "dead", http_status=status, error=error)
        if asked is not None:
            wait = max(wait, min(asked, MAX_DELAY))
        due = self.clock() + timedelta(seconds=wait)
        return Outcome(d.outbox_id, "pending", next_attempt_at=due, http_status=status, error=error)

    async def run(self, stop: asyncio.Event) -> None:
        """Passes every ``poll_seconds`` until ``stop`` is set; a store or receiver problem is
        logged and the next pass tries again."""
        async with self.client() as client:
            while not stop.is_set():
                try:
                    await self.run_once(client, stop)
                except SendwiseError as exc:
                    logger.warning("webhook pass failed: %s", exc)
                except Exception:  # the loop must outlive a bug in one pass
                    logger.exception("webhook pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.poll_seconds)
