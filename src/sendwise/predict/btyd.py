"""BG/NBD (Fader, Hardie & Lee 2005) and MBG/NBD (Batislam, Denizel & Filiztekin 2007)
purchase-count models and the Gamma-Gamma spend model, fitted by maximum likelihood.

Inputs per customer, all in one time unit (weeks from :func:`summary_from_transactions`):
``frequency`` x = repeat purchases, ``recency`` t_x = age at the last purchase (0 when x = 0),
``T`` = age at the end of observation. Ages count from the customer's first purchase.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from sendwise.errors import InputError
from sendwise.predict.common import (
    FittedParamsMixin,
    as_vector,
    check_frequency,
    check_rfm,
    maximise,
    same_length,
)

# Purchase-model parameters are searched in [1e-6, 1e6] (model time unit: weeks); a fit near
# either end is flagged as degenerate by ``btyd_checks``.
PURCHASE_LOG_BOUNDS = (float(np.log(1e-6)), float(np.log(1e6)))


def weighted_rows(x: np.ndarray, tx: np.ndarray, t_end: np.ndarray) -> tuple[np.ndarray, ...]:
    """Identical (x, t_x, T) rows as one row with a weight: summaries in days repeat a lot."""
    rows = pd.DataFrame({"x": x, "tx": tx, "T": t_end}).value_counts(sort=False)
    keys = rows.index.to_frame(index=False)
    return (*(keys[c].to_numpy(np.float64) for c in ("x", "tx", "T")), rows.to_numpy(np.float64))


class BetaGeoFitter(FittedParamsMixin, BaseEstimator):
    """BG/NBD: Poisson purchases at gamma(r, alpha) rates; after each repeat purchase the
    customer drops out with a beta(a, b) probability. ``penalizer`` adds an L2 penalty.

    One-time buyers cannot have dropped out, so their probability alive is 1: use
    :class:`ModifiedBetaGeoFitter` or ``ParetoNBDFitter`` when that matters.
    """

    param_names = ("r", "alpha", "a", "b")
    _k: ClassVar[int] = 0  # 1 in MBG/NBD: a drop-out chance at the first purchase too

    def __init__(self, penalizer: float = 0.0, shrinkage: float = 0.0) -> None:
        self.penalizer = penalizer
        self.shrinkage = shrinkage

    def fit(self, frequency: Any, recency: Any, T: Any) -> BetaGeoFitter:
        x, tx, t_end, w = weighted_rows(*check_rfm(frequency, recency, T, fit=True))
        ux, inv = np.unique(x, return_inverse=True)
        wx = np.bincount(inv, weights=w)
        k = self._k
        pos = ux > 0 if k == 0 else np.ones(ux.size, bool)  # who may have dropped out

        def loglik(theta: np.ndarray) -> tuple[float, np.ndarray]:
            r, alpha, a, b = theta
            bxk = np.where(pos, b + ux - 1.0 + k, 1.0)  # b + x - 1 (+1 in MBG/NBD)
            ln_a4 = np.where(pos, np.log(a) - np.log(bxk), -np.inf)
            rx = r + x
            ln_at, ln_atx = np.log(alpha + t_end), np.log(alpha + tx)
            a3, a4 = -rx * ln_at, ln_a4[inv] - rx * ln_atx
            l3 = np.logaddexp(a3, a4)
            w3, w4 = w * np.exp(a3 - l3), w * np.exp(a4 - l3)
            per_x = gammaln(r + ux) - gammaln(r) + betaln(a, b + ux + k) - betaln(a, b)
            total = wx @ per_x + w.sum() * r * np.log(alpha) + w @ l3
            psi_abx = digamma(a + b + ux + k)
            grad = np.array([
                wx @ (digamma(r + ux) - digamma(r)) + w.sum() * np.log(alpha)
                - w3 @ ln_at - w4 @ ln_atx,
                w.sum() * r / alpha - w3 @ (rx / (alpha + t_end)) - w4 @ (rx / (alpha + tx)),
                wx @ (digamma(a + b) - psi_abx) + w4.sum() / a,
                wx @ (digamma(b + ux + k) - psi_abx - digamma(b) + digamma(a + b))
                - w4 @ (1.0 / bxk[inv]),
            ])  # fmt: skip
            return float(total), grad

        n = float(w.sum())
        start = np.array([1.0, max(float(w @ t_end) / n, 1e-3), 1.0, 1.0])
        theta, self.log_likelihood_, self.n_iter_, self.converged_ = maximise(
            loglik, start, n, self.penalizer, PURCHASE_LOG_BOUNDS, self.shrinkage
        )
        self._set_params(theta, n)
        return self

    def _log_odds_dead(self, x: np.ndarray, tx: np.ndarray, t_end: np.ndarray) -> np.ndarray:
        """log of a/(b+x-1+k) * ((alpha+T)/(alpha+t_x))^(r+x); -inf where BG/NBD has x = 0."""
        r, alpha, a, b = self._params()
        pos = x > 0 if self._k == 0 else np.ones(x.shape, bool)
        bxk = np.where(pos, b + x - 1.0 + self._k, 1.0)
        z = np.log(a) - np.log(bxk) + (r + x) * (np.log(alpha + t_end) - np.log(alpha + tx))
        return np.where(pos, z, -np.inf)

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(still active at T | x, t_x, T); in BG/NBD 1 for customers with no repeat purchase."""
        x, tx, t_end = check_rfm(frequency, recency, T, fit=False)
        return expit(-self._log_odds_dead(x, tx, t_end))

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """E[purchases in (T, T + t] | x, t_x, T]: eq. (10) of Fader, Hardie & Lee (2005), or
        Batislam et al.'s for MBG/NBD.

        The 2F1(r+x, b+x+k; a+b+x-1+k; z) of the papers grows like (1-z)^-(r+x) for heavy
        buyers; Euler's transformation gives the same value from factors that stay bounded:
        ((alpha+T)/(alpha+T+t))^(r+x) 2F1(...) = (1-z)^(a-1) 2F1(a+b-1+k-r, a-1; a+b+x-1+k; z).
        """
        t = as_vector("t", t)
        x, tx, t_end = check_rfm(frequency, recency, T, fit=False)
        t, x, tx, t_end = np.broadcast_arrays(t, x, tx, t_end)
        r, alpha, a, b = self._params()
        k = self._k
        z = t / (alpha + t_end + t)
        c = a + b + x - 1.0 + k
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            tail = 1.0 - (1.0 - z) ** (a - 1.0) * hyp2f1(a + b - 1.0 + k - r, a - 1.0, c, z)
            # near a degenerate fit (a -> 0) the transformed factors give 0 * inf: use the
            # paper's own form there
            bad = ~np.isfinite(tail)
            if bad.any():
                direct = 1.0 - (1.0 - z) ** (r + x) * hyp2f1(r + x, b + x + k, c, z)
                tail = np.where(bad, direct, tail)
        return c / (a - 1.0) * tail * expit(-self._log_odds_dead(x, tx, t_end))

    def expected_purchases_unconditional(self, t: Any) -> np.ndarray:
        """E[X(t)]: expected repeat purchases of a new customer within t (eq. 9 of the paper)."""
        t = as_vector("t", t)
        return self.expected_purchases(t, np.zeros_like(t), np.zeros_like(t), np.zeros_like(t))

    def probability_of_purchase(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(at least one purchase in (T, T + t] | x, t_x, T).

        Given alive, the rate is gamma(r + x, alpha + T), and the customer drops out only right
        after a purchase, so P(none | alive) = ((alpha + T) / (alpha + T + t)) ** (r + x).
        """
        t = as_vector("t", t)
        x, tx, t_end = check_rfm(frequency, recency, T, fit=False)
        t, x, tx, t_end = np.broadcast_arrays(t, x, tx, t_end)
        r, alpha, _a, _b = self._params()
        none = np.exp(-(r + x) * np.log1p(t / (alpha + t_end)))
        return expit(-self._log_odds_dead(x, tx, t_end)) * (1.0 - none)


class ModifiedBetaGeoFitter(BetaGeoFitter):
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007): BG/NBD where the customer may also drop
    out right after the first purchase, so a one-time buyer has a real probability alive,
    1 / (1 + a/b ((alpha+T)/alpha)^r) at x = 0."""

    _k = 1


class GammaGammaFitter(FittedParamsMixin, BaseEstimator):
    """Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"; Fader & Hardie's
    note on the gamma-gamma spend model): each transaction value is gamma(p, nu) with
    nu ~ gamma(q, v) per customer. Fit on customers with frequency > 0, ``monetary_value`` =
    mean value of their repeat transactions. ``penalizer`` adds an L2 penalty."""

    param_names = ("p", "q", "v")

    def __init__(self, penalizer: float = 0.0) -> None:
        self.penalizer = penalizer

    def fit(self, frequency: Any, monetary_value: Any) -> GammaGammaFitter:
        x, m = same_length(
            True, frequency=check_frequency(frequency),
            monetary_value=as_vector("monetary_value", monetary_value),
        )  # fmt: skip
        if np.any(x == 0):
            raise InputError("fit the Gamma-Gamma model on customers with frequency > 0 only")
        if np.any(m == 0):
            raise InputError("monetary_value must be positive for every customer")
        ln_m, ln_x = np.log(m), np.log(x)

        def loglik(theta: np.ndarray) -> tuple[float, np.ndarray]:
            p, q, v = theta
            px = p * x
            ln_xmv = np.log(x * m + v)
            psi = digamma(px + q)
            total = np.sum(
                gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v)
                + (px - 1.0) * ln_m + px * ln_x - (px + q) * ln_xmv
            )  # fmt: skip
            grad = np.array([
                x @ (psi - digamma(px) + ln_m + ln_x - ln_xmv),
                np.sum(psi - ln_xmv) + x.size * (np.log(v) - digamma(q)),
                x.size * q / v - np.sum((px + q) / (x * m + v)),
            ])  # fmt: skip
            return float(total), grad

        start = np.array([1.0, 2.0, float(m.mean())])
        theta, self.log_likelihood_, self.n_iter_, self.converged_ = maximise(
            loglik, start, x.size, self.penalizer
        )
        self._set_params(theta, x.size)
        return self

    def conditional_expected_average_profit(
        self, frequency: Any, monetary_value: Any
    ) -> np.ndarray:
        """E[mean transaction value | x, m_x] = p (v + x m_x) / (p x + q - 1); the population
        mean p v / (q - 1) for frequency 0. Needs q > 1."""
        check_is_fitted(self)
        x, m = same_length(
            False, frequency=check_frequency(frequency),
            monetary_value=as_vector("monetary_value", monetary_value),
        )  # fmt: skip
        p, q, v = (self.params_[k] for k in self.param_names)
        if q <= 1:
            raise InputError(f"q = {q:.4g} <= 1: the mean spend of the population is infinite")
        return p * (v + x * m) / (p * x + q - 1.0)

    def customer_lifetime_value(
        self,
        bgnbd: Any,
        frequency: Any,
        recency: Any,
        T: Any,
        monetary_value: Any,
        time_months: int = 12,
        discount_rate: float = 0.01,
        freq_days: float = 7,
    ) -> np.ndarray:
        """Discounted value of the next ``time_months`` months, the lifetimes way.

        ``bgnbd`` is any fitted purchase model (BG/NBD, MBG/NBD, Pareto/NBD) in units of
        ``freq_days`` days (7: weeks, as :func:`summary_from_transactions` gives). A month is
        365.25 / 12 days, so month i ends at ``i * 30.4375 / freq_days`` model units.
        CLV = sum over months i = 1..time_months of (expected purchases in month i) *
        (expected spend) / (1 + discount_rate) ** i, with ``discount_rate`` per month.
        """
        check_is_fitted(bgnbd)
        if not (isinstance(time_months, int | np.integer) and time_months > 0):
            raise InputError(f"time_months must be a positive whole number, got {time_months!r}")
        if not (discount_rate > -1 and freq_days > 0):
            raise InputError("discount_rate must be > -1 and freq_days > 0")
        spend = self.conditional_expected_average_profit(frequency, monetary_value)
        month = 365.25 / 12.0 / freq_days
        clv: Any = 0.0
        before: Any = 0.0
        for i in range(1, time_months + 1):
            upto = bgnbd.expected_purchases(i * month, frequency, recency, T)
            clv = clv + (upto - before) * spend / (1.0 + discount_rate) ** i
            before = upto
        return np.asarray(clv)
