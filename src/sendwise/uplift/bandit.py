"""Adaptive allocation: Thompson sampling over a campaign's variants, sent in waves.

Before each wave, the share of each variant is the posterior probability that it is the best
(Beta(1 + successes, 1 + failures) per variant, estimated from ``draws`` joint samples),
mixed with a floor: every variant keeps at least ``floor`` of the sent traffic, so that an
early unlucky variant is still measured. The holdout's share is fixed for the whole test and
never adapts: the comparison of every variant with the holdout stays a randomised one.

The reward is a 0/1 outcome per customer: a click or a conversion, whichever the campaign
optimises. Sequential looks after every wave are safe for the intervals below:

* :func:`confidence_sequence`: an always-valid interval for one arm's rate (Robbins' normal
  mixture for a sub-Gaussian mean with sigma = 1/2; Howard et al. 2021, eq. 3.7): it holds at
  every wave at once with probability 1 - alpha, and stays valid under adaptive allocation
  because each arm's outcomes are still a martingale in that arm's own sample size.
* :func:`lift_sequence`: the difference of a variant and the holdout from the two arms'
  sequences at alpha / 2 each (a union bound).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from sendwise.errors import InputError

HOLDOUT = "holdout"


def confidence_sequence(
    successes: int, n: int, alpha: float = 0.05, rho: float = 250.0
) -> tuple[float, float]:
    """Always-valid (1 - alpha) interval of a rate after ``n`` trials; ``rho`` (in sigma^2 x
    trials) sets where it is tightest (about ``4 * rho`` trials)."""
    if n == 0:
        return (0.0, 1.0)
    v = 0.25 * n  # intrinsic time: n * sigma^2 with sigma = 1/2
    radius = math.sqrt((v + rho * 0.25) * math.log((v + rho * 0.25) / (rho * 0.25 * alpha**2)))
    mean = successes / n
    return (max(0.0, mean - radius / n), min(1.0, mean + radius / n))


def lift_sequence(x1: int, n1: int, x0: int, n0: int, alpha: float = 0.05) -> tuple[float, float]:
    lo1, hi1 = confidence_sequence(x1, n1, alpha / 2)
    lo0, hi0 = confidence_sequence(x0, n0, alpha / 2)
    return (lo1 - hi0, hi1 - lo0)


@dataclass
class ThompsonAllocator:
    """Shares of the next wave from the results so far (see module)."""

    variants: Sequence[str]
    holdout: float = 0.1
    floor: float = 0.05
    draws: int = 4000
    seed: int = 0

    def __post_init__(self) -> None:
        k = len(self.variants)
        if k < 2 or len(set(self.variants)) != k or HOLDOUT in self.variants:
            raise InputError(
                "Thompson sampling needs two or more distinct variants (not named holdout)"
            )
        if not 0 <= self.holdout < 1:
            raise InputError(f"holdout is a share in [0, 1), got {self.holdout}")
        if not 0 <= self.floor * k <= 1:
            raise InputError(f"a floor of {self.floor} for {k} variants exceeds the whole")
        self._rng = np.random.default_rng(self.seed)

    def p_best(self, successes: Mapping[str, int], trials: Mapping[str, int]) -> np.ndarray:
        s = np.array([successes.get(v, 0) for v in self.variants], np.float64)
        n = np.array([trials.get(v, 0) for v in self.variants], np.float64)
        if np.any(s < 0) or np.any(s > n):
            raise InputError("successes must lie between 0 and the trials of each variant")
        sample = self._rng.beta(1 + s, 1 + n - s, size=(self.draws, len(s)))
        return np.bincount(sample.argmax(axis=1), minlength=len(s)) / self.draws

    def shares(self, successes: Mapping[str, int], trials: Mapping[str, int]) -> dict[str, float]:
        """Each variant's share of the next wave and the holdout's (fixed); they sum to 1."""
        k = len(self.variants)
        sent = self.floor + (1 - k * self.floor) * self.p_best(successes, trials)
        out = {v: float((1 - self.holdout) * s) for v, s in zip(self.variants, sent, strict=True)}
        out[HOLDOUT] = self.holdout
        return out


def split(n: int, shares: Mapping[str, float]) -> dict[str, int]:
    """Whole counts of ``n`` by ``shares`` (largest remainders; they sum to ``n``)."""
    names = list(shares)
    raw = np.array([shares[a] for a in names]) * n
    counts = np.floor(raw).astype(np.int64)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    return dict(zip(names, counts.tolist(), strict=True))


@dataclass
class WaveLog:
    """What happened wave by wave: the shares used, the counts sent and the running results."""

    shares: list[dict[str, float]] = field(default_factory=list)
    trials: dict[str, int] = field(default_factory=dict)
    successes: dict[str, int] = field(default_factory=dict)

    def record(
        self, shares: Mapping[str, float], trials: Mapping[str, int], successes: Mapping[str, int]
    ) -> None:
        self.shares.append(dict(shares))
        for a, n in trials.items():
            self.trials[a] = self.trials.get(a, 0) + int(n)
            self.successes[a] = self.successes.get(a, 0) + int(successes.get(a, 0))

    def intervals(self, alpha: float = 0.05) -> dict[str, dict[str, float]]:
        """Per arm: rate with its always-valid interval; per variant: lift over the holdout."""
        out = {}
        x0, n0 = self.successes.get(HOLDOUT, 0), self.trials.get(HOLDOUT, 0)
        for a, n in self.trials.items():
            x = self.successes[a]
            low, high = confidence_sequence(x, n, alpha)
            row = {
                "trials": n,
                "successes": x,
                "rate": x / n if n else math.nan,
                "low": low,
                "high": high,
            }
            if a != HOLDOUT and n0:
                row["lift_low"], row["lift_high"] = lift_sequence(x, n, x0, n0, alpha)
                row["lift"] = row["rate"] - x0 / n0
            out[a] = row
        return out
