"""A fitted purchase model (BG/NBD, MBG/NBD or Pareto/NBD) and Gamma-Gamma, on features.

The BTYD models read the features' ``btyd_*`` columns (days) and work in weeks. Customers who
never ordered have no BTYD history and get nulls.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from sendwise.errors import InputError
from sendwise.predict.btyd import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter
from sendwise.predict.btyd_checks import fit_flags
from sendwise.predict.btyd_pareto import ParetoNBDFitter

logger = logging.getLogger(__name__)
WEEK = 7.0
KINDS: dict[str, tuple[str, Any]] = {
    "bgnbd": ("BG/NBD", BetaGeoFitter),
    "mbgnbd": ("MBG/NBD", ModifiedBetaGeoFitter),
    "pareto_nbd": ("Pareto/NBD", ParetoNBDFitter),
}
_BY_CLASS = {cls.__name__: kind for kind, (_label, cls) in KINDS.items()}


def rfm(frame: pd.DataFrame) -> tuple[np.ndarray, ...]:
    """(frequency, recency, T in weeks, monetary value, buyer mask) of the feature rows; a
    buyer has a first order strictly before the end of observation (T > 0)."""
    known = frame["btyd_T"].notna().to_numpy()
    x = frame["btyd_frequency"].astype("float64").to_numpy(na_value=0.0)
    tx = frame["btyd_recency"].astype("float64").to_numpy(na_value=0.0) / WEEK
    t = frame["btyd_T"].astype("float64").to_numpy(na_value=0.0) / WEEK
    m = frame["btyd_monetary_value"].astype("float64").to_numpy(na_value=0.0)
    return np.where(known, x, 0.0), tx, t, np.where(known, m, 0.0), known & (t > 0)


@dataclass
class Btyd:
    """A fitted purchase model of ``kind`` and Gamma-Gamma (None when fewer than 10 customers
    have repeat purchases with a positive value, or q <= 1). ``flags`` say why the purchase
    model is degenerate (:func:`fit_flags`); empty when it is usable."""

    purchases: Any
    gamma: GammaGammaFitter | None
    kind: str = "bgnbd"
    flags: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return KINDS[self.kind][0]

    @classmethod
    def fit(cls, frame: pd.DataFrame, kind: str = "bgnbd", shrinkage: float = 0.0) -> Btyd:
        if kind not in KINDS:
            raise InputError(f"unknown BTYD model {kind!r}; known: {', '.join(KINDS)}")
        x, tx, t, m, buyer = rfm(frame)
        x, tx, t, m = x[buyer], tx[buyer], t[buyer], m[buyer]
        with warnings.catch_warnings():  # non-convergence becomes a flag, not an exception
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = KINDS[kind][1](shrinkage=shrinkage).fit(x, tx, t)
        flags = fit_flags(model, x, tx, t)
        if flags:
            logger.warning("%s fit is degenerate: %s", KINDS[kind][0], "; ".join(flags))
        repeat = (x > 0) & (m > 0)
        gamma = None
        if repeat.sum() >= 10:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gamma = GammaGammaFitter(penalizer=0.0).fit(x[repeat], m[repeat])
            if gamma.params_["q"] <= 1:
                gamma = None
        return cls(model, gamma, kind, flags)

    def predict(self, frame: pd.DataFrame, horizon_days: int, discount_rate: float) -> pd.DataFrame:
        """expected_orders over the horizon, p_alive, expected spend and 12-month CLV."""
        x, tx, t, m, buyer = rfm(frame)
        out = pd.DataFrame(index=frame.index)
        xs, txs, ts = x[buyer], tx[buyer], t[buyer]
        exp, alive, spend, clv = (np.full(len(frame), np.nan) for _ in range(4))
        if buyer.any():
            exp[buyer] = self.purchases.expected_purchases(horizon_days / WEEK, xs, txs, ts)
            alive[buyer] = self.purchases.probability_alive(xs, txs, ts)
            if self.gamma is not None:
                avg = self.gamma.conditional_expected_average_profit(xs, m[buyer])
                spend[buyer] = exp[buyer] * avg
                monthly = (1 + discount_rate) ** (1 / 12) - 1
                clv[buyer] = self.gamma.customer_lifetime_value(
                    self.purchases, xs, txs, ts, m[buyer], time_months=12, discount_rate=monthly
                )
        out["expected_orders"], out["p_alive"] = exp, alive
        out["btyd_spend"], out["clv_12m"] = spend, clv
        return out

    def p_any(self, frame: pd.DataFrame, days: float) -> np.ndarray:
        """P(at least one purchase in the next ``days``); NaN for customers who never ordered."""
        x, tx, t, _m, buyer = rfm(frame)
        out = np.full(len(frame), np.nan)
        if buyer.any():
            out[buyer] = self.purchases.probability_of_purchase(
                days / WEEK, x[buyer], tx[buyer], t[buyer]
            )
        return out

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "purchases": self.purchases.to_dict(),
            "gamma_gamma": self.gamma.to_dict() if self.gamma else None,
            "flags": list(self.flags),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Btyd:
        """Read :meth:`to_dict`'s output, or the older ``{"bgnbd": ..., "gamma_gamma": ...}``."""
        gamma = GammaGammaFitter.from_dict(d["gamma_gamma"]) if d.get("gamma_gamma") else None
        stored = d.get("purchases", d.get("bgnbd"))
        if not isinstance(stored, dict) or stored.get("model") not in _BY_CLASS:
            raise InputError("the BTYD parameters name no known purchase model")
        kind = _BY_CLASS[stored["model"]]
        model = KINDS[kind][1].from_dict(stored)
        return cls(model, gamma, kind, list(d.get("flags", [])))


def holdout_table(frame: pd.DataFrame, btyd: Btyd, horizon_days: int, cap: int = 7) -> pd.DataFrame:
    """Predicted vs actual repeat purchases in the holdout, by calibration repeat purchases
    (the classic BG/NBD check; ``cap``+ pools the long tail)."""
    x, tx, t, _m, buyer = rfm(frame)
    pred = btyd.purchases.expected_purchases(horizon_days / WEEK, x[buyer], tx[buyer], t[buyer])
    actual = frame.loc[buyer, "label_orders"].to_numpy(dtype=np.float64)
    group = np.minimum(x[buyer], cap).astype(int)
    df = pd.DataFrame({"repeat_purchases": group, "predicted": pred, "actual": actual})
    table = df.groupby("repeat_purchases").agg(
        customers=("actual", "size"),
        actual_mean=("actual", "mean"),
        predicted_mean=("predicted", "mean"),
        actual_total=("actual", "sum"),
        predicted_total=("predicted", "sum"),
    )
    table = table.reset_index()
    table["repeat_purchases"] = [f"{g}+" if g == cap else str(g) for g in table.repeat_purchases]
    total = pd.DataFrame([{
        "repeat_purchases": "all", "customers": int(buyer.sum()), "actual_mean": actual.mean(),
        "predicted_mean": pred.mean(), "actual_total": actual.sum(), "predicted_total": pred.sum(),
    }])  # fmt: skip
    return pd.concat([table, total], ignore_index=True)
