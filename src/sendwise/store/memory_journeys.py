"""The in-memory fake of the journey repository (see :mod:`sendwise.store.journeys`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sendwise.store.journeys import OPEN, STEP_FIELDS, JourneyRecord, JourneyState, LastEntry


class MemoryJourneys:
    def __init__(self) -> None:
        self.defs: dict[str, list[JourneyRecord]] = {}
        self.rows: dict[str, JourneyState] = {}
        self.log: dict[str, dict[str, Any]] = {}

    def save(self, name: str, definition: Mapping[str, Any], at: datetime) -> int:
        old = self.defs.setdefault(name, [])
        status = old[-1].status if old else "active"
        old.append(JourneyRecord(name, len(old) + 1, status, dict(definition), at))
        return len(old)

    def get(self, name: str, version: int | None = None) -> JourneyRecord | None:
        found = self.defs.get(name, [])
        if version:
            return next((r for r in found if r.version == version), None)
        return found[-1] if found else None

    def all(self) -> list[JourneyRecord]:
        return [v[-1] for _, v in sorted(self.defs.items())]

    def set_status(self, name: str, status: str, at: datetime) -> bool:
        if name not in self.defs:
            return False
        self.defs[name] = [replace(r, status=status) for r in self.defs[name]]
        return True

    def last_entries(self, journey: str, customer_ids: Sequence[str]) -> dict[str, LastEntry]:
        wanted, out = set(customer_ids), dict[str, LastEntry]()
        for x in sorted(self.rows.values(), key=lambda r: r.entry):
            if x.journey == journey and x.customer_id in wanted:
                old = out.get(x.customer_id)
                is_open = x.status in OPEN or (old is not None and old.open)
                out[x.customer_id] = LastEntry(x.entry, x.entered_at, is_open)  # type: ignore[arg-type]
        return out

    def enter(self, states: Sequence[JourneyState]) -> int:
        keys = {x.entry_key for x in self.rows.values()}
        slots = {(x.journey, x.customer_id, x.entry) for x in self.rows.values()}
        n = 0
        for x in states:
            slot = (x.journey, x.customer_id, x.entry)
            if x.state_id in self.rows or x.entry_key in keys or slot in slots:
                continue
            self.rows[x.state_id] = replace(x)
            keys.add(x.entry_key)
            slots.add(slot)
            n += 1
        return n

    def claim_due(
        self, journey: str, *, now: datetime, limit: int, owner: str, lease_until: datetime
    ) -> list[JourneyState]:
        due = sorted(
            (x for x in self.rows.values()
             if x.journey == journey and x.due_at is not None and x.due_at <= now),
            key=lambda x: (x.due_at, x.state_id),
        )[:limit]  # fmt: skip
        out = []
        for x in due:
            x.status, x.lease_owner, x.lease_until, x.due_at = (
                "running",
                owner,
                lease_until,
                lease_until,
            )
            out.append(replace(x))
        return sorted(out, key=lambda x: (x.customer_id, x.entry))

    def save_states(
        self, states: Sequence[JourneyState], steps: Sequence[Mapping[str, Any]], *, owner: str
    ) -> int:
        for r in steps:
            self.log.setdefault(str(r["step_key"]), {f: r.get(f) for f in STEP_FIELDS})
        n = 0
        for x in states:
            cur = self.rows.get(x.state_id)
            if cur is None or cur.lease_owner != owner or cur.status != "running":
                continue
            self.rows[x.state_id] = replace(x, lease_owner=None, lease_until=None,
                                            holdout=cur.holdout)  # fmt: skip
            n += 1
        return n

    def waiting_for(
        self, event: str, customer_ids: Sequence[str], journeys: Sequence[str]
    ) -> list[JourneyState]:
        wanted, names = set(customer_ids), set(journeys)
        return [replace(x) for x in self.rows.values()
                if x.customer_id in wanted and x.journey in names and x.waiting_for == event
                and x.status in ("waiting", "running")]  # fmt: skip

    def wake(self, state_ids: Sequence[str], event: str, at: datetime) -> int:
        n = 0
        for sid in state_ids:
            x = self.rows.get(sid)
            if x is not None and x.waiting_for == event and x.status == "waiting":
                x.waiting_for, x.due_at, x.wake_at, x.updated_at = None, at, at, at
                n += 1
        return n

    def exit(
        self,
        journey: str,
        customer_ids: Sequence[str],
        reason: str,
        at: datetime,
        *,
        converted: Mapping[str, float | None] | None = None,
    ) -> int:
        converted = converted or {}
        wanted = set(customer_ids) | set(converted)
        n = 0
        for x in self.rows.values():
            if x.journey == journey and x.customer_id in wanted and x.status in OPEN:
                x.status, x.exit_reason, x.due_at, x.finished_at = "exited", reason, None, at
                x.updated_at, x.lease_owner, x.lease_until = at, None, None
                if x.customer_id in converted:
                    x.converted_at, x.goal_value = at, converted[x.customer_id]
                n += 1
        return n

    def states(self, journey: str, customer_id: str | None = None) -> list[JourneyState]:
        return sorted(
            (replace(x) for x in self.rows.values()
             if x.journey == journey and customer_id in (None, x.customer_id)),
            key=lambda x: (x.customer_id, x.entry),
        )  # fmt: skip

    def counts(self, journey: str) -> list[tuple[str | None, str, str | None, bool, int]]:
        c = Counter(
            (x.step, x.status, x.exit_reason, x.holdout)
            for x in self.rows.values()
            if x.journey == journey
        )
        return sorted(((*k, n) for k, n in c.items()), key=lambda r: (r[1], r[0] or "", r[2] or ""))

    def step_log(self, journey: str) -> list[dict[str, Any]]:
        rows = [r for r in self.log.values() if r["journey"] == journey]
        return sorted(rows, key=lambda r: (r["at"], r["step_key"]))
