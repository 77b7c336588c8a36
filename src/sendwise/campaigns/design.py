"""Experiment design: deterministic assignment to variants and holdout, and sample sizes.

Assignment: each (campaign, customer) is hashed with BLAKE2b (stable across machines, Python
versions and runs, unlike ``hash()``) to a number u in [0, 1); the arms own consecutive slices of
[0, 1) in proportion to their shares. The same customer always lands in the same arm of a given
campaign, arms of different campaigns are independent, and the split is recorded in the store
before the first message is sent.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from sendwise.errors import InputError

_SCALE = float(2**64)


def unit_hash(salt: str, keys: Iterable[str]) -> np.ndarray:
    """u in [0, 1) for each key, a stable function of (salt, key)."""
    prefix = salt.encode("utf-8") + b"\x1f"
    digests = [
        int.from_bytes(hashlib.blake2b(prefix + k.encode("utf-8"), digest_size=8).digest(), "big")
        for k in keys
    ]
    return np.asarray(digests, dtype=np.float64) / _SCALE


def assign(campaign_id: str, customer_ids: Sequence[str], arms: Sequence[tuple[str, float]]):
    """The arm of each customer (an array of arm names), by share (in any unit)."""
    names = np.asarray([a for a, _ in arms], dtype=object)
    shares = np.asarray([s for _, s in arms], dtype=np.float64)
    if len(names) == 0 or shares.sum() <= 0 or (shares < 0).any():
        raise InputError("an assignment needs at least one arm and positive shares")
    edges = np.cumsum(shares) / shares.sum()
    u = unit_hash(campaign_id, customer_ids)
    index = np.searchsorted(edges, u, side="right")
    return names[np.minimum(index, len(names) - 1)]


def message_keys(campaign_id: str, customer_ids: Iterable[str]) -> list[str]:
    """The idempotency key of each (campaign, customer): stable, so a replanned or resumed
    campaign finds the same rows."""
    prefix = campaign_id.encode("utf-8") + b"\x1e"
    return [
        hashlib.blake2b(prefix + c.encode("utf-8"), digest_size=12).hexdigest()
        for c in customer_ids
    ]


@dataclass(frozen=True)
class SampleSize:
    per_arm: int
    """Customers needed in the treated arm."""
    control: int
    """Customers needed in the comparison arm (``ratio`` x per_arm)."""
    baseline: float
    target: float
    alpha: float
    power: float


def sample_size(
    baseline: float,
    lift: float,
    *,
    relative: bool = True,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    two_sided: bool = True,
) -> SampleSize:
    """Customers per arm to detect a change of a conversion rate from ``baseline`` by ``lift``
    (relative: 0.1 = +10%; absolute with relative=False: 0.02 = +2 points) with a two-proportion
    z-test at level ``alpha`` and the given ``power``; ``ratio`` = control size / treated size.

    The normal approximation with the pooled variance under the null and the unpooled one under
    the alternative (Fleiss, Levin & Paik, *Statistical Methods for Rates and Proportions*,
    eq. 4.14 without continuity correction).
    """
    target = baseline * (1 + lift) if relative else baseline + lift
    if not (0 < baseline < 1 and 0 < target < 1) or math.isclose(target, baseline):
        raise InputError(
            f"baseline {baseline:g} and target {target:g} must be different rates in (0, 1)"
        )
    if not (0 < alpha < 1 and 0 < power < 1 and ratio > 0):
        raise InputError("alpha and power must be in (0, 1) and ratio positive")
    z_a = norm.ppf(1 - alpha / 2) if two_sided else norm.ppf(1 - alpha)
    z_b = norm.ppf(power)
    p_bar = (target + ratio * baseline) / (1 + ratio)
    null_sd = math.sqrt(p_bar * (1 - p_bar) * (1 + 1 / ratio))
    alt_sd = math.sqrt(target * (1 - target) + baseline * (1 - baseline) / ratio)
    n = ((z_a * null_sd + z_b * alt_sd) / (target - baseline)) ** 2
    treated = math.ceil(n - 1e-9)
    return SampleSize(treated, math.ceil(treated * ratio - 1e-9), baseline, target, alpha, power)
