"""Scores of a customer the snapshot does not know: the promoted models applied to the live
profile.

A customer first seen after the snapshot has, as of the snapshot, no history: every counter of
``customer_features`` is 0 and every "since" is null. Their intake events since then give the
rest (views, carts, sessions, orders, days since the last activity). :func:`scorer_meta` (run
by publish) writes down which model versions to use and the parameters small enough to carry
(BG/NBD, the next-category prior); :class:`LiveScorer` (in the service) loads the promoted
classifier's files from the model registry, hashes checked, and scores one row. It never opens
the warehouse.

What is not applied live, and said so in ``notes``: the base-rate anchoring of the batch scores
(it needs every customer's BG/NBD target), the churn model (trained on active buyers; a customer
without an order has no churn risk, as in the batch) and the best send hour (it needs opens).
"""

from __future__ import annotations

import itertools
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sendwise.errors import NotFoundError, SendwiseError
from sendwise.features.build import WINDOWS, ZERO_FILLED
from sendwise.serving.live import ADDED, ORDERED, VIEWED, LiveFields

logger = logging.getLogger(__name__)
DAY = 86_400.0


def scorer_meta(registry: Any, settings: Any) -> dict[str, Any]:
    """What the live scorer needs, from the registry's promoted versions (JSON-safe)."""
    out: dict[str, Any] = {"registry": str(registry.root)}
    for name in ("propensity", "btyd", "next_category"):
        try:
            mv = registry.get(name, verify=False)
        except (NotFoundError, SendwiseError):
            out[name] = None
            continue
        meta = mv.metadata
        if name == "propensity":
            out[name] = {
                "version": mv.version,
                "features": list(meta["features"]),
                "horizon_days": int(meta["horizon_days"]),
                "anchored": bool(meta.get("anchored")),
            }
        elif name == "btyd":
            out[name] = {
                "version": mv.version,
                "params": meta["params"],
                "horizon_days": settings.models.horizon_days,
                "discount_rate": settings.models.discount_rate,
            }
        else:
            from sendwise.predict.category import CategoryModel

            model = CategoryModel.from_dict(json.loads((mv.folder / "model.json").read_text()))
            top, share = model.prior_choice()
            out[name] = {"version": mv.version, "category": top, "p": share}
    return out


def _days(now: datetime, at: datetime | None) -> float:
    return np.nan if at is None else max((now - at).total_seconds() / DAY, 0.0)


def new_customer_features(live: LiveFields, now: datetime) -> dict[str, float]:
    """The ``customer_features`` row of a customer first seen after the snapshot."""
    row: dict[str, float] = {}
    orders = sorted(live.orders, key=lambda o: o["at"])
    totals = [float(o["total"] or 0.0) for o in orders]
    row["frequency"] = float(len(orders))
    row["monetary"] = float(sum(totals))
    row["avg_order_value"] = row["monetary"] / len(orders) if orders else np.nan
    row["recency_days"] = _days(now, orders[-1]["at"]) if orders else np.nan
    row["tenure_days"] = _days(now, live.first_seen)
    row["days_since_last_activity"] = _days(now, live.last_activity)
    row["distinct_products"] = float(len(live.bought))
    gaps = [(b["at"] - a["at"]).total_seconds() / DAY for a, b in itertools.pairwise(orders)]
    row["ipt_mean_days"] = float(np.mean(gaps)) if gaps else np.nan
    row["ipt_last_days"] = gaps[-1] if gaps else np.nan
    for w in WINDOWS:
        recent = [t for t in live.touches if _days(now, t.at) < w]
        mine = [(o, t) for o, t in zip(orders, totals, strict=True) if _days(now, o["at"]) < w]
        row[f"orders_{w}d"] = float(len(mine))
        row[f"revenue_{w}d"] = float(sum(t for _, t in mine))
        row[f"items_{w}d"] = float(sum(len(o["products"]) for o, _ in mine))
        row[f"product_views_{w}d"] = float(sum(t.event == VIEWED for t in recent))
        row[f"add_to_cart_{w}d"] = float(sum(t.event == ADDED for t in recent))
        days = {t.at.date() for t in recent}
        row[f"sessions_{w}d"] = float(len(days))
        ordered_days = {t.at.date() for t in recent if t.event == ORDERED}
        carted = {t.at.date() for t in recent if t.event == ADDED}
        row[f"carts_abandoned_{w}d"] = float(len(carted - ordered_days))
        seen = {t.product_id for t in recent if t.event == VIEWED and t.product_id}
        row[f"viewed_not_bought_{w}d"] = float(len(seen - live.bought))
    if live.touches:
        hours = pd.Series([t.at.hour for t in live.touches])
        days_ = pd.Series([t.at.weekday() for t in live.touches])
        row["preferred_hour"] = float(hours.mode().min())
        row["preferred_weekday"] = float(days_.mode().min())
    row["unsubscribed"] = 0.0
    row["orders_trend"] = 1.0
    return row


def _value(row: dict[str, float], name: str) -> float:
    if name in row:
        return row[name]
    return 0.0 if name.startswith(ZERO_FILLED) else np.nan


class LiveScorer:
    """The promoted models of one snapshot, loaded once, scoring one live profile at a time."""

    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        self._propensity: tuple[Any, Any] | None = None
        self._failed: str | None = None

    def _classifier(self) -> tuple[Any, Any] | None:
        spec = self.meta.get("propensity")
        if spec is None or self._failed:
            return None
        if self._propensity is None:
            from sendwise.predict.classifier import Calibrator
            from sendwise.predict.learners import load_learner
            from sendwise.predict.registry import Registry

            try:
                mv = Registry(Path(self.meta["registry"])).get("propensity", spec["version"])
                learner = load_learner(mv.folder)
                raw = json.loads((mv.folder / "calibrator.json").read_text())
                self._propensity = (learner, Calibrator.from_dict(raw))
            except (SendwiseError, OSError, ValueError, KeyError) as exc:
                self._failed = f"propensity {spec['version']} cannot be loaded: {exc}"
                logger.warning("live scorer: %s", self._failed)
                return None
        return self._propensity

    def score(self, live: LiveFields, now: datetime) -> tuple[dict[str, Any], list[str]]:
        """(scores, notes): each score computed live or null with a note saying why."""
        scores: dict[str, Any] = {k: None for k in ("p_purchase", "churn_risk", "expected_orders")}
        scores.update(p_alive=None, predicted_spend=None, clv_12m=None, best_send_hour=None)
        scores.update(next_category=None, p_next_category=None)
        notes: list[str] = []
        row = new_customer_features(live, now)
        spec, model = self.meta.get("propensity"), self._classifier()
        if model is None or spec is None:
            notes.append(self._failed or "p_purchase: no promoted propensity model")
        else:
            learner, cal = model
            x = np.array([[_value(row, f) for f in spec["features"]]], dtype=np.float64)
            scores["p_purchase"] = float(cal(learner.decision(x))[0])
            if spec.get("anchored"):
                notes.append("p_purchase: not anchored to the base rate (batch scores are)")
        btyd = self.meta.get("btyd")
        if btyd is None:
            notes.append("expected_orders, p_alive, clv_12m: no promoted BTYD model")
        elif live.orders:
            scores.update(self._btyd(btyd, live, now))
        else:
            notes.append("expected_orders, p_alive, clv_12m: no order yet (null, as in the batch)")
        cat = self.meta.get("next_category")
        if cat is not None:  # the batch gives customers without a history the prior choice
            scores["next_category"], scores["p_next_category"] = cat["category"], cat["p"]
        notes.append("churn_risk: no order before the snapshot (null, as in the batch)")
        notes.append("best_send_hour: needs opened emails; not scored live")
        return scores, notes

    def _btyd(self, spec: dict[str, Any], live: LiveFields, now: datetime) -> dict[str, Any]:
        from sendwise.predict.baselines import Btyd

        days = sorted({o["at"].date() for o in live.orders})
        first = min(o["at"] for o in live.orders)
        repeat = [float(o["total"] or 0.0) for o in live.orders if o["at"].date() != days[0]]
        frame = pd.DataFrame(
            {
                "btyd_frequency": [float(len(days) - 1)],
                "btyd_recency": [float((days[-1] - days[0]).days)],
                "btyd_T": [float((now.date() - first.date()).days)],
                "btyd_monetary_value": [float(np.mean(repeat)) if repeat else 0.0],
            }
        )
        model = Btyd.from_dict(spec["params"])
        out = model.predict(frame, spec["horizon_days"], spec["discount_rate"]).iloc[0]

        def num(v: Any) -> float | None:
            return None if pd.isna(v) else float(v)

        return {
            "expected_orders": num(out["expected_orders"]),
            "p_alive": num(out["p_alive"]),
            "clv_12m": num(out["clv_12m"]),
            "predicted_spend": num(out["btyd_spend"]),
        }
