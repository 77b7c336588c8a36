"""The one interface every way of sending implements, and the outcome it reports.

A messenger is an async context manager (it opens connections on enter and closes them on exit)
with ``send(message) -> Outcome``. It never raises for one message's failure: that is an
:class:`Outcome` (sent, transient, permanent); it raises :class:`DeliveryError` only when it can
deliver nothing at all (bad credentials), which stops the pipeline.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal, Protocol

from sendwise.delivery.mime import OutgoingMessage

Status = Literal["sent", "transient", "permanent"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str = ""
    """The server's answer (never a credential)."""
    retry_after: float | None = None
    """Seconds the server asked us to wait (HTTP 429), if it said."""


SENT = Outcome("sent")


class Messenger(Protocol):
    name: str
    concurrency: int
    """How many sends the pipeline may have in flight at once."""
    idempotent: bool
    """True when sending the same key twice delivers it once (the outbox): after a crash the
    pipeline can hand over every in-flight message again without a duplicate."""

    async def __aenter__(self) -> Messenger: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def send(self, message: OutgoingMessage) -> Outcome: ...


class RateLimiter:
    """A token bucket: at most ``rate`` acquisitions per second on average, bursts up to one
    second's worth. ``rate=None`` never waits."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.tokens = rate or 0.0
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        if self.rate is None:
            return
        async with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)
