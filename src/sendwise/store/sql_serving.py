"""SQLAlchemy repositories of the serving plane: API keys, the intake event log, watermarks."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from sendwise.store.repositories import INTAKE_FIELDS, LINKING, ApiKeyRecord
from sendwise.store.schema import api_key, intake_event, watermark

if TYPE_CHECKING:
    from sendwise.store.connection import Store

INTAKE_COLUMNS = ("seq", *INTAKE_FIELDS)


def first_of_each(events: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[int]]:
    """The events whose ``message_id`` is first in the call, and the index of each."""
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    index: list[int] = []
    for i, e in enumerate(events):
        if e["message_id"] in seen:
            continue
        seen.add(e["message_id"])
        rows.append({f: e.get(f) for f in INTAKE_FIELDS})
        index.append(i)
    return rows, index


@functools.cache
def _for_customer(anonymous: bool, since: bool) -> Any:
    """The read of ``for_customer``, built once per shape: building a SELECT of every column
    costs more than running it (the live profile reads it on every request)."""
    e = intake_event.c
    who = e.customer_id == bindparam("c")
    if anonymous:
        who = or_(who, e.anonymous_id.in_(bindparam("anon", expanding=True)))
    query = select(intake_event).where(who)
    if since:
        query = query.where(e.received_at > bindparam("since"))
    return query.order_by(e.seq.desc()).limit(bindparam("n"))


@functools.cache
def _for_customers(since: bool, types: bool) -> Any:
    """The read of ``for_customers``: each customer's newest ``n`` events (a row number per
    customer, newest first), in ``seq`` order."""
    e = intake_event.c
    rank = func.row_number().over(partition_by=e.customer_id, order_by=e.seq.desc())
    inner = select(intake_event, rank.label("rank_")).where(
        e.customer_id.in_(bindparam("ids", expanding=True))
    )
    if since:
        inner = inner.where(e.received_at > bindparam("since"))
    if types:
        inner = inner.where(e.type.in_(bindparam("types", expanding=True)))
    ranked = inner.subquery()
    columns = [ranked.c[name] for name in INTAKE_COLUMNS]
    return select(*columns).where(ranked.c.rank_ <= bindparam("n")).order_by(ranked.c.seq)


FOR_CUSTOMERS_CHUNK = 500
"""Customers per statement of ``for_customers`` (bound parameters stay well under SQLite's
limit)."""


class SqlApiKeys:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, record: ApiKeyRecord) -> bool:
        k = api_key.c
        with self.store.begin() as conn:
            taken = conn.execute(
                select(k.key_id).where(or_(k.name == record.name, k.key_id == record.key_id))
            ).first()
            if taken is not None:
                return False
            conn.execute(api_key.insert().values(**record.__dict__))
        return True

    def get(self, key_id: str) -> ApiKeyRecord | None:
        with self.store.begin() as conn:
            row = conn.execute(select(api_key).where(api_key.c.key_id == key_id)).mappings().first()
        return None if row is None else ApiKeyRecord(**row)

    def all(self) -> list[ApiKeyRecord]:
        query = select(api_key).order_by(api_key.c.created_at, api_key.c.name)
        with self.store.begin() as conn:
            return [ApiKeyRecord(**row) for row in conn.execute(query).mappings()]

    def revoke(self, name: str, at: datetime) -> bool:
        k = api_key.c
        query = update(api_key).where(k.name == name, k.revoked_at.is_(None)).values(revoked_at=at)
        with self.store.begin() as conn:
            return bool(conn.execute(query).rowcount)


JSON_COLUMNS = ("properties", "traits", "context")


def _pg_append_query() -> Any:
    """PostgreSQL: the whole batch as ONE json parameter, unpacked by the server. An executemany
    with RETURNING binds 13 parameters a row into one statement that psycopg re-parses on every
    call (about 3,000 rows/s); this takes 9,000 to 18,000 (measured on the 2-core machine)."""
    kinds: dict[str, str] = {}
    for name in INTAKE_FIELDS:
        kinds[name] = "json" if name in JSON_COLUMNS else "text"
        if name.endswith("_at"):
            kinds[name] = "timestamp"
    names = ", ".join(kinds)
    typed = ", ".join(f"{name} {kind}" for name, kind in kinds.items())
    return text(
        f"INSERT INTO intake_event ({names}) SELECT {names}"
        f" FROM json_to_recordset(CAST(:rows AS json)) AS x({typed})"
        " ON CONFLICT (message_id) DO NOTHING RETURNING message_id"
    )


PG_APPEND = _pg_append_query()


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class SqlIntake:
    def __init__(self, store: Store) -> None:
        self.store = store

    def append(self, events: Sequence[Mapping[str, Any]]) -> list[bool]:
        rows, index = first_of_each(events)
        new = [False] * len(events)
        if not rows:
            return new
        if self.store.is_sqlite:
            query = (
                sqlite.insert(intake_event)
                .on_conflict_do_nothing(index_elements=["message_id"])
                .returning(intake_event.c.message_id)
            )
            with self.store.begin() as conn:
                stored = set(conn.execute(query, rows).scalars())
        else:
            payload = json.dumps([{k: _plain(v) for k, v in row.items()} for row in rows])
            with self.store.begin() as conn:
                stored = set(conn.execute(PG_APPEND, {"rows": payload}).scalars())
        for row, i in zip(rows, index, strict=True):
            new[i] = row["message_id"] in stored
        return new

    def since(self, seq: int, limit: int) -> list[dict[str, Any]]:
        e = intake_event.c
        query = select(intake_event).where(e.seq > seq).order_by(e.seq).limit(limit)
        with self.store.begin() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def for_customer(
        self,
        customer_id: str,
        *,
        since: datetime | None = None,
        anonymous_ids: Sequence[str] = (),
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        query = _for_customer(bool(anonymous_ids), since is not None)
        params: dict[str, Any] = {"c": customer_id, "n": limit}
        if anonymous_ids:
            params["anon"] = list(anonymous_ids)
        if since is not None:
            params["since"] = since
        with self.store.begin() as conn:
            rows = [dict(row) for row in conn.execute(query, params).mappings()]
        return rows[::-1]

    def for_customers(
        self,
        customer_ids: Sequence[str],
        *,
        since: datetime | None = None,
        types: Sequence[str] | None = None,
        limit: int = 500,
    ) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {c: [] for c in customer_ids}
        wanted = list(found)
        if limit <= 0 or (types is not None and not types):
            return found
        query = _for_customers(since is not None, types is not None)
        with self.store.begin() as conn:
            for start in range(0, len(wanted), FOR_CUSTOMERS_CHUNK):
                params: dict[str, Any] = {
                    "ids": wanted[start : start + FOR_CUSTOMERS_CHUNK],
                    "n": limit,
                }
                if since is not None:
                    params["since"] = since
                if types is not None:
                    params["types"] = list(types)
                for row in conn.execute(query, params).mappings():
                    found[row["customer_id"]].append(dict(row))
        return found

    def max_seq(self) -> int:
        with self.store.begin() as conn:
            return int(conn.execute(select(func.max(intake_event.c.seq))).scalar() or 0)

    def links(self, anonymous_ids: Sequence[str]) -> dict[str, str]:
        e = intake_event.c
        wanted = sorted(set(anonymous_ids))
        found: dict[str, str] = {}
        with self.store.begin() as conn:
            for start in range(0, len(wanted), 500):
                query = (
                    select(e.anonymous_id, e.user_id)
                    .where(
                        e.anonymous_id.in_(wanted[start : start + 500]),
                        e.user_id.is_not(None),
                        e.type.in_(LINKING),
                    )
                    .order_by(e.seq)
                )
                for anon, user in conn.execute(query):
                    found.setdefault(anon, user)
        return found


class SqlWatermarks:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, name: str) -> int:
        with self.store.begin() as conn:
            found = conn.execute(select(watermark.c.seq).where(watermark.c.name == name)).scalar()
        return int(found or 0)

    def set(self, name: str, seq: int, at: datetime) -> None:
        dialect = sqlite if self.store.is_sqlite else postgresql
        query = dialect.insert(watermark).values(name=name, seq=seq, updated_at=at)
        query = query.on_conflict_do_update(
            index_elements=["name"], set_={"seq": seq, "updated_at": at}
        )
        with self.store.begin() as conn:
            conn.execute(query)
