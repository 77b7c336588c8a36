"""The category of every product: the shop's own, else the one sendwise derived.

``product_categories(table)`` is what every reader of categories uses (features, next-category,
recommendations): ``product_id, category, category_source`` where the source is ``shop`` (the
``product.category`` column) or ``derived`` (the ``product_category`` table, written by
:func:`derive_product_categories`). The shop's column is never overwritten: derived categories
live in their own table, so a shop that loads categories later gets them used at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa

from sendwise.catalog.derive import CategoryDeriver
from sendwise.warehouse.recommendations import replace_product_categories
from sendwise.warehouse.schema import PRODUCT_CATEGORY

if TYPE_CHECKING:
    from sendwise.config import CatalogSettings
    from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)


def product_categories(table: Callable[[str], ibis.Table]) -> ibis.Table:
    """``product_id, category, category_source`` for every product (``table``: a warehouse's
    ``con.table``). A backend without the ``product_category`` table (made before it existed)
    reads the shop's categories alone."""
    product = table("product")
    try:
        derived = table(PRODUCT_CATEGORY.name)
    except Exception:
        return product.select(
            "product_id",
            "category",
            category_source=ibis.ifelse(product.category.notnull(), "shop", None),
        )
    d = derived.select(derived.product_id.name("_pid"), _cat=derived.category, _src=derived.source)
    j = product.left_join(d, product.product_id == d._pid)
    return j.select(
        j.product_id,
        category=j.category.coalesce(j._cat),
        category_source=ibis.ifelse(j.category.notnull(), "shop", j._src),
    )


@dataclass
class CategoryBuild:
    derived: int
    """Products given a derived category (0 when the shop's own are used)."""
    categories: int
    shop_share: float
    """Share of products with a category of the shop's own."""
    reason: str


def derive_product_categories(wh: Warehouse, settings: CatalogSettings) -> CategoryBuild:
    """Derive categories for the products without one, when ``settings`` says so, and store
    them in ``product_category`` (replacing the previous derivation)."""
    product = wh.table("product")
    catalogue = product.select("product_id", "name", "description", "category").to_pandas()
    n = len(catalogue)
    shop_share = float(catalogue["category"].notna().mean()) if n else 0.0
    mode = settings.derive_categories
    if mode == "never" or n == 0 or (mode == "auto" and shop_share >= settings.min_category_share):
        replace_product_categories(wh, _rows(catalogue.iloc[:0], []))
        reason = (
            "derivation is off"
            if mode == "never"
            else "no products"
            if n == 0
            else f"{shop_share:.0%} of products have the shop's own category"
        )
        return CategoryBuild(0, int(catalogue["category"].nunique()), shop_share, reason)
    missing = catalogue[catalogue["category"].isna()]
    labels = CategoryDeriver(settings.categories, seed=settings.seed).fit_predict(missing)
    keep = labels.notna()
    rows = _rows(missing[keep], labels[keep].tolist())
    replace_product_categories(wh, rows)
    k = int(labels[keep].nunique())
    logger.info("derived %d categories for %d products", k, int(keep.sum()))
    return CategoryBuild(int(keep.sum()), k, shop_share, f"derived from names ({mode})")


def ensure_product_categories(wh: Warehouse, settings: CatalogSettings) -> CategoryBuild | None:
    """Derive categories when none are stored yet (``sendwise build`` re-derives every time;
    this is for the steps that can run on their own, such as ``sendwise recommend``)."""
    if wh.count(PRODUCT_CATEGORY.name) > 0 or settings.derive_categories == "never":
        return None
    return derive_product_categories(wh, settings)


def _rows(products: Any, labels: list[str]) -> pa.Table:
    now = datetime.now(UTC).replace(tzinfo=None)
    return pa.table(
        {
            "product_id": pa.array(products["product_id"].astype(str).tolist(), pa.string()),
            "category": pa.array(labels, pa.string()),
            "source": pa.array(["derived"] * len(labels), pa.string()),
            "derived_at": pa.array([now] * len(labels), pa.timestamp("us")),
        }
    )
