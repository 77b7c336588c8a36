"""Interactions: who did what with which product, weighted, decayed and indexed.

The warehouse is read once, aggregated to one row per (customer, product) inside it, and turned
into sparse matrices whose rows are customers and whose columns are products. Only this module
and the algorithms' private code see matrix positions; everything public speaks ids.

Weights: an interaction of kind ``k`` (an event name such as 'Product Viewed', or ``purchase``
for an ordered line) ``d`` days before the build date counts ``event_weights[k] * 0.5 **
(d / half_life_days)``. Only completed orders count as purchases; events without a resolved
customer or a product are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import ibis
import numpy as np
import pandas as pd
import scipy.sparse as sp

from sendwise.catalog.categories import product_categories
from sendwise.features.common import days_between, lit_ts
from sendwise.warehouse.recommendations import has_table

if TYPE_CHECKING:
    from sendwise.config import RecommendSettings
    from sendwise.warehouse.connection import Warehouse

PURCHASE = "purchase"
CATALOGUE_COLUMNS = ("name", "description", "category", "price", "in_stock")
RECENCY_DAYS = 30.0
"""Half-life of ``latest``: a purchase this many days ago has recency 0.5."""


@dataclass
class Interactions:
    """Customer x product matrices, aligned to ``customers`` (rows) and ``products`` (columns)."""

    customers: np.ndarray
    products: np.ndarray
    confidence: sp.csr_matrix
    """All kinds, weighted and decayed: what ALS, co-occurrence and content learn from."""
    purchases: sp.csr_matrix
    """Purchases only, decayed (buy-again)."""
    bought: sp.csr_matrix
    """1 where the customer ever bought the product (exclusion, bought-together)."""
    viewed: sp.csr_matrix
    """1 where the customer viewed or carted the product (viewed-together)."""
    recent: np.ndarray
    """Per product, distinct buyers in the recent window."""
    catalogue: pd.DataFrame
    """Per product (same order): name, description, category, price, in_stock."""
    segments: np.ndarray
    """Per customer, the code of their segment; -1 when unknown."""
    segment_names: list[str] = field(default_factory=list)
    as_of: datetime | None = None
    frequency: sp.csr_matrix | None = None
    """Purchased order lines per (customer, product), undecayed (how often)."""
    latest: sp.csr_matrix | None = None
    """0.5 ** (days since the last purchase / RECENCY_DAYS) (how recently)."""
    _cust_pos: dict[str, int] | None = field(default=None, repr=False)
    _prod_pos: dict[str, int] | None = field(default=None, repr=False)

    @property
    def customer_pos(self) -> dict[str, int]:
        if self._cust_pos is None:
            self._cust_pos = {c: i for i, c in enumerate(self.customers.tolist())}
        return self._cust_pos

    @property
    def product_pos(self) -> dict[str, int]:
        if self._prod_pos is None:
            self._prod_pos = {p: i for i, p in enumerate(self.products.tolist())}
        return self._prod_pos

    @property
    def shape(self) -> tuple[int, int]:
        return self.confidence.shape

    @classmethod
    def from_pairs(
        cls,
        pairs: pd.DataFrame,
        *,
        customers: pd.DataFrame | None = None,
        catalogue: pd.DataFrame | None = None,
        as_of: datetime | None = None,
    ) -> Interactions:
        """Build from one row per (customer_id, product_id) with columns ``confidence``,
        ``purchases``, ``bought``, ``viewed``, ``recent``, ``frequency``, ``latest`` (missing
        ones default to the confidence, or to 'bought' when it is positive). ``customers``
        (customer_id, segment) and ``catalogue`` (product_id + CATALOGUE_COLUMNS) add customers
        and products that have no interaction."""
        pairs = _complete(pairs)
        cust_ids = pairs["customer_id"].astype(str)
        prod_ids = pairs["product_id"].astype(str)
        if customers is not None and len(customers):
            cust_ids = pd.concat([customers["customer_id"].astype(str), cust_ids])
        if catalogue is not None and len(catalogue):
            prod_ids = pd.concat([catalogue["product_id"].astype(str), prod_ids])
        cust_index = pd.Index(pd.unique(cust_ids.to_numpy(dtype=object)))
        prod_index = pd.Index(pd.unique(prod_ids.to_numpy(dtype=object)))
        rows = cust_index.get_indexer(pairs["customer_id"].astype(str).to_numpy(dtype=object))
        cols = prod_index.get_indexer(pairs["product_id"].astype(str).to_numpy(dtype=object))
        shape = (len(cust_index), len(prod_index))

        def matrix(values: pd.Series) -> sp.csr_matrix:
            v = values.to_numpy(dtype=np.float32, na_value=0.0)
            m = sp.csr_matrix((v, (rows, cols)), shape=shape, dtype=np.float32)
            m.eliminate_zeros()
            m.sort_indices()
            return m

        recent = np.asarray(matrix(pairs["recent"]).sum(axis=0)).ravel()
        segments, names = _segment_codes(cust_index, customers)
        return cls(
            customers=np.asarray(cust_index, dtype=object),
            products=np.asarray(prod_index, dtype=object),
            confidence=matrix(pairs["confidence"]),
            purchases=matrix(pairs["purchases"]),
            bought=matrix(pairs["bought"]),
            viewed=matrix(pairs["viewed"]),
            recent=recent.astype(np.float32),
            catalogue=_aligned_catalogue(prod_index, catalogue),
            segments=segments,
            segment_names=names,
            as_of=as_of,
            frequency=matrix(pairs["frequency"]),
            latest=matrix(pairs["latest"]),
        )


def _complete(pairs: pd.DataFrame) -> pd.DataFrame:
    pairs = pairs.copy()
    if "confidence" not in pairs:
        pairs["confidence"] = 1.0
    if "purchases" not in pairs:
        pairs["purchases"] = pairs["confidence"]
    if "bought" not in pairs:
        pairs["bought"] = (pairs["purchases"] > 0).astype(np.float32)
    if "viewed" not in pairs:
        pairs["viewed"] = 0.0
    if "recent" not in pairs:
        pairs["recent"] = pairs["bought"]
    if "frequency" not in pairs:
        pairs["frequency"] = pairs["bought"]
    if "latest" not in pairs:
        pairs["latest"] = pairs["bought"]
    for col in ("bought", "viewed", "recent"):
        pairs[col] = pairs[col].astype(np.float32)
    return pairs


def _segment_codes(index: pd.Index, customers: pd.DataFrame | None) -> tuple[np.ndarray, list[str]]:
    codes = np.full(len(index), -1, dtype=np.int32)
    if customers is None or "segment" not in customers or not len(customers):
        return codes, []
    seg = customers[["customer_id", "segment"]].dropna()
    seg = seg.drop_duplicates("customer_id", keep="last")
    cat = pd.Categorical(seg["segment"].astype(str))
    pos = index.get_indexer(seg["customer_id"].astype(str).to_numpy(dtype=object))
    codes[pos] = cat.codes
    return codes, [str(c) for c in cat.categories]


def _aligned_catalogue(index: pd.Index, catalogue: pd.DataFrame | None) -> pd.DataFrame:
    base = pd.DataFrame({"product_id": np.asarray(index, dtype=object)})
    if catalogue is not None and len(catalogue):
        known = (*CATALOGUE_COLUMNS, "category_source")
        cols = ["product_id", *[c for c in known if c in catalogue]]
        cat = catalogue[cols].drop_duplicates("product_id", keep="last").copy()
        cat["product_id"] = cat["product_id"].astype(str)
        base = base.merge(cat, on="product_id", how="left")
    for col in ("name", "description", "category", "category_source"):
        if col not in base:
            base[col] = None
        base[col] = base[col].astype(object).where(base[col].notna(), None)
    shop = base["category"].notna() & base["category_source"].isna()
    base.loc[shop, "category_source"] = "shop"
    base["price"] = pd.to_numeric(base.get("price"), errors="coerce").astype(float)
    in_stock = base.get("in_stock", pd.Series(True, index=base.index))
    base["in_stock"] = in_stock.astype(object).where(in_stock.notna(), True).astype(bool)
    return base


# -- reading the warehouse ---------------------------------------------------------------
def interaction_pairs(wh: Warehouse, settings: RecommendSettings, as_of: datetime) -> ibis.Table:
    """One row per (customer_id, product_id) of what happened before ``as_of``: confidence,
    purchases (decayed), bought, viewed and recent (0/1)."""
    order, line, event = wh.table("order"), wh.table("order_line"), wh.table("event")
    weights = settings.event_weights
    bought = (
        order.filter(
            order.status == "completed",
            order.customer_id.notnull(),
            order.ordered_at < lit_ts(as_of),
        )
        .join(line, "order_id")
        .select(
            "customer_id",
            "product_id",
            kind=ibis.literal(PURCHASE),
            at=order.ordered_at,
        )
    )
    kinds = [k for k in weights if k != PURCHASE]
    parts = [bought] if PURCHASE in weights else []
    if kinds:
        seen = event.filter(
            event.customer_id.notnull(),
            event.product_id.notnull(),
            event.event.isin(kinds),
            event.occurred_at < lit_ts(as_of),
        ).select("customer_id", "product_id", kind=event.event, at=event.occurred_at)
        parts.append(seen)
    if not parts:
        parts = [bought]
    t = parts[0] if len(parts) == 1 else ibis.union(*parts)
    decay = (0.5 ** (days_between(as_of, t.at) / settings.half_life_days)).cast("float64")
    weight = ibis.cases(*[(t.kind == k, float(w)) for k, w in weights.items()], else_=0.0)
    is_buy = t.kind == PURCHASE
    recent_from = lit_ts(as_of - timedelta(days=settings.recent_days))
    t = t.mutate(
        w=weight * decay,
        p=is_buy.ifelse(decay, 0.0),
        b=is_buy.ifelse(1, 0),
        v=is_buy.ifelse(0, 1),
        r=(is_buy & (t.at >= recent_from)).ifelse(1, 0),
        f=is_buy.ifelse(1, 0),
        lt=is_buy.ifelse((0.5 ** (days_between(as_of, t.at) / RECENCY_DAYS)).cast("float64"), 0.0),
    )
    return t.group_by(["customer_id", "product_id"]).aggregate(
        confidence=t.w.sum(),
        purchases=t.p.sum(),
        bought=t.b.max(),
        viewed=t.v.max(),
        recent=t.r.max(),
        frequency=t.f.sum(),
        latest=t.lt.max(),
    )


def load_interactions(wh: Warehouse, settings: RecommendSettings, as_of: datetime) -> Interactions:
    """Everything the recommenders learn from, as of ``as_of`` (exclusive)."""
    pairs = interaction_pairs(wh, settings, as_of).to_pyarrow().to_pandas()
    product = wh.table("product").drop("category")
    categories = product_categories(wh.table)
    catalogue = (
        product.left_join(categories, "product_id")
        .select("product_id", *CATALOGUE_COLUMNS, "category_source")
        .to_pyarrow()
        .to_pandas()
    )
    # rows and columns in id order, so that ties break the same way on every run
    customers = _customer_segments(wh, settings).sort_values("customer_id", kind="stable")
    catalogue = catalogue.sort_values("product_id", kind="stable")
    return Interactions.from_pairs(pairs, customers=customers, catalogue=catalogue, as_of=as_of)


def _customer_segments(wh: Warehouse, settings: RecommendSettings) -> pd.DataFrame:
    customer = wh.table("customer")
    column = settings.segment_by
    if column and column in customer.columns:
        return customer.select("customer_id", segment=customer[column]).to_pyarrow().to_pandas()
    if column and has_table(wh, "profile"):
        profile = wh.table("profile")
        if column in profile.columns:
            t = profile.select("customer_id", segment=profile[column].cast("string"))
            return t.to_pyarrow().to_pandas()
    return customer.select("customer_id").to_pyarrow().to_pandas()
