"""Caching the snapshot reads of the service: a version's rows never change, so they can be
kept in memory by (version, key) with no invalidation; only the pointer to the current version
moves, and it is re-read at most every ``pointer_seconds`` (a new snapshot is served within
that time, a whole version either way).

The intake event log is never cached: live fields are read fresh on every request.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

MISSING = object()
PARTS = ("profile", "scores", "segments", "reasons")


class CachedRow:
    """A snapshot profile row kept as JSON text: one string per customer rather than a
    hundred objects, so that a full cache costs the garbage collector nothing to traverse
    (a dict per row made the service's p99 ten times its p90), and the answer reuses it."""

    __slots__ = ("customer_id", "json", "version")

    def __init__(self, row: dict[str, Any]) -> None:
        self.version = int(row["version"])
        self.customer_id = str(row["customer_id"])
        body = json.dumps({k: row[k] for k in PARTS}, separators=(",", ":"), allow_nan=False)
        self.json = body[1:-1]
        """``"profile":{...},"scores":{...},"segments":[...],"reasons":[...]``"""

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads("{" + self.json + "}")
        out.update(version=self.version, customer_id=self.customer_id)
        return out


class Lru:
    """A bounded mapping dropping the least recently used entry (thread-safe)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[Hashable, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        with self.lock:
            value = self.data.get(key, MISSING)
            if value is not MISSING:
                self.data.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self.lock:
            self.data[key] = value
            self.data.move_to_end(key)
            while len(self.data) > self.size:
                self.data.popitem(last=False)


def _cached(lru: Lru, version: int, keys: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """The values of ``keys`` (without repeats) cached for ``version``, and the keys not cached
    in their order."""
    found: dict[str, Any] = {}
    todo: list[str] = []
    for key in dict.fromkeys(keys):
        value = lru.get((version, key))
        if value is MISSING:
            todo.append(key)
        else:
            found[key] = value
    return found, todo


class CachedSnapshots:
    """The reads :class:`~sendwise.serving.service.Serving` makes, through the caches."""

    def __init__(
        self,
        snaps: Any,
        *,
        rows: int = 50_000,
        pointer_seconds: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.snaps = snaps
        self.pointer_seconds = pointer_seconds
        self.clock = clock
        self._pointer: tuple[float, int | None] = (-1e18, None)
        self.profiles = Lru(rows)
        self.recs = Lru(rows)
        self.similar_ = Lru(rows)
        self.products_ = Lru(rows)

    def current_version(self, *, fresh: bool = False) -> int | None:
        at, version = self._pointer
        now = self.clock()
        if fresh or now - at > self.pointer_seconds:
            version = self.snaps.current_version()
            self._pointer = (now, version)
        return version

    def profile(self, customer_id: str) -> CachedRow | None:
        """The customer's row of the current version (None: not in it)."""
        version = self.current_version()
        if version is None:
            return None
        row = self.profiles.get((version, customer_id))
        if row is MISSING:
            row = self.snaps.profile_in(version, customer_id)
            if row is None:  # perhaps a newer version knows them, or this one was pruned
                newest = self.current_version(fresh=True)
                if newest != version and newest is not None:
                    version, row = newest, self.snaps.profile_in(newest, customer_id)
            cached = None if row is None else CachedRow(row)
            self.profiles.put((version, customer_id), cached)
            return cached
        return row

    def profiles_many(self, customer_ids: Sequence[str]) -> dict[str, CachedRow | None]:
        """:meth:`profile` of many customers, those not cached read in one statement (and
        those the current version lacks looked for once more in a newer one, as there)."""
        version = self.current_version()
        if version is None:
            return dict.fromkeys(customer_ids)
        out, todo = _cached(self.profiles, version, customer_ids)
        if not todo:
            return out
        found = self.snaps.profiles_in(version, todo)
        lacking = [c for c in todo if c not in found]
        if lacking:
            newest = self.current_version(fresh=True)
            if newest != version and newest is not None:
                more = self.snaps.profiles_in(newest, lacking)
                for cid in lacking:
                    row = more.get(cid)
                    cached = None if row is None else CachedRow(row)
                    self.profiles.put((newest, cid), cached)
                    out[cid] = cached
                todo = [c for c in todo if c in found]
        for cid in todo:
            row = found.get(cid)
            out[cid] = None if row is None else CachedRow(row)
            self.profiles.put((version, cid), out[cid])
        return out

    def recommendations(self, version: int, customer_id: str) -> list[dict[str, Any]]:
        found = self.recs.get((version, customer_id))
        if found is MISSING:
            found = self.snaps.recommendations(version, customer_id)
            self.recs.put((version, customer_id), found)
        return found

    def recommendations_many(
        self, version: int, customer_ids: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """:meth:`recommendations` of many customers, those not cached in one read."""
        out, todo = _cached(self.recs, version, customer_ids)
        if todo:
            read = self.snaps.recommendations_in(version, todo)
            for cid in todo:
                out[cid] = read.get(cid, [])
                self.recs.put((version, cid), out[cid])
        return out

    def similar(self, version: int, product_ids: Sequence[str]) -> list[tuple[str, str, float]]:
        out: list[tuple[str, str, float]] = []
        todo = []
        for p in product_ids:
            hit = self.similar_.get((version, p))
            if hit is MISSING:
                todo.append(p)
            else:
                out.extend(hit)
        if todo:
            rows = self.snaps.similar(version, todo)
            by: dict[str, list[tuple[str, str, float]]] = {p: [] for p in todo}
            for row in rows:
                by[row[0]].append(row)
            for p, hits in by.items():
                self.similar_.put((version, p), hits)
                out.extend(hits)
        return out

    def products(self, version: int, product_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        todo = []
        for p in dict.fromkeys(product_ids):
            hit = self.products_.get((version, p))
            if hit is MISSING:
                todo.append(p)
            elif hit is not None:
                out[p] = hit
        if todo:
            found = self.snaps.products(version, todo)
            for p in todo:
                self.products_.put((version, p), found.get(p))
            out.update(found)
        return out
