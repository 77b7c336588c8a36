"""The reads of serving snapshots and the open-time slot choices (SQLite, PostgreSQL): the
service's hot path, each one statement built once (see :mod:`sendwise.store.sql_snapshots`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, select

from sendwise.store.schema import (
    live_slot,
    snapshot_current,
    snapshot_product,
    snapshot_profile,
    snapshot_recommendation,
    snapshot_segment_member,
    snapshot_similar,
)

if TYPE_CHECKING:
    from sendwise.store.connection import Store

# The hot reads are built once: building a SELECT costs more than running it on SQLite.
_P, _R, _S, _D = (
    snapshot_profile.c,
    snapshot_recommendation.c,
    snapshot_similar.c,
    snapshot_product.c,
)
_CURRENT = select(snapshot_current.c.version).where(snapshot_current.c.id == 1)
_PROFILE_IN = select(
    _P.version, _P.customer_id, _P.profile, _P.scores, _P.segments, _P.reasons
).where(_P.version == bindparam("v"), _P.customer_id == bindparam("c"))
_PROFILES_IN = select(
    _P.version, _P.customer_id, _P.profile, _P.scores, _P.segments, _P.reasons
).where(_P.version == bindparam("v"), _P.customer_id.in_(bindparam("ids", expanding=True)))
_PROFILES_CHUNK = 500
"""Customer ids per statement of ``profiles_in`` (well under SQLite's bound-parameter limit)."""
_RECS = (
    select(_R.rank, _R.product_id, _R.score, _R.source)
    .where(_R.version == bindparam("v"), _R.customer_id == bindparam("c"))
    .order_by(_R.rank)
)
_RECS_IN = (
    select(_R.customer_id, _R.rank, _R.product_id, _R.score, _R.source)
    .where(_R.version == bindparam("v"), _R.customer_id.in_(bindparam("ids", expanding=True)))
    .order_by(_R.customer_id, _R.rank)
)
_PRODUCTS = select(_D.product_id, _D.data).where(
    _D.version == bindparam("v"), _D.product_id.in_(bindparam("ids", expanding=True))
)
_SIMILAR = select(_S.product_id, _S.other_id, _S.weight).where(
    _S.version == bindparam("v"), _S.product_id.in_(bindparam("ids", expanding=True))
)


class SnapshotReads:
    store: Store

    def profile_in(self, version: int, customer_id: str) -> dict[str, Any] | None:
        """The customer's row of a given version (with its ``version``)."""
        with self.store.begin() as conn:
            row = conn.execute(_PROFILE_IN, {"v": version, "c": customer_id}).mappings().first()
        return None if row is None else dict(row)

    def profiles_in(self, version: int, customer_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """:meth:`profile_in` of many customers in one read (chunks of 500 ids): the row of
        each one the version holds, by customer id; those it lacks are absent."""
        ids = list(dict.fromkeys(customer_ids))
        out: dict[str, dict[str, Any]] = {}
        if not ids:
            return out
        with self.store.begin() as conn:
            for start in range(0, len(ids), _PROFILES_CHUNK):
                params = {"v": version, "ids": ids[start : start + _PROFILES_CHUNK]}
                for v, c, prof, scores, segs, reasons in conn.execute(_PROFILES_IN, params):
                    out[c] = {"version": v, "customer_id": c, "profile": prof,
                              "scores": scores, "segments": segs, "reasons": reasons}  # fmt: skip
        return out

    def profiles(self, version: int, batch: int = 5000) -> Iterator[dict[str, Any]]:
        """customer_id, scores, segments of every customer of a version (for the changes)."""
        p = snapshot_profile.c
        after = ""
        while True:
            query = (
                select(p.customer_id, p.scores, p.segments)
                .where(p.version == version, p.customer_id > after)
                .order_by(p.customer_id)
                .limit(batch)
            )
            with self.store.begin() as conn:
                rows = conn.execute(query).mappings().all()
            yield from (dict(r) for r in rows)
            if len(rows) < batch:
                return
            after = rows[-1]["customer_id"]

    def recommendations(self, version: int, customer_id: str) -> list[dict[str, Any]]:
        with self.store.begin() as conn:
            rows = conn.execute(_RECS, {"v": version, "c": customer_id}).mappings()
            return [dict(x) for x in rows]

    def recommendations_in(
        self, version: int, customer_ids: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """:meth:`recommendations` of many customers in one read (chunks of 500 ids): every id
        asked for is a key, ``[]`` for a customer the version recommends nothing to."""
        ids = list(dict.fromkeys(customer_ids))
        out: dict[str, list[dict[str, Any]]] = {c: [] for c in ids}
        with self.store.begin() as conn:
            for start in range(0, len(ids), _PROFILES_CHUNK):
                params = {"v": version, "ids": ids[start : start + _PROFILES_CHUNK]}
                for row in conn.execute(_RECS_IN, params).mappings():
                    rec = dict(row)
                    out[rec.pop("customer_id")].append(rec)
        return out

    def products(self, version: int, product_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not product_ids:
            return {}
        ids = list(dict.fromkeys(product_ids))
        with self.store.begin() as conn:
            rows = conn.execute(_PRODUCTS, {"v": version, "ids": ids}).all()
        return {pid: dict(data) for pid, data in rows}

    def similar(self, version: int, product_ids: Sequence[str]) -> list[tuple[str, str, float]]:
        """(product, neighbour, similarity) of each of ``product_ids``."""
        if not product_ids:
            return []
        ids = list(dict.fromkeys(product_ids))
        with self.store.begin() as conn:
            rows = conn.execute(_SIMILAR, {"v": version, "ids": ids}).all()
        return [(a, b, float(w)) for a, b, w in rows]

    def members(self, version: int, segment: str, *, after: str, limit: int) -> list[str]:
        """Customer ids of a segment after ``after``, in id order (keyset paging)."""
        m = snapshot_segment_member.c
        query = (
            select(m.customer_id)
            .where(m.version == version, m.segment == segment, m.customer_id > after)
            .order_by(m.customer_id)
            .limit(limit)
        )
        with self.store.begin() as conn:
            return [str(x) for x in conn.execute(query).scalars()]

    # --- open-time content -----------------------------------------------------------------

    def slot(self, message_key: str, slot: int) -> dict[str, Any] | None:
        s = live_slot.c
        query = select(live_slot).where(s.message_key == message_key, s.slot == slot)
        with self.store.begin() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else dict(row)

    def choose_slot(
        self, message_key: str, slot: int, *, customer_id: str, product_id: str, at: datetime
    ) -> str:
        """Remember the product of a (message, slot) unless one is already; the product kept
        (the first choice wins, so the image and the click of a message agree)."""
        row = {
            "message_key": message_key,
            "slot": slot,
            "customer_id": customer_id,
            "product_id": product_id,
            "chosen_at": at,
        }
        with self.store.begin() as conn:
            conn.execute(self.store.insert_ignore(live_slot), [row])
        kept = self.slot(message_key, slot)
        return product_id if kept is None else str(kept["product_id"])
