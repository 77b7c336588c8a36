"""What the console shows of the warehouse's loads, copied at publish time.

The serving plane never opens the warehouse, so publish copies the little the console's data
page needs into the snapshot's metadata: the newest loads (``ingest_log``) and, for each
(table, rule) the rejected rows were refused by, how many and a few sample rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sendwise.serving.export import plain

if TYPE_CHECKING:
    from sendwise.warehouse.connection import Warehouse

LOADS = 20
SAMPLES = 3
RAW_CHARS = 500


def data_digest(wh: Warehouse) -> dict[str, Any]:
    """{"loads": [...newest first], "rejects": [{target, rule, rows, samples}]}."""
    out: dict[str, Any] = {"loads": [], "rejects": []}
    if wh.has_table("ingest_log"):
        log = wh.table("ingest_log")
        rows = log.order_by(log.started_at.desc()).limit(LOADS).to_pyarrow().to_pylist()
        out["loads"] = [{k: plain(v) for k, v in r.items() if k != "sha256"} for r in rows]
    if wh.has_table("reject"):
        rej = wh.table("reject")
        counts = (
            rej.group_by(["target", "rule"])
            .aggregate(rows=rej.count())
            .order_by([lambda t: t.rows.desc(), "target", "rule"])
            .limit(50)
            .to_pyarrow()
            .to_pylist()
        )
        for c in counts:
            pick = rej.filter((rej.target == c["target"]) & (rej.rule == c["rule"]))
            samples = (
                pick.order_by(["source", "line"])
                .select("source", "line", "reason", "raw")
                .limit(SAMPLES)
                .to_pyarrow()
                .to_pylist()
            )
            for s in samples:
                s["raw"] = str(s["raw"])[:RAW_CHARS]
            out["rejects"].append(
                {**c, "samples": [{k: plain(v) for k, v in s.items()} for s in samples]}
            )
    return out
