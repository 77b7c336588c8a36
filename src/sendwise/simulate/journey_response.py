"""How simulated customers answer journey messages, and the true effect that follows from it.

The response uses the shop's ground truth (``truth.parquet``; drawn in
:func:`sendwise.simulate.population._effects`): each customer buys as a Poisson process of rate
``purchase_rate`` per day while alive (until ``died_at``), and an email multiplies that rate by
``m = max(0, 1 + strength * (email_effect - 1))`` for ``effect_days`` after it is delivered
(the campaigns' response model, :mod:`sendwise.simulate.responses`). A journey message delivered
at ``s`` opens the effect period ``(s, s + effect_days]``; a second message extends it (periods
are a union, the multiplier does not compound). Inside a period:

* each organic order (one the shop would have had anyway) is kept with probability ``m`` when
  ``m < 1`` (thinning a Poisson process of rate λ gives one of rate mλ);
* when ``m > 1``, extra orders arrive at rate ``λ (m - 1)`` while the customer is alive
  (superposition: the total is a Poisson process of rate mλ), worth the customer's average
  order value.

A message counts as delivered when the engine queued it and the customer consented (truth
``consented``); the replay does not run the send pipeline.

**The true effect** of a journey (:func:`true_effect`) is exact, not simulated: for each entry
of a treated customer, with goal window ``(a, b]`` and effect periods ``I`` (clipped to the
window), ``Y0`` = 1 when an organic order falls in ``(a, b]``; the expected ``Y1`` is 1 when
an organic order falls outside ``I``, else ``1 - P(no order in I)`` with ``P = (1 - m)^k`` for
``k`` organic orders in ``I`` (m < 1) or ``[k = 0] exp(-λ (m - 1) |I ∩ alive|)`` (m ≥ 1). The
true effect is the mean of ``E[Y1] - Y0`` over the treated entries: the conversion lift that
the journey's treated-vs-holdout comparison estimates (the holdout is drawn at random, so its
organic conversion has the treated entries' distribution).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from sendwise.simulate.responses import _multiplier


def _unit(*parts: object) -> float:
    """A deterministic uniform draw in [0, 1) from its key (the replay is reproducible)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass
class Customer:
    rate: float
    """purchase_rate, per day"""
    died_at: datetime | None
    multiplier: float
    order_value: float
    consented: bool
    periods: list[tuple[datetime, datetime]] = field(default_factory=list)

    def covers(self, at: datetime) -> bool:
        return any(a < at <= b for a, b in self.periods)


class ResponseModel:
    """The customers' answers to journey messages, drawn from the ground truth."""

    def __init__(self, truth: pd.DataFrame, *, strength: float = 1.0, effect_days: float = 7.0,
                 seed: int = 0) -> None:  # fmt: skip
        self.effect = timedelta(days=effect_days)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        value = truth["future_revenue"] / truth["future_orders"].where(truth["future_orders"] > 0)
        fallback = float(value.median()) if value.notna().any() else 50.0
        mult = _multiplier(truth["email_effect"].fillna(1.0).to_numpy(float), strength)
        died = pd.to_datetime(truth["died_at"])
        self.customers = {
            cid: Customer(
                float(r),
                None if pd.isna(d) else d.to_pydatetime(),
                float(m),
                float(fallback if pd.isna(v) else v),
                bool(c),
            )
            for cid, r, d, m, v, c in zip(
                truth["customer_id"],
                truth["purchase_rate"],
                died,
                mult,
                value,
                truth["consented"],
                strict=True,
            )
        }
        self.extra = 0
        self.thinned = 0

    def deliver(self, customer_id: str, at: datetime) -> list[dict]:
        """A message reached the customer at ``at``: open (or extend) their effect period and
        return the extra orders it brings (empty unless m > 1, and for a customer who did not
        consent: they never get it)."""
        c = self.customers.get(customer_id)
        if c is None or not c.consented:
            return []
        end = at + self.effect
        start = max([at, *(b for _, b in c.periods if b > at)])
        c.periods.append((at, end))
        if c.multiplier <= 1 or start >= end:
            return []
        stop = min(end, c.died_at) if c.died_at else end
        days = max((stop - start).total_seconds(), 0.0) / 86400
        n = int(self.rng.poisson(c.rate * (c.multiplier - 1) * days))
        offsets = np.sort(self.rng.random(n)) * days * 86400
        out = []
        for i, off in enumerate(offsets):
            when = start + timedelta(seconds=float(off))
            self.extra += 1
            oid = f"J{self.seed}-{customer_id}-{self.extra}"
            total = round(c.order_value * float(self.rng.lognormal(0, 0.3)), 2)
            out.append({"message_id": f"x{oid}-{i}", "customer_id": customer_id,
                        "event": "Order Completed", "occurred_at": when,
                        "properties": {"order_id": oid, "total": total}})  # fmt: skip
        return out

    def keeps(self, customer_id: str, message_id: str, at: datetime) -> bool:
        """Whether an organic order survives the customer's email effect (thinning, m < 1)."""
        c = self.customers.get(customer_id)
        if c is None or c.multiplier >= 1 or not c.covers(at):
            return True
        kept = _unit(self.seed, message_id) < c.multiplier
        self.thinned += not kept
        return kept

    def periods(self) -> dict[str, list[tuple[datetime, datetime]]]:
        return {k: list(c.periods) for k, c in self.customers.items() if c.periods}


def _clipped(periods: list[tuple[datetime, datetime]], a: datetime, b: datetime):
    """The union of ``periods`` within ``(a, b]``, as sorted disjoint intervals."""
    cut = sorted((max(s, a), min(e, b)) for s, e in periods if e > a and s < b)
    merged: list[list[datetime]] = []
    for s, e in cut:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return merged


def expected_outcomes(
    units: pd.DataFrame, organic: pd.DataFrame, model: ResponseModel, within: timedelta
) -> pd.DataFrame:
    """Per entry (``customer_id``, ``entered_at``): ``y0`` and the expected ``y1`` (see the
    module docstring). ``organic``: customer_id, occurred_at of the shop's own orders."""
    by_customer = {k: g.sort_values().to_list() for k, g in
                   organic.groupby("customer_id")["occurred_at"]}  # fmt: skip
    periods = model.periods()
    y0, y1 = [], []
    for cid, entered in zip(units["customer_id"], units["entered_at"], strict=True):
        a = pd.Timestamp(entered).to_pydatetime()
        b = a + within
        orders = [t for t in by_customer.get(cid, []) if a < t <= b]
        inside = _clipped(periods.get(cid, []), a, b)
        k_in = sum(any(s < t <= e for s, e in inside) for t in orders)
        y0.append(float(bool(orders)))
        c = model.customers.get(cid)
        if not inside or c is None:
            y1.append(y0[-1])
        elif len(orders) > k_in:
            y1.append(1.0)
        elif c.multiplier < 1:
            y1.append(1.0 - (1.0 - c.multiplier) ** k_in)
        else:
            alive = sum(
                max(0.0, ((min(e, c.died_at) if c.died_at else e) - s).total_seconds())
                for s, e in inside
            ) / 86400  # fmt: skip
            y1.append(1.0 - float(k_in == 0) * float(np.exp(-c.rate * (c.multiplier - 1) * alive)))
    return units.assign(y0=y0, y1=y1)


def true_effect(units: pd.DataFrame, organic: pd.DataFrame, model: ResponseModel,
                within: timedelta) -> float:  # fmt: skip
    """The mean of ``E[Y1] - Y0`` over the treated entries (``holdout`` False)."""
    treated = units[~units["holdout"].astype(bool)]
    if treated.empty:
        return float("nan")
    out = expected_outcomes(treated, organic, model, within)
    return float((out["y1"] - out["y0"]).mean())
