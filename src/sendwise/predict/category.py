"""Next-best category: a smoothed histogram of what each customer bought and viewed.

p(c) = (bought_c + w * viewed_c + m * share_c) / (bought + w * viewed + m), where share_c is
the category's share of all purchases. ``w`` (weight of a view) and ``m`` (strength of the
shop-wide prior) are chosen on a training snapshot by how often the top category is among those
the customer buys in the window; the model is judged on the evaluation snapshot against the
customer's favourite category and the shop's most bought category. The probability is
conditional on a purchase: "if they buy, this is what they most likely buy".
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from sendwise.features.behaviour import VIEW
from sendwise.features.build import table_reader
from sendwise.features.common import lit_ts

VIEW_WEIGHTS = (0.0, 0.1, 0.3, 1.0)
PRIOR_WEIGHTS = (0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass
class Histograms:
    customers: pd.Index
    categories: list[str]
    bought: np.ndarray
    viewed: np.ndarray


def histograms(source: Any, at: datetime, categories: list[str] | None = None) -> Histograms:
    """Units bought and products viewed per customer and category, strictly before ``at``."""
    table = table_reader(source)
    products = (
        table("product").select("product_id", "category").filter(lambda p: p.category.notnull())
    )
    orders = table("order")
    done = orders.filter(
        (orders.status == "completed")
        & orders.customer_id.notnull()
        & (orders.ordered_at < lit_ts(at))
    )
    lines = table("order_line").inner_join(done.select("order_id", "customer_id"), "order_id")
    lines = lines.inner_join(products, "product_id")
    bought = lines.group_by(["customer_id", "category"]).aggregate(n=lines.quantity.sum())
    ev = table("event")
    views = ev.filter((ev.event == VIEW) & ev.customer_id.notnull() & (ev.occurred_at < lit_ts(at)))
    views = views.inner_join(products, "product_id")
    viewed = views.group_by(["customer_id", "category"]).aggregate(n=views.count())
    b, v = bought.to_pandas(), viewed.to_pandas()
    cats = categories or sorted(set(b["category"]))
    customers = pd.Index(sorted(set(b["customer_id"]) | set(v["customer_id"])), name="customer_id")
    return Histograms(customers, cats, _dense(b, customers, cats), _dense(v, customers, cats))


def _dense(long: pd.DataFrame, customers: pd.Index, cats: list[str]) -> np.ndarray:
    out = np.zeros((len(customers), len(cats)))
    col = pd.Index(cats).get_indexer(long["category"])
    row = customers.get_indexer(long["customer_id"])
    keep = (col >= 0) & (row >= 0)
    np.add.at(out, (row[keep], col[keep]), long["n"].to_numpy(dtype=np.float64)[keep])
    return out


class CategoryModel:
    def __init__(self, view_weight: float = 0.3, prior_weight: float = 2.0) -> None:
        self.view_weight, self.prior_weight = view_weight, prior_weight

    def fit(self, h: Histograms, bought_next: pd.Series) -> CategoryModel:
        """Choose the weights on one snapshot; ``bought_next``: customer -> categories bought."""
        self.categories_ = list(h.categories)
        total = h.bought.sum(axis=0)
        self.share_ = (
            total / total.sum() if total.sum() > 0 else np.full(len(total), 1 / len(total))
        )
        best = (-1.0, self.view_weight, self.prior_weight)
        for w, m in itertools.product(VIEW_WEIGHTS, PRIOR_WEIGHTS):
            self.view_weight, self.prior_weight = w, m
            hit = hit_rate(self.predict(h), bought_next)
            best = max(best, (hit, w, m))
        _, self.view_weight, self.prior_weight = best
        return self

    def proba(self, h: Histograms) -> np.ndarray:
        share = self._aligned_share(h.categories)
        num = h.bought + self.view_weight * h.viewed + self.prior_weight * share
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
            "view_weight": self.view_weight,
            "prior_weight": self.prior_weight,
            "categories": self.categories_,
            "share": self.share_.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoryModel:
        m = cls(d["view_weight"], d["prior_weight"])
        m.categories_, m.share_ = list(d["categories"]), np.asarray(d["share"], dtype=np.float64)
        return m


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
    lines = lines.inner_join(table("product").select("product_id", "category"), "product_id")
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
