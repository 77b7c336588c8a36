"""Pareto/NBD purchase-count model (Schmittlein, Morrison & Colombo 1987), fitted by maximum
likelihood with Fader & Hardie's likelihood ("A note on deriving the Pareto/NBD model and
related expressions", 2005).

While alive a customer buys at a Poisson rate lambda ~ gamma(r, alpha) and dies after an
exponential lifetime whose rate mu ~ gamma(s, beta). Inputs as for BG/NBD: frequency x,
recency t_x and age T, in one time unit.

Everything runs in log space through one function. With E(t) = (alpha+t)^-(r+x) (beta+t)^-s,

    F(t) = (r+s+x) * integral from t to infinity of (alpha+y)^-(r+x) (beta+y)^-(s+1) dy,

the likelihood is Gamma(r+x) alpha^r beta^s / Gamma(r) * [E(T) + s/(r+s+x) (F(t_x) - F(T))]
(the second term is Fader & Hardie's s/(r+s+x) A0). Euler's transformation of their 2F1 gives
F(t) = E(t) H(t) with H a 2F1(1, b; c; z) whose parameters are all positive (no overflow for
heavy buyers, unlike 2F1(r+s+x, s+1; r+s+x+1; z) / (alpha+t)^(r+s+x)):

- alpha >= beta: H = 2F1(1, r+x; r+s+x+1; (alpha-beta)/(alpha+t));
- alpha < beta:  H = (alpha+t)/(beta+t) 2F1(1, s+1; r+s+x+1; (beta-alpha)/(beta+t)).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit, gammaln, hyp2f1
from sklearn.base import BaseEstimator

from sendwise.predict.btyd import PURCHASE_LOG_BOUNDS, weighted_rows
from sendwise.predict.common import (
    FittedParamsMixin,
    as_vector,
    check_rfm,
    maximise,
    numeric_gradient,
)


def log_e(r: float, alpha: float, s: float, beta: float, x: np.ndarray, t: np.ndarray):
    """log E(t) = -(r+x) log(alpha+t) - s log(beta+t)."""
    return -(r + x) * np.log(alpha + t) - s * np.log(beta + t)


def log_f(r: float, alpha: float, s: float, beta: float, x: np.ndarray, t: np.ndarray):
    """log F(t), F as in the module docstring (decreasing in t)."""
    c = r + s + x + 1.0
    if alpha >= beta:
        h = np.log(hyp2f1(1.0, r + x, c, (alpha - beta) / (alpha + t)))
    else:
        z = (beta - alpha) / (beta + t)
        h = np.log(hyp2f1(1.0, s + 1.0, c, z)) + np.log(alpha + t) - np.log(beta + t)
    return log_e(r, alpha, s, beta, x, t) + h


def log_f_between(r, alpha, s, beta, x, t0, t1) -> np.ndarray:
    """log(F(t0) - F(t1)) for t0 <= t1; -inf where t0 == t1.

    Where F(t1) is within 1e-4 of F(t0) the difference loses digits; there the integral is
    taken by the midpoint rule instead (relative error about 1e-9 at that threshold).
    """
    f0, f1 = log_f(r, alpha, s, beta, x, t0), log_f(r, alpha, s, beta, x, t1)
    return _between(f0, f1, r, alpha, s, beta, x, t0, t1)


def _between(f0, f1, r, alpha, s, beta, x, t0, t1) -> np.ndarray:
    d = np.minimum(f1 - f0, 0.0)
    mid = (t0 + t1) / 2.0
    with np.errstate(divide="ignore"):
        exact = f0 + np.log1p(-np.exp(d))
        near = (np.log(r + s + x) + np.log(t1 - t0) - (r + x) * np.log(alpha + mid)
                - (s + 1.0) * np.log(beta + mid))  # fmt: skip
    return np.where(d > -1e-4, near, exact)


class ParetoNBDFitter(FittedParamsMixin, BaseEstimator):
    """Pareto/NBD: purchases at gamma(r, alpha) Poisson rates during an exponential lifetime
    at gamma(s, beta) rates. ``penalizer`` adds an L2 penalty. The gradient is taken by
    central differences (the derivatives of 2F1 in its parameters have no closed form)."""

    param_names = ("r", "alpha", "s", "beta")

    def __init__(self, penalizer: float = 0.0, shrinkage: float = 0.0) -> None:
        self.penalizer = penalizer
        self.shrinkage = shrinkage

    def fit(self, frequency: Any, recency: Any, T: Any) -> ParetoNBDFitter:
        x, tx, t_end, w = weighted_rows(*check_rfm(frequency, recency, T, fit=True))
        ux, inv = np.unique(x, return_inverse=True)
        wx = np.bincount(inv, weights=w)
        n = float(w.sum())
        # F at each distinct (x, t) once: 2F1 is the costly part, and ages repeat
        pairs = np.column_stack([np.concatenate([x, x]), np.concatenate([tx, t_end])])
        upairs, where = np.unique(pairs, axis=0, return_inverse=True)
        at_tx, at_t = where[: x.size], where[x.size :]
        px, pt = upairs[:, 0], upairs[:, 1]

        def total(theta: np.ndarray) -> float:
            r, alpha, s, beta = theta
            head = wx @ (gammaln(r + ux) - gammaln(r)) + n * (r * np.log(alpha) + s * np.log(beta))
            lf = log_f(r, alpha, s, beta, px, pt)
            between = _between(lf[at_tx], lf[at_t], r, alpha, s, beta, x, tx, t_end)
            dead = np.log(s / (r + s + x)) + between
            ll = head + w @ np.logaddexp(log_e(r, alpha, s, beta, x, t_end), dead)
            return float(ll) if np.isfinite(ll) else -1e300

        mean_t = max(float(w @ t_end) / n, 1e-3)
        start = np.array([1.0, mean_t, 1.0, mean_t])
        theta, self.log_likelihood_, self.n_iter_, self.converged_ = maximise(
            numeric_gradient(total), start, n, self.penalizer, PURCHASE_LOG_BOUNDS, self.shrinkage
        )
        self._set_params(theta, n)
        return self

    def _log_odds_dead(self, x: np.ndarray, tx: np.ndarray, t_end: np.ndarray) -> np.ndarray:
        """log P(dead at T | history) - log P(alive at T | history)."""
        r, alpha, s, beta = self._params()
        dead = np.log(s / (r + s + x)) + log_f_between(r, alpha, s, beta, x, tx, t_end)
        return dead - log_e(r, alpha, s, beta, x, t_end)

    def probability_alive(self, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(still alive at T | x, t_x, T)."""
        x, tx, t_end = check_rfm(frequency, recency, T, fit=False)
        return expit(-self._log_odds_dead(x, tx, t_end))

    def expected_purchases(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """E[purchases in (T, T + t] | x, t_x, T] = P(alive) (r+x)/(alpha+T) *
        (beta+T)/(s-1) [1 - ((beta+T)/(beta+T+t))^(s-1)], with its limit (beta+T) log(...)
        at s = 1."""
        t = as_vector("t", t)
        x, tx, t_end = check_rfm(frequency, recency, T, fit=False)
        t, x, tx, t_end = np.broadcast_arrays(t, x, tx, t_end)
        r, alpha, s, beta = self._params()
        u = np.log1p(t / (beta + t_end))
        life = (beta + t_end) * (
            u if abs(s - 1.0) < 1e-9 else -np.expm1(-(s - 1.0) * u) / (s - 1.0)
        )
        return (r + x) / (alpha + t_end) * life * expit(-self._log_odds_dead(x, tx, t_end))

    def expected_purchases_unconditional(self, t: Any) -> np.ndarray:
        """E[X(t)] of a new customer: r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]."""
        t = as_vector("t", t)
        return self.expected_purchases(t, np.zeros_like(t), np.zeros_like(t), np.zeros_like(t))

    def probability_of_purchase(self, t: Any, frequency: Any, recency: Any, T: Any) -> np.ndarray:
        """P(at least one purchase in (T, T + t] | x, t_x, T).

        Given alive at T, the rates are gamma(r+x, alpha+T) and gamma(s, beta+T), and
        P(none | alive) = E(T+t)/E(T) + s/(r+s+x) (F(T) - F(T+t)) / E(T): either the
        customer lives through the window without buying or dies before the first purchase.
        """
        t = as_vector("t", t)
        x, tx, t_end = check_rfm(frequency, recency, T, fit=False)
        t, x, tx, t_end = np.broadcast_arrays(t, x, tx, t_end)
        r, alpha, s, beta = self._params()
        e_now = log_e(r, alpha, s, beta, x, t_end)
        live = log_e(r, alpha, s, beta, x, t_end + t) - e_now
        die = np.log(s / (r + s + x)) + log_f_between(r, alpha, s, beta, x, t_end, t_end + t)
        none = np.exp(np.logaddexp(live, die - e_now))
        return expit(-self._log_odds_dead(x, tx, t_end)) * np.clip(1.0 - none, 0.0, 1.0)
