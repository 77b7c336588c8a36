"""Serving snapshots in the store (SQLite, PostgreSQL): written by version, switched in one
UPDATE, read in single statements so that a reader sees one version whole.

A publish writes every row of a new version (status ``writing``; readers never look at it),
then :meth:`SqlSnapshots.switch` marks it ``ready`` and points ``snapshot_current`` at it in one
transaction. A profile read joins ``snapshot_current`` in the same statement, so it sees the old
version or the new one, never a mix; the version it read is handed to the next reads (the
recommendations, the products) and stays readable until ``keep`` newer versions exist
(docs/adr/0100-serving-snapshots.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, select, update

from sendwise.store.schema import (
    snapshot,
    snapshot_current,
    snapshot_product,
    snapshot_profile,
    snapshot_recommendation,
    snapshot_segment_member,
    snapshot_similar,
)
from sendwise.store.sql_records import chunks
from sendwise.store.sql_snapshot_reads import _CURRENT, SnapshotReads

if TYPE_CHECKING:
    from sendwise.store.connection import Store

PARTS = {
    "profile": snapshot_profile,
    "segment_member": snapshot_segment_member,
    "recommendation": snapshot_recommendation,
    "product": snapshot_product,
    "similar": snapshot_similar,
}
"""The row tables of a version, by the name :meth:`SqlSnapshots.write` takes."""


@dataclass(frozen=True)
class SnapshotInfo:
    version: int
    status: str
    created_at: datetime
    published_at: datetime | None
    as_of: datetime | None
    data_end: datetime | None
    customers: int
    meta: dict[str, Any]


def _info(row: Any) -> SnapshotInfo:
    return SnapshotInfo(**{k: row[k] for k in SnapshotInfo.__dataclass_fields__})


class SqlSnapshots(SnapshotReads):
    """Writing, switching and pruning versions (here); reading them (:class:`SnapshotReads`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- writing ---------------------------------------------------------------------------

    def begin(
        self, *, at: datetime, as_of: datetime | None, data_end: datetime | None, meta: dict
    ) -> int:
        """A new version, ``writing`` (invisible to readers); its number."""
        with self.store.begin() as conn:
            newest = conn.execute(select(func.max(snapshot.c.version))).scalar()
            version = int(newest or 0) + 1
            conn.execute(
                snapshot.insert().values(
                    version=version,
                    status="writing",
                    created_at=at,
                    as_of=as_of,
                    data_end=data_end,
                    customers=0,
                    meta=meta,
                )
            )
        return version

    def write(self, version: int, part: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert rows of a version still being written (chunks of one transaction each)."""
        table = PARTS[part]
        for chunk in chunks(rows, 2000):
            with self.store.begin() as conn:
                conn.execute(table.insert(), [{**r, "version": version} for r in chunk])
        return len(rows)

    def switch(
        self, version: int, *, customers: int, at: datetime, meta: dict | None = None
    ) -> int | None:
        """Make ``version`` the one readers see, in one transaction (its ``meta`` completed,
        when given); the version it replaced."""
        values: dict[str, Any] = {"status": "ready", "published_at": at, "customers": customers}
        if meta is not None:
            values["meta"] = meta
        with self.store.begin() as conn:
            conn.execute(
                update(snapshot)
                .where(snapshot.c.version == version, snapshot.c.status == "writing")
                .values(**values)
            )
            old = conn.execute(
                select(snapshot_current.c.version).where(snapshot_current.c.id == 1)
            ).scalar()
            if old is None:
                conn.execute(
                    snapshot_current.insert().values(id=1, version=version, switched_at=at)
                )
            else:
                conn.execute(
                    update(snapshot_current)
                    .where(snapshot_current.c.id == 1)
                    .values(version=version, switched_at=at)
                )
        return None if old is None else int(old)

    def discard(self, version: int) -> None:
        """Drop a version that failed before its switch (never the current one)."""
        if self.current_version() == version:
            return
        self._delete([version])

    def prune(self, keep: int) -> list[int]:
        """Delete every version but the current one and the ``keep`` newest ready ones;
        versions still ``writing`` (another publish) are left alone. Returns those deleted."""
        current = self.current_version()
        with self.store.begin() as conn:
            rows = conn.execute(
                select(snapshot.c.version, snapshot.c.status).order_by(snapshot.c.version.desc())
            ).all()
        ready = [int(v) for v, s in rows if s == "ready"]
        kept = set(ready[: max(keep, 1)]) | ({current} if current is not None else set())
        newest_kept = max(kept, default=0)
        doomed = [
            int(v) for v, s in rows if int(v) not in kept and (s != "writing" or v < newest_kept)
        ]
        self._delete(doomed)
        return sorted(doomed)

    def _delete(self, versions: Sequence[int]) -> None:
        if not versions:
            return
        for table in (*PARTS.values(), snapshot):
            with self.store.begin() as conn:
                conn.execute(delete(table).where(table.c.version.in_(list(versions))))

    # --- reading ---------------------------------------------------------------------------

    def current_version(self) -> int | None:
        with self.store.begin() as conn:
            v = conn.execute(_CURRENT).scalar()
        return None if v is None else int(v)

    def info(self, version: int | None = None) -> SnapshotInfo | None:
        """A version's description (the current one without ``version``)."""
        s = snapshot.c
        query = select(snapshot)
        if version is None:
            query = query.join(
                snapshot_current,
                and_(snapshot_current.c.id == 1, s.version == snapshot_current.c.version),
            )
        else:
            query = query.where(s.version == version)
        with self.store.begin() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else _info(row)

    def versions(self) -> list[SnapshotInfo]:
        with self.store.begin() as conn:
            rows = conn.execute(select(snapshot).order_by(snapshot.c.version)).mappings().all()
        return [_info(r) for r in rows]

    def profile(self, customer_id: str) -> dict[str, Any] | None:
        """The customer's row of the current version (with its ``version``), in one statement."""
        p = snapshot_profile.c
        query = (
            select(snapshot_profile)
            .join(
                snapshot_current,
                and_(snapshot_current.c.id == 1, p.version == snapshot_current.c.version),
            )
            .where(p.customer_id == customer_id)
        )
        with self.store.begin() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else dict(row)
