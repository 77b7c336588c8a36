"""The statistics of campaign results: intervals, tests, corrections (numpy + scipy).

Everything takes counts or arrays, so it can be checked against published figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

Z95 = 1.959963984540054
SMALL_COUNT = 5  # an expected cell below this uses Fisher's exact test


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion (good near 0 and 1, unlike the Wald interval)."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Difference:
    """``a - b`` with a 95% interval and a two-sided p-value from ``test``."""

    estimate: float
    low: float
    high: float
    p_value: float
    test: str


def two_proportions(x1: int, n1: int, x0: int, n0: int) -> Difference:
    """Difference of proportions x1/n1 - x0/n0: Newcombe's hybrid Wilson interval; pooled
    two-proportion z-test, or Fisher's exact test when an expected count is below 5."""
    if n1 == 0 or n0 == 0:
        return Difference(math.nan, math.nan, math.nan, math.nan, "none")
    p1, p0 = x1 / n1, x0 / n0
    l1, u1 = wilson(x1, n1)
    l0, u0 = wilson(x0, n0)
    d = p1 - p0
    low = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    pooled = (x1 + x0) / (n1 + n0)
    expected = min(pooled * n1, pooled * n0, (1 - pooled) * n1, (1 - pooled) * n0)
    if expected < SMALL_COUNT:
        table = [[x1, n1 - x1], [x0, n0 - x0]]
        return Difference(d, low, high, float(stats.fisher_exact(table).pvalue), "fisher")
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    p = 2 * stats.norm.sf(abs(d) / se) if se > 0 else 1.0
    return Difference(d, low, high, float(p), "z")


def welch(a: np.ndarray, b: np.ndarray) -> Difference:
    """Difference of means (e.g. revenue per recipient) with Welch's t interval and test."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return Difference(math.nan, math.nan, math.nan, math.nan, "none")
    d = a.mean() - b.mean()
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Difference(d, d, d, 1.0 if d == 0 else 0.0, "welch")
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    t = stats.t.ppf(0.975, df)
    p = 2 * stats.t.sf(abs(d) / se, df)
    return Difference(float(d), float(d - t * se), float(d + t * se), float(p), "welch")


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (family-wise error control, any dependence)."""
    p = np.asarray(p_values, float)
    order = np.argsort(np.where(np.isnan(p), np.inf, p))
    m = int(np.sum(~np.isnan(p)))
    adjusted = np.full(len(p), np.nan)
    running = 0.0
    for rank, i in enumerate(order):
        if np.isnan(p[i]):
            continue
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


@dataclass(frozen=True)
class SampleRatio:
    observed: dict[str, int]
    expected_share: dict[str, float]
    p_value: float

    @property
    def mismatch(self) -> bool:
        """The conventional alarm: p < 0.001 means the split is not what was designed."""
        return self.p_value < 0.001


def sample_ratio(observed: dict[str, int], shares: dict[str, float]) -> SampleRatio:
    """Chi-square goodness of fit of the arms' sizes against the designed shares."""
    arms = [a for a in observed if shares.get(a, 0) > 0]
    counts = np.array([observed[a] for a in arms], float)
    weights = np.array([shares[a] for a in arms], float)
    if len(arms) < 2 or counts.sum() == 0:
        return SampleRatio(observed, shares, 1.0)
    expected = counts.sum() * weights / weights.sum()
    p = float(stats.chisquare(counts, expected).pvalue)
    return SampleRatio(observed, shares, p)


def msprt(x1: int, n1: int, x0: int, n0: int, tau: float) -> float:
    """Always-valid p-value of the mixture sequential probability ratio test (normal mixture
    N(0, tau^2) over the difference of proportions; Johari et al. 2017). Valid at every look:
    a campaign may be checked daily and stopped when it falls below alpha, as long as the
    running minimum over the looks is what is compared."""
    if min(n1, n0) == 0:
        return 1.0
    p1, p0 = x1 / n1, x0 / n0
    v = p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0
    if v <= 0:
        return 1.0
    t2 = tau * tau
    log_lr = 0.5 * math.log(v / (v + t2)) + (p1 - p0) ** 2 * t2 / (2 * v * (v + t2))
    return float(min(1.0, math.exp(-log_lr)))
