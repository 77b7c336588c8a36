"""Naive baselines every model must beat on the same split, and the BTYD pair on features.

- recency: fewer days since the last order ranks higher (never ordered ranks last);
- RFM score: r + f + m quintile scores (0 without an order), as the profiles compute them;
- BG/NBD: expected purchases over the horizon, fitted on the same snapshot's history only.

The BTYD models read the features' ``btyd_*`` columns (days) and work in weeks.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import numpy as np
import pandas as pd

from sendwise.predict.btyd import BetaGeoFitter, GammaGammaFitter
from sendwise.segments import rfm_scores

WEEK = 7.0


def recency_score(frame: pd.DataFrame) -> np.ndarray:
    r = frame["recency_days"].astype("float64").to_numpy(na_value=np.nan)
    return np.where(np.isnan(r), -1e9, -r)


def rfm_total(frame: pd.DataFrame) -> np.ndarray:
    cols = frame[["customer_id", "recency_days", "frequency", "monetary"]]
    scored = rfm_scores(ibis.memtable(cols), ties="bottom").to_pandas()
    scored = scored.set_index("customer_id").reindex(frame["customer_id"])
    total = scored[["r_score", "f_score", "m_score"]].astype("float64").fillna(0.0).sum(axis=1)
    return total.to_numpy()


@dataclass
class Btyd:
    """A fitted BG/NBD and Gamma-Gamma pair (Gamma-Gamma may be None when no customer has
    repeat purchases with a positive value)."""

    bgnbd: BetaGeoFitter
    gamma: GammaGammaFitter | None

    @staticmethod
    def rfm(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        buyers = frame["btyd_T"].notna().to_numpy()
        x = frame["btyd_frequency"].astype("float64").to_numpy(na_value=0.0)
        tx = frame["btyd_recency"].astype("float64").to_numpy(na_value=0.0) / WEEK
        t = frame["btyd_T"].astype("float64").to_numpy(na_value=0.0) / WEEK
        m = frame["btyd_monetary_value"].astype("float64").to_numpy(na_value=0.0)
        return np.where(buyers, x, 0.0), tx, t, np.where(buyers, m, 0.0)

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> Btyd:
        buyers = frame[frame["btyd_T"].notna() & (frame["btyd_T"] > 0)]
        x, tx, t, m = cls.rfm(buyers)
        bgnbd = BetaGeoFitter(penalizer=0.0).fit(x, tx, t)
        repeat = (x > 0) & (m > 0)
        gamma = None
        if repeat.sum() >= 10:
            gamma = GammaGammaFitter(penalizer=0.0).fit(x[repeat], m[repeat])
            if gamma.params_["q"] <= 1:
                gamma = None
        return cls(bgnbd, gamma)

    def predict(self, frame: pd.DataFrame, horizon_days: int, discount_rate: float) -> pd.DataFrame:
        """expected_orders over the horizon, p_alive, expected spend and 12-month CLV.

        Customers who never ordered (no BTYD history) get nulls: BG/NBD models buyers only.
        """
        x, tx, t, m = self.rfm(frame)
        buyer = frame["btyd_T"].notna().to_numpy() & (t > 0)
        out = pd.DataFrame(index=frame.index)
        xs, txs, ts = x[buyer], tx[buyer], t[buyer]
        exp = np.full(len(frame), np.nan)
        alive = np.full(len(frame), np.nan)
        spend = np.full(len(frame), np.nan)
        clv = np.full(len(frame), np.nan)
        if buyer.any():
            exp[buyer] = self.bgnbd.expected_purchases(horizon_days / WEEK, xs, txs, ts)
            alive[buyer] = self.bgnbd.probability_alive(xs, txs, ts)
            if self.gamma is not None:
                avg = self.gamma.conditional_expected_average_profit(xs, m[buyer])
                spend[buyer] = exp[buyer] * avg
                monthly = (1 + discount_rate) ** (1 / 12) - 1
                clv[buyer] = self.gamma.customer_lifetime_value(
                    self.bgnbd, xs, txs, ts, m[buyer], time_months=12, discount_rate=monthly
                )
        out["expected_orders"], out["p_alive"] = exp, alive
        out["btyd_spend"], out["clv_12m"] = spend, clv
        return out

    def p_any(self, frame: pd.DataFrame, days: float) -> np.ndarray:
        """P(at least one purchase in the next ``days``) from BG/NBD; NaN for non-buyers.

        Given alive, the rate is gamma(r + x, alpha + T) and BG/NBD drops a customer only
        right after a purchase, so P(none | history) = (1 - p_alive) + p_alive *
        ((alpha + T) / (alpha + T + t)) ** (r + x).
        """
        x, tx, t, _ = self.rfm(frame)
        buyer = frame["btyd_T"].notna().to_numpy() & (t > 0)
        out = np.full(len(frame), np.nan)
        if buyer.any():
            r, alpha = self.bgnbd.params_["r"], self.bgnbd.params_["alpha"]
            xs, ts = x[buyer], t[buyer]
            alive = self.bgnbd.probability_alive(xs, tx[buyer], ts)
            none = (1 - alive) + alive * ((alpha + ts) / (alpha + ts + days / WEEK)) ** (r + xs)
            out[buyer] = 1.0 - none
        return out

    def to_dict(self) -> dict:
        return {
            "bgnbd": self.bgnbd.to_dict(),
            "gamma_gamma": self.gamma.to_dict() if self.gamma else None,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Btyd:
        gamma = GammaGammaFitter.from_dict(d["gamma_gamma"]) if d.get("gamma_gamma") else None
        return cls(BetaGeoFitter.from_dict(d["bgnbd"]), gamma)


def holdout_table(frame: pd.DataFrame, btyd: Btyd, horizon_days: int, cap: int = 7) -> pd.DataFrame:
    """Predicted vs actual repeat purchases in the holdout, by calibration repeat purchases
    (the classic BG/NBD check; ``cap``+ pools the long tail)."""
    x, tx, t, _ = btyd.rfm(frame)
    buyer = frame["btyd_T"].notna().to_numpy() & (t > 0)
    pred = btyd.bgnbd.expected_purchases(horizon_days / WEEK, x[buyer], tx[buyer], t[buyer])
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
    total = pd.DataFrame(
        [
            {
                "repeat_purchases": "all",
                "customers": int(buyer.sum()),
                "actual_mean": actual.mean(),
                "predicted_mean": pred.mean(),
                "actual_total": actual.sum(),
                "predicted_total": pred.sum(),
            }
        ]
    )
    return pd.concat([table, total], ignore_index=True)
