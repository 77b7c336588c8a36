"""The in-memory fake of the snapshot repository (:class:`sendwise.store.sql_snapshots.
SqlSnapshots`): the same behaviour over dicts, checked by the same tests
(tests/test_serving_snapshots.py runs on it, SQLite and PostgreSQL). A lock makes each call
atomic, as one statement is on a database."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sendwise.errors import StoreError
from sendwise.store.sql_snapshots import PARTS, SnapshotInfo

KEYS = {
    "profile": ("customer_id",),
    "segment_member": ("segment", "customer_id"),
    "recommendation": ("customer_id", "rank"),
    "product": ("product_id",),
    "similar": ("product_id", "rank"),
}


class MemorySnapshots:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.infos: dict[int, dict[str, Any]] = {}
        self.rows: dict[int, dict[str, dict[tuple, dict[str, Any]]]] = {}
        self.current: int | None = None
        self.slots: dict[tuple[str, int], dict[str, Any]] = {}

    def begin(
        self, *, at: datetime, as_of: datetime | None, data_end: datetime | None, meta: dict
    ) -> int:
        with self.lock:
            version = max(self.infos, default=0) + 1
            self.infos[version] = dict(
                version=version, status="writing", created_at=at, published_at=None,
                as_of=as_of, data_end=data_end, customers=0, meta=copy.deepcopy(meta),
            )  # fmt: skip
            self.rows[version] = {part: {} for part in PARTS}
        return version

    def write(self, version: int, part: str, rows: Sequence[Mapping[str, Any]]) -> int:
        with self.lock:
            table = self.rows[version][part]
            for r in rows:
                key = tuple(r[k] for k in KEYS[part])
                if key in table:
                    raise StoreError(f"memory store: duplicate {part} row {key}")
                table[key] = {**copy.deepcopy(dict(r)), "version": version}
        return len(rows)

    def switch(
        self, version: int, *, customers: int, at: datetime, meta: dict | None = None
    ) -> int | None:
        with self.lock:
            info = self.infos[version]
            if info["status"] == "writing":
                info.update(status="ready", published_at=at, customers=customers)
                if meta is not None:
                    info["meta"] = copy.deepcopy(meta)
            old, self.current = self.current, version
        return old

    def discard(self, version: int) -> None:
        with self.lock:
            if version != self.current:
                self._delete([version])

    def prune(self, keep: int) -> list[int]:
        with self.lock:
            newest = sorted(self.infos, reverse=True)
            ready = [v for v in newest if self.infos[v]["status"] == "ready"]
            kept = set(ready[: max(keep, 1)]) | ({self.current} if self.current else set())
            top = max(kept, default=0)
            doomed = [
                v
                for v in newest
                if v not in kept and (self.infos[v]["status"] != "writing" or v < top)
            ]
            self._delete(doomed)
        return sorted(doomed)

    def _delete(self, versions: Sequence[int]) -> None:
        for v in versions:
            self.infos.pop(v, None)
            self.rows.pop(v, None)

    def current_version(self) -> int | None:
        return self.current

    def info(self, version: int | None = None) -> SnapshotInfo | None:
        with self.lock:
            v = self.current if version is None else version
            found = self.infos.get(v) if v is not None else None
            return None if found is None else SnapshotInfo(**copy.deepcopy(found))

    def versions(self) -> list[SnapshotInfo]:
        with self.lock:
            return [SnapshotInfo(**copy.deepcopy(self.infos[v])) for v in sorted(self.infos)]

    def _part(self, version: int | None, part: str) -> dict[tuple, dict[str, Any]]:
        return self.rows.get(version, {}).get(part, {}) if version is not None else {}

    def profile(self, customer_id: str) -> dict[str, Any] | None:
        with self.lock:
            return self.profile_in(self.current, customer_id) if self.current else None

    def profile_in(self, version: int, customer_id: str) -> dict[str, Any] | None:
        with self.lock:
            row = self._part(version, "profile").get((customer_id,))
            return None if row is None else copy.deepcopy(row)

    def profiles_in(self, version: int, customer_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self.lock:
            part = self._part(version, "profile")
            found = ((c, part.get((c,))) for c in dict.fromkeys(customer_ids))
            return {c: copy.deepcopy(row) for c, row in found if row is not None}

    def profiles(self, version: int, batch: int = 5000) -> Iterator[dict[str, Any]]:
        with self.lock:
            rows = sorted(self._part(version, "profile").values(), key=lambda r: r["customer_id"])
            out = [{k: copy.deepcopy(r[k]) for k in ("customer_id", "scores", "segments")}
                   for r in rows]  # fmt: skip
        yield from out

    def full_rows(self, version: int) -> Iterator[dict[str, Any]]:
        """Every profile row whole (the console's in-memory columns are built from them)."""
        with self.lock:
            rows = sorted(self._part(version, "profile").values(), key=lambda r: r["customer_id"])
            out = [copy.deepcopy(r) for r in rows]
        yield from out

    def recommendations_in(
        self, version: int, customer_ids: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        return {c: self.recommendations(version, c) for c in dict.fromkeys(customer_ids)}

    def recommendations(self, version: int, customer_id: str) -> list[dict[str, Any]]:
        with self.lock:
            rows = [r for (c, _), r in self._part(version, "recommendation").items()
                    if c == customer_id]  # fmt: skip
            return [{k: r[k] for k in ("rank", "product_id", "score", "source")}
                    for r in sorted(rows, key=lambda r: r["rank"])]  # fmt: skip

    def products(self, version: int, product_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with self.lock:
            table = self._part(version, "product")
            return {p: copy.deepcopy(table[(p,)]["data"]) for p in product_ids if (p,) in table}

    def similar(self, version: int, product_ids: Sequence[str]) -> list[tuple[str, str, float]]:
        wanted = set(product_ids)
        with self.lock:
            return [(r["product_id"], r["other_id"], float(r["weight"]))
                    for r in self._part(version, "similar").values()
                    if r["product_id"] in wanted]  # fmt: skip

    def members(self, version: int, segment: str, *, after: str, limit: int) -> list[str]:
        with self.lock:
            ids = sorted(c for (s, c) in self._part(version, "segment_member") if s == segment)
        return [c for c in ids if c > after][:limit]

    def slot(self, message_key: str, slot: int) -> dict[str, Any] | None:
        with self.lock:
            found = self.slots.get((message_key, slot))
            return None if found is None else dict(found)

    def choose_slot(
        self, message_key: str, slot: int, *, customer_id: str, product_id: str, at: datetime
    ) -> str:
        with self.lock:
            row = self.slots.setdefault(
                (message_key, slot),
                {"message_key": message_key, "slot": slot, "customer_id": customer_id,
                 "product_id": product_id, "chosen_at": at},
            )  # fmt: skip
            return str(row["product_id"])
