"""The tokens of each customer, read from the warehouse in bulk.

``profile`` gives identity (``customer.*``), features (``profile.*``), scores (``scores.*``) and
segments; ``recommendation`` joined to ``product`` gives ``recommendations``. Score columns the
profile table does not have yet are added as typed nulls, so rules and templates over them fall
back instead of failing. Customers with fewer recommendations than the template shows (or none,
or no ``recommendation`` table at all) get the shop's bestsellers: the in-stock products sold in
the largest quantities, then the newest products when nothing was sold yet.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from sendwise.errors import NotFoundError
from sendwise.segments.rules import SEPARATOR
from sendwise.warehouse.content_queries import has_table
from sendwise.warehouse.profile_columns import IDENTITY, PREDICTIONS

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.warehouse.connection import Warehouse

PROFILE, RECOMMENDATION = "profile", "recommendation"
SCORES = PREDICTIONS  # the `scores` token group: the profile's prediction columns
PRODUCT_FIELDS = ("id", "name", "price", "currency", "url", "image_url", "category")
BESTSELLERS = 50
CHUNK = 5_000


def profile_table(wh: Warehouse) -> ir.Table:
    """The profile table with every score column, null where the predictions are not built."""
    if not has_table(wh, PROFILE):
        raise NotFoundError(
            "profile table", PROFILE, "build profiles first with `sendwise segment`"
        )
    t = wh.table(PROFILE)
    missing = {k: ibis.null().cast(v) for k, v in SCORES.items() if k not in t.schema()}
    return t.mutate(**missing) if missing else t


def bestsellers(wh: Warehouse, settings: Settings, limit: int = BESTSELLERS) -> list[dict]:
    """The fallback recommendations: top in-stock products by units sold, then the newest."""
    product = wh.table("product")
    product = product.filter(product.in_stock.fill_null(True))
    lines = wh.table("order_line")
    sold = lines.group_by("product_id").aggregate(units=lines.quantity.sum())
    ranked = product.left_join(sold, product.product_id == sold.product_id)
    ranked = ranked.order_by(
        [ibis.desc(ranked.units.fill_null(0)), ibis.desc(ranked.created_at), ranked.product_id]
    ).limit(limit)
    rows = ranked.select(*_product_columns(ranked)).to_pyarrow().to_pylist()
    return [product_token(r, settings) for r in rows]


def _product_columns(t: ir.Table) -> list[Any]:
    return [t.product_id, t.name, t.price, t.url, t.image_url, t.category]


def product_token(row: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """A product as templates see it; a missing url links to the shop, never to nothing."""
    shop = settings.content.shop
    price = row.get("price")
    return {
        "id": row["product_id"],
        "name": blank_to_none(row.get("name")) or "A product we think you will like",
        "price": None if price is None or math.isnan(price) else price,
        "currency": shop.currency,
        "url": blank_to_none(row.get("url")) or shop.url,
        "image_url": blank_to_none(row.get("image_url")),
        "category": blank_to_none(row.get("category")),
    }


def recommendations_for(
    wh: Warehouse, settings: Settings, ids: list[str], n: int
) -> dict[str, list[dict]]:
    """customer -> up to ``n`` recommended in-stock products, in rank order (may be short)."""
    if n == 0 or not has_table(wh, RECOMMENDATION):
        return {}
    ids_table = ibis.memtable(pa.table({"customer_id": pa.array(ids, pa.string())}))
    return group_recommendations(recommendations_expr(wh, ids_table, n).to_pyarrow(), settings, n)


def recommendations_expr(wh: Warehouse, ids: ir.Table, n: int) -> ir.Table:
    """The in-stock recommendations of the customers in ``ids`` (a ``customer_id`` table),
    ranks up to ``2 n`` (room for those out of stock), by customer and rank."""
    rec = wh.table(RECOMMENDATION)
    rec = rec.filter(rec["rank"] <= n * 2).join(ids, "customer_id")
    product = wh.table("product")
    joined = rec.join(product, rec.product_id == product.product_id)
    joined = joined.filter(joined.in_stock.fill_null(True))
    cols = [joined.customer_id, joined["rank"], *_product_columns(joined)]
    return joined.select(*cols).order_by(["customer_id", "rank"])


def group_recommendations(rows: pa.Table, settings: Settings, n: int) -> dict[str, list[dict]]:
    """customer -> its first ``n`` products, from :func:`recommendations_expr`'s rows."""
    out: dict[str, list[dict]] = {}
    for row in rows.to_pylist():
        picks = out.setdefault(row["customer_id"], [])
        if len(picks) < n:
            picks.append(product_token(row, settings))
    return out


def blank_to_none(value: Any) -> Any:
    """Text that is empty or only spaces is a missing value, so that fallbacks apply to it."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def split_row(row: dict[str, Any], slot_columns: dict[str, str]) -> dict[str, Any]:
    """One profile row as the token groups: customer, profile, scores, segments, slots (the
    definition; :class:`~sendwise.content.reader.TokenRows` gives the same for a whole chunk)."""
    customer = {k: blank_to_none(row.get(k)) for k in IDENTITY}
    scores = {k: blank_to_none(row.get(k)) for k in SCORES}
    if scores["top_reasons"] is None:
        scores["top_reasons"] = []
    skip = {*IDENTITY[1:], *SCORES, *slot_columns.values()}
    profile = {k: blank_to_none(v) for k, v in row.items() if k not in skip}
    segments = [s for s in (row.get("segments") or "").split(SEPARATOR) if s]
    slots = {name: row[col] for name, col in slot_columns.items()}
    return {
        "customer": customer,
        "profile": profile,
        "scores": scores,
        "segments": segments,
        "slots": slots,
    }
