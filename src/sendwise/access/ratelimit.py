"""A token bucket per API key: ``rate`` requests a second on average, ``burst`` seconds' worth
at once. In-process: with several service processes each enforces its share (a key's rate is
per process; docs/adr/0110-api-keys.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        default_rate: float,
        *,
        burst_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default_rate = default_rate
        self.burst_seconds = burst_seconds
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str, rate: float | None = None, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens of the key's bucket: 0.0 when allowed, else the seconds to wait
        before the request would be."""
        rate = rate or self.default_rate
        capacity = max(rate * self.burst_seconds, cost)
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens >= cost:
                self._buckets[key_id] = (tokens - cost, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (cost - tokens) / rate
