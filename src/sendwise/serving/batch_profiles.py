"""Live profiles shared by the reads of one journey batch (docs/adr/0129).

A journey's due steps read each customer's live profile for their facts, then the live
renderer reads it again for the message's tokens and its recommendations. :class:`BatchProfiles`
reads those of many customers together (:meth:`Serving.live_profiles
<sendwise.serving.service.Serving.live_profiles>`) and keeps each ``seconds`` (30 by default),
so the facts' read (always fresh) serves the renderer's too: a message is rendered from the
live profile its step ran with, unless that is older than ``seconds`` (a message held back by
caps or quiet hours, a worker tick of many batches): then, or for a customer it never read, it
reads again. Marketing consent is checked at the send as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from sendwise.errors import NotFoundError
from sendwise.serving.cache import MISSING, Lru


class BatchProfiles:
    def __init__(
        self,
        serving: Any,
        *,
        seconds: float = 30.0,
        size: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.serving, self.seconds, self.clock = serving, seconds, clock
        self.cache = Lru(size)

    def get_many(self, customer_ids: Sequence[str], *, fresh: bool = False) -> dict[str, Any]:
        """The live profile of each customer that has one (absent: unknown to the snapshot
        and the events, or nothing published), read together for those not kept (for all of
        them when ``fresh``: the journey's facts read so, the renderer reuses what they read)."""
        now, out, todo = self.clock(), {}, []
        for cid in dict.fromkeys(customer_ids):
            hit: Any = MISSING if fresh else self.cache.get(cid)
            if hit is not MISSING and now - hit[0] <= self.seconds:
                if hit[1] is not None:
                    out[cid] = hit[1]
            else:
                todo.append(cid)
        if todo:
            try:
                found = self.serving.live_profiles(todo)
            except NotFoundError:  # nothing published: no one has a live profile
                found = {}
            for cid in todo:
                self.cache.put(cid, (now, found.get(cid)))
            out.update(found)
        return out

    def get(self, customer_id: str) -> Any:
        """The customer's live profile, or None."""
        return self.get_many([customer_id]).get(customer_id)

    def clear(self) -> None:
        with self.cache.lock:
            self.cache.data.clear()
