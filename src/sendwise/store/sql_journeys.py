"""SQLAlchemy repository of journeys (SQLite and PostgreSQL): see :mod:`sendwise.store.journeys`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, func, insert, select, update

from sendwise.store.journeys import (
    OPEN,
    STATE_FIELDS,
    STEP_FIELDS,
    JourneyRecord,
    JourneyState,
    LastEntry,
)
from sendwise.store.schema import journey as journey_table
from sendwise.store.schema import journey_state, journey_step
from sendwise.store.sql_records import chunks

if TYPE_CHECKING:
    from sendwise.store.connection import Store

j, s = journey_table.c, journey_state.c
STATE_COLS = [getattr(s, f) for f in STATE_FIELDS]
WRITTEN = ("step", "seq", "status", "due_at", "wake_at", "waiting_for", "arm", "exit_reason",
           "updated_at", "finished_at")  # fmt: skip


def _state(row: Any) -> JourneyState:
    return JourneyState(**{f: row[i] for i, f in enumerate(STATE_FIELDS)})


class SqlJourneys:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- definitions ---------------------------------------------------------------------
    def save(self, name: str, definition: Mapping[str, Any], at: datetime) -> int:
        with self.store.begin() as conn:
            row = conn.execute(
                select(j.version, j.status).where(j.name == name).order_by(j.version.desc())
            ).first()
            version, status = (1, "active") if row is None else (int(row[0]) + 1, str(row[1]))
            conn.execute(insert(journey_table), dict(
                name=name, version=version, status=status, definition=dict(definition),
                created_at=at))  # fmt: skip
        return version

    def get(self, name: str, version: int | None = None) -> JourneyRecord | None:
        query = select(j.name, j.version, j.status, j.definition, j.created_at).where(
            j.name == name
        )
        query = query.where(j.version == version) if version else query.order_by(j.version.desc())
        with self.store.begin() as conn:
            row = conn.execute(query.limit(1)).first()
        return None if row is None else JourneyRecord(*row)

    def all(self) -> list[JourneyRecord]:
        newest = select(j.name, func.max(j.version).label("v")).group_by(j.name).subquery()
        query = (
            select(j.name, j.version, j.status, j.definition, j.created_at)
            .join(newest, and_(newest.c.name == j.name, newest.c.v == j.version))
            .order_by(j.name)
        )
        with self.store.begin() as conn:
            return [JourneyRecord(*r) for r in conn.execute(query).all()]

    def set_status(self, name: str, status: str, at: datetime) -> bool:
        with self.store.begin() as conn:
            stmt = update(journey_table).where(j.name == name).values(status=status)
            return bool(conn.execute(stmt).rowcount)

    # -- states --------------------------------------------------------------------------
    def last_entries(self, journey: str, customer_ids: Sequence[str]) -> dict[str, LastEntry]:
        out: dict[str, LastEntry] = {}
        with self.store.begin() as conn:
            for part in chunks(sorted(set(customer_ids))):
                query = select(s.customer_id, s.entry, s.entered_at, s.status).where(
                    s.journey == journey, s.customer_id.in_(part)
                )
                for cid, entry, entered, status in conn.execute(query):
                    old = out.get(cid)
                    is_open = status in OPEN or (old is not None and old.open)
                    if old is None or entry > old.entry:
                        out[cid] = LastEntry(int(entry), entered, is_open)
                    elif is_open:
                        out[cid] = LastEntry(old.entry, old.entered_at, True)
        return out

    def enter(self, states: Sequence[JourneyState]) -> int:
        if not states:
            return 0
        stmt = self.store.insert_ignore(journey_state).returning(s.state_id)
        with self.store.begin() as conn:
            n = 0
            for part in chunks([x.row() for x in states], 2000):
                n += len(conn.execute(stmt, list(part)).all())
        return n

    def claim_due(
        self, journey: str, *, now: datetime, limit: int, owner: str, lease_until: datetime
    ) -> list[JourneyState]:
        due = (
            select(s.state_id)
            .where(s.journey == journey, s.due_at <= now)
            .order_by(s.due_at, s.state_id)
            .limit(limit)
        )
        if not self.store.is_sqlite:
            due = due.with_for_update(skip_locked=True)
        stmt = (
            update(journey_state)
            .where(s.state_id.in_(due.scalar_subquery()))
            .values(
                status="running", lease_owner=owner, lease_until=lease_until, due_at=lease_until
            )
            .returning(*STATE_COLS)
        )
        with self.store.begin() as conn:
            rows = [_state(r) for r in conn.execute(stmt).all()]
        rows.sort(key=lambda x: (x.customer_id, x.entry))
        return rows

    def save_states(
        self, states: Sequence[JourneyState], steps: Sequence[Mapping[str, Any]], *, owner: str
    ) -> int:
        back = (
            update(journey_state)
            .where(s.state_id == bindparam("k"), s.lease_owner == owner, s.status == "running")
            .values(**{f: bindparam(f"v_{f}") for f in WRITTEN}, lease_owner=None, lease_until=None)
        )
        rows = [{"k": x.state_id, **{f"v_{f}": getattr(x, f) for f in WRITTEN}} for x in states]
        log = [{f: r.get(f) for f in STEP_FIELDS} for r in steps]
        with self.store.begin() as conn:
            for part in chunks(log, 2000):
                conn.execute(self.store.insert_ignore(journey_step), list(part))
            if not rows:
                return 0
            return int(conn.execute(back, rows).rowcount)

    def waiting_for(
        self, event: str, customer_ids: Sequence[str], journeys: Sequence[str]
    ) -> list[JourneyState]:
        out: list[JourneyState] = []
        if not journeys:
            return out
        with self.store.begin() as conn:
            for part in chunks(sorted(set(customer_ids))):
                query = select(*STATE_COLS).where(
                    s.customer_id.in_(part),
                    s.journey.in_(list(journeys)),
                    s.waiting_for == event,
                    s.status.in_(("waiting", "running")),
                )
                out += [_state(r) for r in conn.execute(query).all()]
        return out

    def wake(self, state_ids: Sequence[str], event: str, at: datetime) -> int:
        n = 0
        with self.store.begin() as conn:
            for part in chunks(list(state_ids)):
                stmt = (
                    update(journey_state)
                    .where(s.state_id.in_(part), s.waiting_for == event, s.status == "waiting")
                    .values(waiting_for=None, due_at=at, wake_at=at, updated_at=at)
                )
                n += conn.execute(stmt).rowcount
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
        n = 0
        base = dict(status="exited", exit_reason=reason, due_at=None, finished_at=at,
                    updated_at=at, lease_owner=None, lease_until=None)  # fmt: skip
        where = (s.journey == journey, s.status.in_(OPEN))
        with self.store.begin() as conn:
            plain = [c for c in set(customer_ids) if c not in converted]
            for part in chunks(sorted(plain)):
                stmt = update(journey_state).where(*where, s.customer_id.in_(part))
                n += conn.execute(stmt.values(**base)).rowcount
            for cid, value in converted.items():
                stmt = update(journey_state).where(*where, s.customer_id == cid)
                values = {**base, "converted_at": at, "goal_value": value}
                n += conn.execute(stmt.values(**values)).rowcount
        return n

    def states(self, journey: str, customer_id: str | None = None) -> list[JourneyState]:
        query = select(*STATE_COLS).where(s.journey == journey)
        if customer_id is not None:
            query = query.where(s.customer_id == customer_id)
        with self.store.begin() as conn:
            rows = [_state(r) for r in conn.execute(query.order_by(s.customer_id, s.entry))]
        return rows

    def counts(self, journey: str) -> list[tuple[str | None, str, str | None, bool, int]]:
        query = (
            select(s.step, s.status, s.exit_reason, s.holdout, func.count())
            .where(s.journey == journey)
            .group_by(s.step, s.status, s.exit_reason, s.holdout)
        )
        with self.store.begin() as conn:
            rows = conn.execute(query).all()
        return sorted(
            ((a, str(b), c, bool(d), int(e)) for a, b, c, d, e in rows),
            key=lambda r: (r[1], r[0] or "", r[2] or ""),
        )

    def step_log(self, journey: str) -> list[dict[str, Any]]:
        t = journey_step.c
        cols = [getattr(t, f) for f in STEP_FIELDS]
        with self.store.begin() as conn:
            rows = conn.execute(
                select(*cols).where(t.journey == journey).order_by(t.at, t.step_key)
            )
            return [dict(zip(STEP_FIELDS, r, strict=True)) for r in rows]
