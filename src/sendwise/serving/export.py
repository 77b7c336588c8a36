"""What a publish takes from the warehouse: profile rows, recommendations, the catalogue,
item-item neighbours, the popular products and what the live scorer needs.

Only this module (and :mod:`sendwise.serving.scorer_meta`) read the warehouse for the serving
plane; everything after the publish reads the store.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from sendwise.warehouse.profile_columns import PREDICTIONS

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.warehouse.connection import Warehouse

SCORES = tuple(c for c in PREDICTIONS if c != "top_reasons")
PRODUCT_FIELDS = ("name", "category", "price", "url", "image_url", "in_stock")
SKIPPED = {"segments", "as_of", "top_reasons", "top_products"}


def plain(value: Any) -> Any:
    """A JSON-safe value: NaN and NaT are null, times are ISO 8601, numpy scalars Python's."""
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def segments_of(row: dict[str, Any]) -> list[str]:
    """The rule segments (``segments``, '; '-joined) and the RFM segment of a profile row."""
    names = [s.strip() for s in str(row.get("segments") or "").split(";") if s.strip()]
    rfm = row.get("rfm_segment")
    if rfm and rfm not in names:
        names.append(str(rfm))
    return names


def _batches(wh: Warehouse, table: str, size: int) -> Iterator[list[dict[str, Any]]]:
    """A warehouse table's rows, ``size`` at a time: the table is read once as Arrow
    (columnar, compact) and only a slice at a time becomes Python rows."""
    data = wh.table(table).to_pyarrow()
    for start in range(0, data.num_rows, size):
        yield data.slice(start, size).to_pylist()


def profile_types(wh: Warehouse) -> dict[str, pa.DataType]:
    """The Arrow type of each column of the warehouse's ``profile`` table."""
    schema = wh.table("profile").schema().to_pyarrow()
    return {field.name: field.type for field in schema}


def profile_row(row: dict[str, Any]) -> dict[str, Any]:
    """A warehouse profile row as a ``snapshot_profile`` row."""
    fields = {
        k: plain(v)
        for k, v in row.items()
        if k not in SKIPPED and k not in SCORES and not k.startswith("seg_")
    }
    return {
        "customer_id": str(row["customer_id"]),
        "profile": fields,
        "scores": {k: plain(row.get(k)) for k in SCORES},
        "segments": segments_of(row),
        "reasons": [str(r) for r in (row.get("top_reasons") or [])],
    }


def profile_batches(
    wh: Warehouse, size: int = 20_000
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """(profile rows, segment member rows) for the snapshot tables, a batch at a time."""
    for rows in _batches(wh, "profile", size):
        profiles = [profile_row(r) for r in rows]
        members = [
            {"segment": s, "customer_id": p["customer_id"]} for p in profiles for s in p["segments"]
        ]
        yield profiles, members


def recommendation_batches(wh: Warehouse, size: int = 100_000) -> Iterator[list[dict[str, Any]]]:
    if not wh.has_table("recommendation"):
        return
    for rows in _batches(wh, "recommendation", size):
        yield [
            {
                "customer_id": str(r["customer_id"]),
                "rank": int(r["rank"]),
                "product_id": str(r["product_id"]),
                "score": plain(r["score"]),
                "source": r["source"],
            }
            for r in rows
        ]


def product_rows(wh: Warehouse) -> list[dict[str, Any]]:
    t = wh.table("product")
    cols = [c for c in PRODUCT_FIELDS if c in t.columns]
    rows = t.select("product_id", *cols).to_pyarrow().to_pylist()
    return [
        {"product_id": str(r["product_id"]), "data": {c: plain(r[c]) for c in cols}} for r in rows
    ]


def data_end(wh: Warehouse) -> datetime | None:
    """The newest order or event the warehouse holds: live fields count what came after."""
    row = wh.query("last_activity").to_pylist()[0]
    times = [t for t in (row["last_order"], row["last_event"]) if t is not None]
    return max(times) if times else None


def neighbours(
    wh: Warehouse, settings: Settings, as_of: datetime
) -> tuple[list[dict[str, Any]], list[str]]:
    """(item-item neighbour rows, product ids by popularity): bought-together plus half of
    viewed-together cosine similarity, ``settings.serving.neighbours`` per product."""
    from sendwise.recommend.cooccur import CoOccurrence
    from sendwise.recommend.data import load_interactions

    cfg = settings.recommend
    data = load_interactions(wh, cfg, as_of)
    k = settings.serving.neighbours
    bought = CoOccurrence("bought", neighbours=k, threads=cfg.threads).fit(data).similarity_
    viewed = CoOccurrence("viewed", neighbours=k, threads=cfg.threads).fit(data).similarity_
    # similarity_ columns are "what leads to j": rows of the transpose are "from i"
    sim = sp.csr_matrix((bought + 0.5 * viewed).T)
    products = data.products
    rows: list[dict[str, Any]] = []
    for i in range(sim.shape[0]):
        a, b = sim.indptr[i], sim.indptr[i + 1]
        if a == b:
            continue
        order = np.argsort(-sim.data[a:b], kind="stable")[:k]
        for rank, j in enumerate(order, start=1):
            rows.append(
                {
                    "product_id": str(products[i]),
                    "rank": rank,
                    "other_id": str(products[sim.indices[a + j]]),
                    "weight": float(sim.data[a + j]),
                }
            )
    buyers = (
        np.asarray(data.bought.sum(axis=0)).ravel()
        + 0.1 * np.asarray(data.viewed.sum(axis=0)).ravel()
    )
    popular = [str(products[j]) for j in np.argsort(-buyers, kind="stable")[:100]]
    return rows, popular
