"""Snapshots for a rolling-origin backtest and for the refit, and the frames the learners see.

Given the production date ``as_of`` (A) and a horizon h (docs/adr/0006):

- **Backtest origins** E_k = A - h - k * ``origin_step_days`` (k < ``backtest_origins``). At
  each origin a model is trained on snapshots whose label windows end by E_k (E_k - h,
  E_k - h - step, ...) and judged on [E_k, E_k + h), a window it never saw. The origins choose
  the learner and its settings and give the card's figures (mean and spread).
- **Refit snapshots** A - h, A - h - step, ...: their label windows end at A, so the model that
  scores has learnt from the freshest outcomes.

Snapshots with less than ``min_history_days`` since the first order are skipped; an origin
left without a training snapshot is dropped. ``evaluate_at`` and ``train_at`` are the freshest
origin's (the other models judge on it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pandas as pd

from sendwise.errors import InputError
from sendwise.features.build import customer_features, feature_columns, table_reader
from sendwise.features.history import HISTORY_FEATURES, ZERO_WITHOUT_ORDERS, history_features
from sendwise.features.training import labels

if TYPE_CHECKING:
    from sendwise.config import ModelSettings

# Inputs no model may use: ids, the snapshot date, and the text favourite category.
NOT_INPUTS = ("customer_id", "as_of", "favourite_category")


@dataclass(frozen=True)
class Origin:
    """One origin of the backtest: trained on ``train_at``, judged on [at, at + h)."""

    at: datetime
    train_at: tuple[datetime, ...]


@dataclass(frozen=True)
class Plan:
    as_of: datetime
    horizon_days: int
    evaluate_at: datetime
    train_at: tuple[datetime, ...]

    first_order: datetime | None = None
    min_history_days: int = 0
    fit_at: tuple[datetime, ...] = ()
    """The refit's snapshots: label windows ending at ``as_of`` at the latest."""
    origins: tuple[Origin, ...] = ()
    """The backtest's origins, freshest first (empty when the history is too short)."""

    def require_training(self) -> None:
        """Refuse to train a supervised model without an out-of-time training snapshot."""
        if self.train_at:
            return
        start = self.evaluate_at - timedelta(days=self.horizon_days)
        raise InputError(
            f"not enough history to train with a {self.horizon_days}-day horizon as of"
            f" {self.as_of:%Y-%m-%d}: the first training snapshot would be {start:%Y-%m-%d},"
            f" less than {self.min_history_days} days after the first order"
            + (f" ({self.first_order:%Y-%m-%d})" if self.first_order else "")
            + ". Use a shorter horizon, a later date or more data."
        )

    def require_fit(self) -> None:
        """Refuse to fit a classifier without a single labelled snapshot."""
        if self.fit_at:
            return
        start = self.as_of - timedelta(days=self.horizon_days)
        raise InputError(
            f"not enough history to train with a {self.horizon_days}-day horizon as of"
            f" {self.as_of:%Y-%m-%d}: the freshest training snapshot would be {start:%Y-%m-%d},"
            f" less than {self.min_history_days} days after the first order"
            + (f" ({self.first_order:%Y-%m-%d})" if self.first_order else "")
            + ". Use a shorter horizon, a later date or more data."
        )

    def describe(self) -> str:
        if not self.train_at:
            return f"judged at {self.evaluate_at:%Y-%m-%d} on the {self.horizon_days} days after"
        first, last = min(self.train_at), max(self.train_at)
        return (
            f"trained on {len(self.train_at)} snapshot(s) {first:%Y-%m-%d} .. {last:%Y-%m-%d},"
            f" judged at {self.evaluate_at:%Y-%m-%d} on the {self.horizon_days} days to"
            f" {self.as_of:%Y-%m-%d}"
        )


def make_plan(
    as_of: datetime, horizon_days: int, settings: ModelSettings, first_order: datetime | None
) -> Plan:
    h = timedelta(days=horizon_days)
    step = timedelta(days=settings.snapshot_step_days)
    earliest = (first_order or as_of - 2 * h) + timedelta(days=settings.min_history_days)

    def snapshots(label_end: datetime) -> tuple[datetime, ...]:
        start = label_end - h
        return tuple(
            t for t in (start - i * step for i in range(settings.snapshots)) if t >= earliest
        )

    origin_step = timedelta(days=settings.origin_step_days)
    origins = tuple(
        Origin(at, snapshots(at))
        for at in (as_of - h - k * origin_step for k in range(settings.backtest_origins))
        if snapshots(at)
    )
    evaluate_at = origins[0].at if origins else as_of - h
    train_at = origins[0].train_at if origins else ()
    return Plan(
        as_of, horizon_days, evaluate_at, train_at, first_order, settings.min_history_days,
        snapshots(as_of), origins,
    )  # fmt: skip


class CustomerSample:
    """A source that sees only some customers: every table with a ``customer_id`` keeps theirs
    (a semi-join in the warehouse), so features of a sample cost a fraction of the full run."""

    def __init__(self, source: Any, ids: Any) -> None:
        self.source, self.ids = source, ids

    def table(self, name: str) -> Any:
        t = table_reader(self.source)(name)
        return t.semi_join(self.ids, "customer_id") if "customer_id" in t.columns else t


class SnapshotCache:
    """Features per snapshot date, computed once and shared by every model of a run.

    With ``max_customers``, a snapshot of a larger shop is computed for a random sample of that
    many customers (the same sample at every date, drawn with ``seed``): training rows are
    capped anyway, and the time stays bounded on a million customers. ``known`` seeds the cache
    with features already materialised (the profile build's, at the scoring date).
    """

    def __init__(
        self,
        source: Any,
        *,
        max_customers: int | None = None,
        seed: int = 0,
        known: dict[datetime, pd.DataFrame] | None = None,
    ) -> None:
        self.source, self.max_customers, self.seed = source, max_customers, seed
        self._features: dict[tuple[datetime, bool], pd.DataFrame] = {
            (at, False): _in_order(frame) for at, frame in (known or {}).items()
        }
        self._labels: dict[tuple[datetime, int], pd.DataFrame] = {}
        self._history: dict[tuple[datetime, int, bool], pd.DataFrame] = {}
        self._sample: Any = None

    def _sampled_source(self) -> Any:
        if self.max_customers is None:
            return None
        if self._sample is None:
            ids = table_reader(self.source)("customer").select("customer_id").to_pandas()
            if len(ids) <= self.max_customers:
                self._sample = False
            else:
                ids = ids.sort_values("customer_id", ignore_index=True)
                picked = ids.sample(self.max_customers, random_state=self.seed)
                self._sample = CustomerSample(self.source, ibis.memtable(picked))
        return self._sample or None

    def features(self, at: datetime, *, sample: bool = False) -> pd.DataFrame:
        """All customers' features at ``at``, or the sample's (all when there is no sample)."""
        sampled = self._sampled_source() if sample else None
        key = (at, sampled is not None)
        if key not in self._features and sampled is not None and (at, False) in self._features:
            full = self._features[(at, False)]  # a full frame serves a sample too
            chosen = set(sampled.ids.to_pandas()["customer_id"])
            self._features[key] = full[full["customer_id"].isin(chosen)].reset_index(drop=True)
        if key not in self._features:
            source = sampled if sampled is not None else self.source
            self._features[key] = _in_order(customer_features(source, at).to_pandas())
        return self._features[key]

    def with_history(self, at: datetime, window_days: int, *, sample: bool = False):
        """``features(at)`` with the window features of features/history.py added."""
        sampled = self._sampled_source() if sample else None
        key = (at, window_days, sampled is not None)
        if key not in self._history:
            source = sampled if sampled is not None else self.source
            extra = history_features(source, at, window_days).to_pandas()
            self._history[key] = add_history(self.features(at, sample=sample), extra)
        return self._history[key]

    def labelled(
        self, at: datetime, horizon_days: int, active_days: int, *, sample: bool = True
    ) -> pd.DataFrame:
        """Features at ``at`` (with the window features of ``horizon_days``) and the labels
        label_orders, label_revenue, label_purchased, label_churned."""
        key = (at, horizon_days)
        if key not in self._labels:
            lab = labels(self.source, at, horizon_days).drop("label_categories").to_pandas()
            self._labels[key] = lab
        feats = self.with_history(at, horizon_days, sample=sample)
        frame = feats.merge(self._labels[key], on="customer_id", how="left")
        orders = frame["label_orders"].fillna(0).astype("int64")
        active = frame["recency_days"].notna() & (frame["recency_days"] <= active_days)
        frame["label_orders"] = orders
        frame["label_revenue"] = frame["label_revenue"].fillna(0.0).astype("float64")
        frame["label_purchased"] = (orders > 0).astype("int8")
        frame["label_churned"] = np.where(active, (orders == 0).astype("float64"), np.nan)
        frame["snapshot"] = at
        return frame


def add_history(features: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """The window features joined to the customer features (rows and order kept); customers
    without an order get 0 counts and a trend of 1."""
    out = features.merge(history, on="customer_id", how="left")
    for col in ZERO_WITHOUT_ORDERS:
        out[col] = out[col].astype("float64").fillna(1.0 if col == "orders_trend" else 0.0)
    for col in HISTORY_FEATURES:
        out[col] = out[col].astype("float64")
    return out


def _in_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by customer id: warehouses return rows in any order, and folds, samples and
    searches must not depend on it (the same data gives the same model on every backend)."""
    return frame.sort_values("customer_id", kind="stable", ignore_index=True)


def first_order_at(source: Any) -> datetime | None:
    return table_reader(source)("order").ordered_at.min().execute()


def input_features(frame: pd.DataFrame) -> list[str]:
    """The numeric feature columns a model may use, in the warehouse's order."""
    names = [c for c in (*feature_columns(), *HISTORY_FEATURES) if c not in NOT_INPUTS]
    names = [c for c in names if c in frame.columns]
    return [c for c in names if _numeric(frame[c])]


def feature_types(frame: pd.DataFrame, features: list[str]) -> dict[str, str]:
    return {f: _kind(frame[f]) for f in features}


def _numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)


def _kind(col: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(col):
        return "bool"
    if pd.api.types.is_integer_dtype(col):
        return "int"
    if pd.api.types.is_float_dtype(col):
        return "float"
    return str(col.dtype)


def stratified_sample(frame: pd.DataFrame, label: str, rows: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` rows, the label's share kept (sampling within each class)."""
    if len(frame) <= rows:
        return frame
    share = rows / len(frame)
    parts = [g.sample(frac=share, random_state=seed) for _, g in frame.groupby(label)]
    return pd.concat(parts).sort_index()
