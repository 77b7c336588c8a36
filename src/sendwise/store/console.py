"""The console's repositories: its users and the audit log (SQL and in-memory).

A user is a name, a role and an argon2 hash (hashing is the caller's: the store keeps text);
the audit log is append-only, newest first when read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select, update

from sendwise.store.schema import audit_log, console_user

if TYPE_CHECKING:
    from sendwise.store.connection import Store

ROLES = ("admin", "marketer", "viewer")


@dataclass(frozen=True)
class UserRecord:
    name: str
    role: str
    password_hash: str
    created_at: datetime
    disabled_at: datetime | None = None


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    user_name: str
    action: str
    target: str
    outcome: str
    detail: dict[str, Any]


class UserRepository(Protocol):
    def add(self, record: UserRecord) -> bool:
        """Store a new user; False (nothing written) when the name is taken."""

    def set_password(self, name: str, password_hash: str, role: str | None = None) -> bool: ...

    def get(self, name: str) -> UserRecord | None: ...

    def all(self) -> list[UserRecord]: ...


class AuditRepository(Protocol):
    def add(self, record: AuditRecord) -> None: ...

    def recent(self, limit: int = 100) -> list[AuditRecord]:
        """The newest ``limit`` entries, newest first."""


class SqlUsers:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, record: UserRecord) -> bool:
        with self.store.begin() as conn:
            found = conn.execute(
                select(console_user.c.name).where(console_user.c.name == record.name)
            ).first()
            if found is not None:
                return False
            conn.execute(console_user.insert().values(**record.__dict__))
        return True

    def set_password(self, name: str, password_hash: str, role: str | None = None) -> bool:
        values: dict[str, Any] = {"password_hash": password_hash}
        if role is not None:
            values["role"] = role
        query = update(console_user).where(console_user.c.name == name).values(**values)
        with self.store.begin() as conn:
            return bool(conn.execute(query).rowcount)

    def get(self, name: str) -> UserRecord | None:
        query = select(console_user).where(console_user.c.name == name)
        with self.store.begin() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else UserRecord(**row)

    def all(self) -> list[UserRecord]:
        with self.store.begin() as conn:
            rows = conn.execute(select(console_user).order_by(console_user.c.name)).mappings()
            return [UserRecord(**r) for r in rows]


class SqlAudit:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, record: AuditRecord) -> None:
        with self.store.begin() as conn:
            conn.execute(audit_log.insert().values(**record.__dict__))

    def recent(self, limit: int = 100) -> list[AuditRecord]:
        c = audit_log.c
        query = (
            select(c.at, c.user_name, c.action, c.target, c.outcome, c.detail)
            .order_by(c.audit_id.desc())
            .limit(limit)
        )
        with self.store.begin() as conn:
            return [AuditRecord(**r) for r in conn.execute(query).mappings()]


class MemoryUsers:
    def __init__(self) -> None:
        self.rows: dict[str, UserRecord] = {}

    def add(self, record: UserRecord) -> bool:
        if record.name in self.rows:
            return False
        self.rows[record.name] = record
        return True

    def set_password(self, name: str, password_hash: str, role: str | None = None) -> bool:
        old = self.rows.get(name)
        if old is None:
            return False
        self.rows[name] = UserRecord(
            name, role or old.role, password_hash, old.created_at, old.disabled_at
        )
        return True

    def get(self, name: str) -> UserRecord | None:
        return self.rows.get(name)

    def all(self) -> list[UserRecord]:
        return [self.rows[k] for k in sorted(self.rows)]


class MemoryAudit:
    def __init__(self) -> None:
        self.rows: list[AuditRecord] = []

    def add(self, record: AuditRecord) -> None:
        self.rows.append(record)

    def recent(self, limit: int = 100) -> list[AuditRecord]:
        return self.rows[::-1][:limit]


def snapshot_rows(store: Any, version: int, batch: int = 20_000) -> Any:
    """Every profile row of a snapshot version (customer_id, profile, scores, segments), in
    customer order, ``batch`` rows a statement: what the console's in-memory columns are built
    from (the in-memory fake's snapshots answer from their own rows)."""
    from sendwise.store.schema import snapshot_profile

    if not hasattr(store, "begin"):  # MemoryStore
        yield from store.snapshots.full_rows(version)
        return
    p = snapshot_profile.c
    after = ""
    while True:
        query = (
            select(p.customer_id, p.profile, p.scores, p.segments)
            .where(p.version == version, p.customer_id > after)
            .order_by(p.customer_id)
            .limit(batch)
        )
        with store.begin() as conn:
            rows = conn.execute(query).mappings().all()
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1]["customer_id"]


def campaign_list(store: Any) -> list[dict[str, Any]]:
    """Every campaign: campaign_id, name, status, created_at, newest first."""
    from sendwise.store.schema import campaign

    if not hasattr(store, "begin"):  # MemoryStore
        records = [r["record"] for r in store.campaigns.rows.values()]
        return [{"campaign_id": r.campaign_id, "name": r.name, "status": r.status,
                 "created_at": None} for r in records]  # fmt: skip
    c = campaign.c
    query = select(c.campaign_id, c.name, c.status, c.created_at).order_by(c.created_at.desc())
    with store.begin() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def campaign_counts(store: Any, campaign_id: str) -> dict[str, dict[str, int]]:
    """variant -> counts: messages by status (``planned:<status>``) and distinct messages with
    each email event type (human opens only for ``open``), aggregated in the database from
    two indexes alone (migration 0011, docs/adr/0156): about 100 ms of CPU at 300,000
    messages, whether or not the campaign was counted before."""
    out: dict[str, dict[str, int]] = {}
    if not hasattr(store, "begin"):  # MemoryStore
        for r in store.messages.rows.values():
            if r["campaign_id"] == campaign_id:
                c = out.setdefault(r["variant"], {})
                c[f"planned:{r['status']}"] = c.get(f"planned:{r['status']}", 0) + 1
        seen: set[tuple[str, str, str]] = set()
        for e in store.events.stored:
            if e["campaign_id"] != campaign_id or (e["type"] == "open" and e["is_machine"]):
                continue
            variant = e["variant"] or "?"
            if (variant, e["type"], e["message_id"]) not in seen:
                seen.add((variant, e["type"], e["message_id"]))
                c = out.setdefault(variant, {})
                c[e["type"]] = c.get(e["type"], 0) + 1
        return out
    by_status, by_type = count_queries(store, campaign_id)
    with store.begin() as conn:
        for variant, status, n in conn.execute(by_status):
            out.setdefault(variant, {})[f"planned:{status}"] = int(n)
        for variant, kind, n in conn.execute(by_type):
            out.setdefault(variant or "?", {})[kind] = int(n)
    return out


def count_queries(store: Any, campaign_id: str) -> tuple[Any, Any]:
    """The two GROUP BYs of :func:`campaign_counts`: (variant, status, messages) and
    (variant, event type, distinct messages)."""
    from sqlalchemy import and_, func, not_

    from sendwise.store.schema import email_event, message

    m, e = message.c, email_event.c
    # grouped in the order of the indexes' columns: read in index order, nothing sorted
    by_status = (
        select(m.variant, m.status, func.count())
        .where(m.campaign_id == campaign_id)
        .group_by(m.status, m.variant)
    )
    human = not_(and_(e.type == "open", e.is_machine.is_(True)))
    if store.is_sqlite:
        by_type = (
            select(e.variant, e.type, func.count(func.distinct(e.message_id)))
            .where(e.campaign_id == campaign_id, human)
            .group_by(e.type, e.variant)
        )
    else:  # PostgreSQL sorts for COUNT(DISTINCT); DISTINCT rows read the index in order
        found = (
            select(e.type, e.variant, e.message_id)
            .where(e.campaign_id == campaign_id, human)
            .distinct()
            .subquery()
        )
        f = found.c
        by_type = select(f.variant, f.type, func.count()).group_by(f.type, f.variant)
    return by_status, by_type


def event_day_counts(
    store: Any, types: Sequence[str]
) -> tuple[int, list[tuple[str, str, str, int]]]:
    """(the newest event ``seq``, [(day, campaign_id, type, events)]) of every stored email
    event of ``types`` up to that seq, machine opens left out, aggregated in the database: the
    console's overview starts from this and then reads only the events after that seq."""
    from sqlalchemy import Date, and_, cast, func, not_

    from sendwise.store.schema import email_event

    e = email_event.c
    with store.begin() as conn:
        top = conn.execute(select(func.max(e.seq))).scalar() or 0
        day = func.date(e.occurred_at) if store.is_sqlite else cast(e.occurred_at, Date)
        human = not_(and_(e.type == "open", e.is_machine.is_(True)))
        query = (
            select(day, e.campaign_id, e.type, func.count())
            .where(e.seq <= top, e.type.in_(list(types)), human)
            .group_by(day, e.campaign_id, e.type)
        )
        rows = [(str(d)[:10], str(c) if c is not None else "(none)", str(t), int(n))
                for d, c, t, n in conn.execute(query)]  # fmt: skip
    return int(top), rows
