"""Simulated customers of the three purchase models, for tests and benchmarks.

Each simulator draws ``n`` customers with known population parameters and returns their
(frequency, recency, T) as the fitters read them: repeat purchases, age at the last purchase
(0 without a repeat purchase) and age at the end of observation ``T`` (one value or one per
customer), in the same time unit as the rates.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _ages(n: int, T: Any) -> np.ndarray:
    return np.broadcast_to(np.asarray(T, dtype=np.float64), (n,)).copy()


def _last_of(rng: np.random.Generator, x: np.ndarray, arrivals: np.ndarray, span: np.ndarray):
    """Time of the x-th of k = ``arrivals`` uniform times on (0, span]: span * Beta(x, k-x+1)."""
    tx = np.zeros(x.size)
    has = x > 0
    tx[has] = span[has] * rng.beta(x[has], arrivals[has] - x[has] + 1)
    return tx


def simulate_bgnbd(
    n: int,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: Any,
    seed: int = 0,
    modified: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw (frequency, recency, T) of ``n`` BG/NBD customers, each observed for its ``T``.

    Each customer buys at a gamma(r, alpha) rate and, after each repeat purchase, drops out
    with a beta(a, b) probability; the purchase times are Poisson arrivals on (0, T]. With
    ``modified`` (MBG/NBD, Batislam et al. 2007) the customer may also drop out right after
    the first purchase, at time 0.
    """
    rng = np.random.default_rng(seed)
    t_end = _ages(n, T)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    arrivals = rng.poisson(lam * t_end)  # repeat purchases if nobody dropped out
    # BG/NBD: drops out after repeat purchase G ~ geometric(p) on 1, 2, ...; MBG/NBD: after
    # purchase G - 1, where purchase 0 is the first one.
    last = rng.geometric(np.clip(p, 1e-12, 1.0)) - (1 if modified else 0)
    x = np.minimum(arrivals, last)
    return x.astype(np.float64), _last_of(rng, x, arrivals, t_end), t_end


def simulate_pareto_nbd(
    n: int, r: float, alpha: float, s: float, beta: float, T: Any, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw (frequency, recency, T) of ``n`` Pareto/NBD customers (Schmittlein et al. 1987).

    Each customer buys at a gamma(r, alpha) rate while alive and lives an exponential time
    whose rate is gamma(s, beta); purchases are Poisson arrivals on (0, min(lifetime, T)].
    """
    rng = np.random.default_rng(seed)
    t_end = _ages(n, T)
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    span = np.minimum(rng.exponential(1.0 / np.maximum(mu, 1e-300)), t_end)
    x = rng.poisson(lam * span)
    return x.astype(np.float64), _last_of(rng, x, x, span), t_end
