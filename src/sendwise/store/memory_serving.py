"""In-memory fakes of the serving plane's repositories (see :mod:`sendwise.store.memory`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sendwise.store.repositories import LINKING, ApiKeyRecord
from sendwise.store.sql_serving import first_of_each


class MemoryApiKeys:
    def __init__(self) -> None:
        self.rows: dict[str, ApiKeyRecord] = {}

    def add(self, record: ApiKeyRecord) -> bool:
        if record.key_id in self.rows or any(r.name == record.name for r in self.rows.values()):
            return False
        self.rows[record.key_id] = record
        return True

    def get(self, key_id: str) -> ApiKeyRecord | None:
        return self.rows.get(key_id)

    def all(self) -> list[ApiKeyRecord]:
        return sorted(self.rows.values(), key=lambda r: (r.created_at, r.name))

    def revoke(self, name: str, at: datetime) -> bool:
        for key_id, r in self.rows.items():
            if r.name == name and r.revoked_at is None:
                self.rows[key_id] = replace(r, revoked_at=at)
                return True
        return False


class MemoryIntake:
    def __init__(self) -> None:
        self.log: list[dict[str, Any]] = []
        self.ids: set[str] = set()

    def append(self, events: Sequence[Mapping[str, Any]]) -> list[bool]:
        rows, index = first_of_each(events)
        new = [False] * len(events)
        for row, i in zip(rows, index, strict=True):
            if row["message_id"] in self.ids:
                continue
            self.ids.add(row["message_id"])
            self.log.append({"seq": len(self.log) + 1, **row})
            new[i] = True
        return new

    def since(self, seq: int, limit: int) -> list[dict[str, Any]]:
        return [dict(r) for r in self.log[seq : seq + limit]]

    def for_customer(
        self,
        customer_id: str,
        *,
        since: datetime | None = None,
        anonymous_ids: Sequence[str] = (),
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        anonymous = set(anonymous_ids)
        found = [
            dict(r)
            for r in self.log
            if (r["customer_id"] == customer_id or r["anonymous_id"] in anonymous)
            and (since is None or r["received_at"] > since)
        ]
        return found[-limit:] if limit else []

    def for_customers(
        self,
        customer_ids: Sequence[str],
        *,
        since: datetime | None = None,
        types: Sequence[str] | None = None,
        limit: int = 500,
    ) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {c: [] for c in customer_ids}
        for r in self.log:
            if r["customer_id"] not in found or (types is not None and r["type"] not in types):
                continue
            if since is None or r["received_at"] > since:
                found[r["customer_id"]].append(dict(r))
        return {c: (rows[-limit:] if limit > 0 else []) for c, rows in found.items()}

    def max_seq(self) -> int:
        return len(self.log)

    def links(self, anonymous_ids: Sequence[str]) -> dict[str, str]:
        wanted = set(anonymous_ids)
        found: dict[str, str] = {}
        for r in self.log:
            anon, user = r["anonymous_id"], r["user_id"]
            if anon in wanted and user and r["type"] in LINKING and anon not in found:
                found[anon] = user
        return found


class MemoryWatermarks:
    def __init__(self) -> None:
        self.rows: dict[str, int] = {}

    def get(self, name: str) -> int:
        return self.rows.get(name, 0)

    def set(self, name: str, seq: int, at: datetime) -> None:
        self.rows[name] = seq
