"""Next-best category: a smoothed histogram of what each customer bought and viewed.

p(c) = (bought_c + w * viewed_c + m * share_c) / (bought + w * viewed + m), where share_c is
the category's share of all purchases. What ``bought_c`` counts is chosen too (``basis``):
units (the favourite category's own measure), the orders that held the category (a wholesaler's
one order of 500 units is one visit, not 500), or those orders decayed by age (half-lives of 60
and 180 days: tastes move). The basis, ``w`` (weight of a view) and ``m`` (strength of the
shop-wide prior) are chosen on a training snapshot by how often the top category is among those
the customer buys in the window; the model is judged on the evaluation snapshot against the
customer's favourite category and the shop's most bought category. The probability is
conditional on a purchase: "if they buy, this is what they most likely buy".

Categories are the shop's own or, when it has none, derived from product names
(:mod:`sendwise.catalog`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from sendwise.catalog.categories import product_categories
from sendwise.features.behaviour import VIEW
from sendwise.features.build import table_reader
from sendwise.features.common import days_between, lit_ts

VIEW_WEIGHTS = (0.0, 0.1, 0.3, 1.0)
PRIOR_WEIGHTS = (0.5, 1.0, 2.0, 5.0, 10.0)
HALF_LIVES = (60, 180)
BASES = ("units", "orders", *(f"orders_hl{h}" for h in HALF_LIVES))


@dataclass
class Histograms:
    customers: pd.Index
    categories: list[str]
    bought: np.ndarray
    """Units bought per customer and category."""
    viewed: np.ndarray
    orders: dict[str, np.ndarray] = field(default_factory=dict)
    """'orders': orders that held the category; 'orders_hlH': the same, each order weighted
    0.5 ** (age / H days)."""

    def counts(self, basis: str) -> np.ndarray:
        return self.bought if basis == "units" or basis not in self.orders else self.orders[basis]


def histograms(source: Any, at: datetime, categories: list[str] | None = None) -> Histograms:
    """Units bought and products viewed per customer and category, strictly before ``at``."""
    table = table_reader(source)
    products = (
        product_categories(table)
        .select("product_id", "category")
        .filter(lambda p: p.category.notnull())
    )
    orders = table("order")
    done = orders.filter(
        (orders.status == "completed")
        & orders.customer_id.notnull()
        & (orders.ordered_at < lit_ts(at))
    )
    lines = table("order_line").inner_join(
        done.select("order_id", "customer_id", "ordered_at"), "order_id"
    )
    lines = lines.inner_join(products, "product_id")
    bought = lines.group_by(["customer_id", "category"]).aggregate(n=lines.quantity.sum())
    per_order = lines.select("customer_id", "category", "order_id", "ordered_at").distinct()
    age = days_between(at, per_order.ordered_at)
    decayed = {f"hl{h}": (0.5 ** (age / h)).cast("float64").sum() for h in HALF_LIVES}
    held = per_order.group_by(["customer_id", "category"]).aggregate(n=per_order.count(), **decayed)
    ev = table("event")
    views = ev.filter((ev.event == VIEW) & ev.customer_id.notnull() & (ev.occurred_at < lit_ts(at)))
    views = views.inner_join(products, "product_id")
    viewed = views.group_by(["customer_id", "category"]).aggregate(n=views.count())
    b, v, o = bought.to_pandas(), viewed.to_pandas(), held.to_pandas()
    cats = categories or sorted(set(b["category"]))
    customers = pd.Index(sorted(set(b["customer_id"]) | set(v["customer_id"])), name="customer_id")
    orders = {"orders": _dense(o, customers, cats)}
    for h in HALF_LIVES:
        orders[f"orders_hl{h}"] = _dense(o, customers, cats, f"hl{h}")
    return Histograms(
        customers, cats, _dense(b, customers, cats), _dense(v, customers, cats), orders
    )


def _dense(
    long: pd.DataFrame, customers: pd.Index, cats: list[str], value: str = "n"
) -> np.ndarray:
    out = np.zeros((len(customers), len(cats)))
    col = pd.Index(cats).get_indexer(long["category"])
    row = customers.get_indexer(long["customer_id"])
    keep = (col >= 0) & (row >= 0)
    np.add.at(out, (row[keep], col[keep]), long[value].to_numpy(dtype=np.float64)[keep])
    return out


class CategoryModel:
    def __init__(
        self, view_weight: float = 0.3, prior_weight: float = 2.0, basis: str = "units"
    ) -> None:
        self.view_weight, self.prior_weight, self.basis = view_weight, prior_weight, basis

    def fit(self, h: Histograms, bought_next: pd.Series) -> CategoryModel:
        """Choose the basis and the weights on one snapshot; ``bought_next``: customer ->
        categories bought. Ties keep the first of BASES (units), then the smaller weights."""
        self.categories_ = list(h.categories)
        best: tuple[float, int, float, float] | None = None
        for i, basis in enumerate(b for b in BASES if b == "units" or b in h.orders):
            self.basis, self.share_ = basis, _share(h.counts(basis))
            for w, m in itertools.product(VIEW_WEIGHTS, PRIOR_WEIGHTS):
                self.view_weight, self.prior_weight = w, m
                hit = hit_rate(self.predict(h), bought_next)
                if best is None or hit > best[0] + 1e-12:
                    best = (hit, i, w, m)
        assert best is not None
        _, i, self.view_weight, self.prior_weight = best
        self.basis = BASES[i]
        self.share_ = _share(h.counts(self.basis))
        return self

    def proba(self, h: Histograms) -> np.ndarray:
        share = self._aligned_share(h.categories)
        counts = h.counts(self.basis)
        num = counts + self.view_weight * h.viewed + self.prior_weight * share
        return num / num.sum(axis=1, keepdims=True)

    def predict(self, h: Histograms) -> pd.DataFrame:
        p = self.proba(h)
        top = p.argmax(axis=1)
        return pd.DataFrame(
            {
                "customer_id": h.customers,
                "next_category": np.asarray(h.categories, dtype=object)[top],
                "p_next_category": p[np.arange(len(p)), top],
            }
        )

    def prior_choice(self) -> tuple[str, float]:
        i = int(np.argmax(self.share_))
        return self.categories_[i], float(self.share_[i])

    def _aligned_share(self, cats: list[str]) -> np.ndarray:
        lookup = dict(zip(self.categories_, self.share_, strict=True))
        return np.array([lookup.get(c, 0.0) for c in cats])

    def to_dict(self) -> dict[str, Any]:
        return {
            "basis": self.basis,
            "view_weight": self.view_weight,
            "prior_weight": self.prior_weight,
            "categories": self.categories_,
            "share": self.share_.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoryModel:
        m = cls(d["view_weight"], d["prior_weight"], d.get("basis", "units"))
        m.categories_, m.share_ = list(d["categories"]), np.asarray(d["share"], dtype=np.float64)
        return m


def _share(counts: np.ndarray) -> np.ndarray:
    total = counts.sum(axis=0)
    if total.sum() > 0:
        return total / total.sum()
    return np.full(len(total), 1 / max(len(total), 1))


def bought_in_window(source: Any, at: datetime, days: int) -> pd.Series:
    """customer -> the set of categories bought in [at, at + days)."""
    table = table_reader(source)
    orders = table("order")
    window = orders.filter(
        (orders.status == "completed")
        & orders.customer_id.notnull()
        & (orders.ordered_at >= lit_ts(at))
        & (orders.ordered_at < lit_ts(at + timedelta(days=days)))
    )
    lines = table("order_line").inner_join(window.select("order_id", "customer_id"), "order_id")
    categories = product_categories(table).select("product_id", "category")
    lines = lines.inner_join(categories, "product_id")
    pairs = lines.select("customer_id", "category").distinct().to_pandas().dropna()
    return pairs.groupby("customer_id")["category"].agg(set)


def hit_rate(predicted: pd.DataFrame, bought_next: pd.Series) -> float:
    """Share of the customers who bought in the window whose predicted category they bought."""
    pred = predicted.set_index("customer_id")["next_category"]
    common = bought_next.index.intersection(pred.index)
    if len(common) == 0:
        return float("nan")
    hits = [c in s for c, s in zip(pred.loc[common], bought_next.loc[common], strict=True)]
    return float(np.mean(hits))
