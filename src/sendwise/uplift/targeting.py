"""Targeting by uplift, with the proof built in: the audience is split at random into two
halves (a hash of the campaign and the customer, so the split is the same on every machine and
every rerun); in one half the ``top`` percent by predicted uplift is the *targeted* group, in
the other a random ``top`` percent is the *random* group of the same size. Both groups then get
the campaign's arms (variants and holdout) as usual, so each group's lift over its own holdout
is measured, and the difference of the two lifts is what targeting by uplift added over
sending to as many customers chosen at random.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from sendwise.errors import InputError

TARGETED, RANDOM = "targeted", "random"


def _unit(campaign_id: str, salt: str, ids: Sequence[str]) -> np.ndarray:
    """A uniform number in [0, 1) per customer, fixed by the campaign and the salt."""
    out = np.empty(len(ids))
    for i, cid in enumerate(ids):
        digest = hashlib.blake2b(f"{campaign_id}\x1f{salt}\x1f{cid}".encode(), digest_size=8)
        out[i] = int.from_bytes(digest.digest(), "big") / 2**64
    return out


def in_targeted_half(campaign_id: str, customer_ids: Sequence[str]) -> np.ndarray:
    """True for the customers of the half whose group is chosen by uplift."""
    return _unit(campaign_id, "half", [str(c) for c in customer_ids]) < 0.5


def uplift_groups(
    customer_ids: Sequence[str], uplift: np.ndarray, top: float, campaign_id: str
) -> pd.Series:
    """``targeted`` / ``random`` per customer id, or missing for those in neither group.
    ``top`` is a percent of each half."""
    if not 0 < top <= 100:
        raise InputError(f"top is a percent in (0, 100], got {top!r}")
    ids = [str(c) for c in customer_ids]
    score = np.asarray(uplift, dtype=np.float64)
    if score.shape != (len(ids),) or not np.all(np.isfinite(score)):
        raise InputError("one finite uplift score per customer is needed")
    half = in_targeted_half(campaign_id, ids)
    draw = _unit(campaign_id, "draw", ids)
    group = pd.Series(pd.NA, index=ids, dtype="string")
    for members, key, name in ((half, -score, TARGETED), (~half, draw, RANDOM)):
        rows = np.flatnonzero(members)
        # ties in the score are broken by the random draw, never by the input order
        order = rows[np.lexsort((draw[rows], key[rows]))]
        group.iloc[order[: round(len(rows) * top / 100)]] = name
    return group
