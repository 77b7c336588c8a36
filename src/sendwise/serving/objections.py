"""Who objects to profiling, as the serving plane reads it: the latest ``profiling`` change of
the customer record in the store's consent ledger (sendwise.privacy.ledger) is ``withdrawn``.

Each answer is kept ``seconds`` (``serving.objection_seconds``) in a bounded LRU, like the
snapshot pointer: an objection recorded now holds for every live read within that time, with
one indexed ledger read per customer and period instead of one per request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from sendwise.serving.cache import MISSING, Lru

PROFILING = "profiling"
NOTE = "objects to profiling: no scores, generic recommendations"


class Objections:
    def __init__(
        self,
        consents: Any,
        *,
        seconds: float = 5.0,
        size: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consents = consents
        self.seconds = seconds
        self.clock = clock
        self.cache = Lru(size)

    def objects(self, customer_id: str) -> bool:
        """True when the customer's objection to profiling is in force."""
        now = self.clock()
        hit = self.cache.get(customer_id)
        if hit is not MISSING and now - hit[0] <= self.seconds:
            return bool(hit[1])
        found = self.consents.in_force(customer_id, None, purpose=PROFILING) == "withdrawn"
        self.cache.put(customer_id, (now, found))
        return found

    def objects_many(self, customer_ids: Sequence[str]) -> dict[str, bool]:
        """:meth:`objects` of many customers, those not cached read in one ledger read."""
        now, out, todo = self.clock(), {}, []
        for cid in dict.fromkeys(customer_ids):
            hit = self.cache.get(cid)
            if hit is not MISSING and now - hit[0] <= self.seconds:
                out[cid] = bool(hit[1])
            else:
                todo.append(cid)
        if todo:
            status = self.consents.in_force_many(todo, purpose=PROFILING)
            for cid in todo:
                out[cid] = status.get(cid) == "withdrawn"
                self.cache.put(cid, (now, out[cid]))
        return out
