"""Bringing validated rows into the warehouse, written in Ibis so it runs on any backend.

For each row: its references must point at stored rows (an order's customer, a line's order
and product); then its key decides. A new key is inserted. A stored row with identical content
is left alone (so loading a file twice changes nothing). A stored row with other content is
replaced for dimension tables (customer, product: the newest export wins) and rejected for fact
tables (orders, events, ...), naming the columns that differ, so history is never rewritten.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import ibis
import pyarrow as pa

from sendwise.warehouse.schema import ORDER, ORDER_LINE, TableSpec

if TYPE_CHECKING:
    from sendwise.warehouse.connection import Warehouse


@dataclass
class MergeCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0


def merge(
    wh: Warehouse,
    spec: TableSpec,
    ok: str,
    rejects: str,
    *,
    only_new: bool = False,
    patch: bool = False,
) -> MergeCounts:
    """Merge engine table ``ok`` into ``spec``'s warehouse table; append rejects (_k, target,
    rule, reason) to engine table ``rejects``."""
    counts = MergeCounts()
    with wh.staged(ok) as rows:
        rows = _drop_bad_references(wh, spec, rows, rejects, counts)
        stored = wh.table(spec.name)
        # Rows with new keys go straight in; only rows whose key is stored need comparing.
        known = rows.semi_join(stored, list(spec.key))
        overlap = int(known.count().execute())
        total = int(rows.count().execute())
        if overlap:
            name = f"_sw_merge_{uuid.uuid4().hex[:10]}"
            classified = wh.scratch_table(name, _classify(spec, known, stored, patch))
            try:
                _apply_known(wh, spec, classified, rejects, counts, only_new)
            finally:
                wh.con.drop_table(name, force=True)
        counts.inserted = total - overlap
        if counts.inserted:
            fresh = rows.anti_join(stored, list(spec.key)) if overlap else rows
            wh.insert(spec, fresh)
    return counts


def _drop_bad_references(
    wh: Warehouse, spec: TableSpec, rows: ibis.Table, rejects: str, counts: MergeCounts
) -> ibis.Table:
    lit = ibis.literal
    bad = []
    for ref in spec.references:
        known = wh.table(ref.table)[ref.target]
        col = rows[ref.column]
        bad.append(
            rows.filter(col.notnull() & ~col.isin(known)).select(
                "_k",
                target=lit(spec.name),
                rule=lit("reference"),
                reason=lit(f"{ref.column}: ") + col + lit(f" is not a known {ref.table}"),
            )
        )
    if not bad:
        return rows
    refused = ibis.union(*bad, distinct=False) if len(bad) > 1 else bad[0]
    # One reason per row even when several references fail.
    first = ibis.row_number().over(group_by=refused._k, order_by=[refused.reason])
    refused = refused.mutate(_n=first).filter(lambda t: t._n == 0).drop("_n")
    n = _append(wh, refused, rejects)
    counts.rejected += n
    return rows.anti_join(refused, "_k") if n else rows


def _classify(spec: TableSpec, rows: ibis.Table, stored: ibis.Table, patch: bool) -> ibis.Table:
    """Rows whose key is stored, marked 'same' or 'changed' with the columns that differ.

    Derived columns (filled by sendwise after loading) keep their stored value; with ``patch``
    so does every column the new row leaves empty."""
    others = [c for c in spec.column_names if c not in spec.key]
    old = stored.select(*spec.key, **{f"_old_{c}": stored[c] for c in others})
    joined = rows.inner_join(old, list(spec.key))
    value = {c: joined[c] for c in spec.key}
    for c in others:
        new, before = joined[c], joined[f"_old_{c}"]
        value[c] = before if c in spec.derived else (new.coalesce(before) if patch else new)
    equal = [value[c].identical_to(joined[f"_old_{c}"]) for c in others]
    diff = [ibis.ifelse(eq, None, c) for eq, c in zip(equal, others, strict=True)]
    return joined.select(
        *[value[c].name(c) for c in spec.column_names],
        "_k",
        _state=ibis.ifelse(ibis.and_(*equal), "same", "changed"),
        _diff=ibis.array(diff).filter(lambda x: x.notnull()).join(", "),
    )


def _apply_known(
    wh: Warehouse,
    spec: TableSpec,
    rows: ibis.Table,
    rejects: str,
    counts: MergeCounts,
    only_new: bool,
) -> None:
    stats = rows.group_by("_state").agg(n=rows.count()).to_pyarrow().to_pylist()
    by_state = {r["_state"]: int(r["n"]) for r in stats}
    counts.unchanged = by_state.get("same", 0)
    changed = by_state.get("changed", 0)
    if changed and only_new:
        counts.unchanged += changed
    elif changed and spec.upsert:
        replaced = rows.filter(rows._state == "changed")
        wh.delete_keys(spec, replaced)
        wh.insert(spec, replaced)
        counts.updated = changed
    elif changed:
        conflicts = rows.filter(rows._state == "changed").select(
            "_k",
            target=ibis.literal(spec.name),
            rule=ibis.literal("conflict"),
            reason=ibis.literal("already stored with other values in: ") + rows._diff,
        )
        counts.rejected += _append(wh, conflicts, rejects)


def _append(wh: Warehouse, refused: ibis.Table, rejects: str) -> int:
    """Copy warehouse-side rejects into the engine's rejects table; return how many."""
    data = refused.select("_k", "target", "rule", "reason").to_pyarrow()
    if data.num_rows:
        wh.engine.register("_sw_refused", data)
        wh.engine.execute(f"INSERT INTO {rejects} SELECT * FROM _sw_refused")
        wh.engine.unregister("_sw_refused")
    return data.num_rows


def new_keys(wh: Warehouse, spec: TableSpec, ok: str) -> pa.Table:
    """``_k`` and key of the valid rows of engine table ``ok`` whose key is not stored yet."""
    with wh.staged(ok) as rows:
        fresh = rows.anti_join(wh.table(spec.name), list(spec.key))
        return fresh.select("_k", *spec.key).to_pyarrow()


def drop_orders_without_lines(
    wh: Warehouse, orders: pa.Table, named: pa.Table, rejects: str
) -> int:
    """Reject the orders of this load (new ones, ``orders``: _k, order_id) that the file gave
    lines for (``named``: order_id) but that ended up with no stored line, every line of theirs
    having been rejected: such an order would otherwise stay ``completed`` with a value of 0 and
    count as a purchase. An order the file gives no line for is left alone (its lines may come
    in another file). Returns how many were dropped."""
    if orders.num_rows == 0 or named.num_rows == 0:
        return 0
    lines = wh.table(ORDER_LINE.name)
    with wh.staged(orders) as loaded, wh.staged(named) as with_lines:
        empty = loaded.semi_join(with_lines, "order_id").anti_join(lines, "order_id").to_pyarrow()
    if empty.num_rows == 0:
        return 0
    with wh.staged(empty) as gone:
        wh.delete_keys(ORDER, gone)
        refused = gone.select(
            "_k",
            target=ibis.literal(ORDER.name),
            rule=ibis.literal("no_lines"),
            reason=ibis.literal("order ")
            + gone.order_id
            + ibis.literal(": every line of it was rejected (see the order_line rejects)"),
        )
        _append(wh, refused, rejects)
    return empty.num_rows
