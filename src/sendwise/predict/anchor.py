"""Anchoring calibrated probabilities to the base rate BG/NBD expects at the scoring date.

A classifier calibrated on past snapshots carries their base rate. When the rate moves (a
shop's mix of new and old customers changes, a season ends), its probabilities move away from
the truth while its ranking stays good. BG/NBD, fitted on the history before the scoring date
only, estimates how many buyers will buy in the window; a single shift of the log-odds makes the
buyers' mean probability match that estimate. The ranking (ROC-AUC) is unchanged. On Online
Retail judged at 2011-06-11 (90 days) this took the calibration error from 0.117 to 0.029; on
the simulated shop, whose base rate is stable, it changed little either way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit

from sendwise.predict.baselines import Btyd

LIMIT = 5.0


def anchor_shift(p: np.ndarray, target: np.ndarray) -> float:
    """The log-odds shift making mean(p) equal mean(target) over rows where target is known."""
    rows = ~np.isnan(target)
    if rows.sum() == 0:
        return 0.0
    lp = logit(np.clip(p[rows], 1e-6, 1 - 1e-6))
    goal = float(np.mean(target[rows]))

    def gap(d: float) -> float:
        return float(expit(lp + d).mean()) - goal

    if gap(-LIMIT) > 0 or gap(LIMIT) < 0:  # far outside: do not trust the anchor
        return 0.0
    return float(brentq(gap, -LIMIT, LIMIT))


def shifted(p: np.ndarray, delta: float) -> np.ndarray:
    if delta == 0.0:
        return p
    return expit(logit(np.clip(p, 1e-6, 1 - 1e-6)) + delta)


def anchor_target(name: str, btyd: Btyd, frame: pd.DataFrame, days: int) -> np.ndarray:
    """Per customer, BG/NBD's probability of the event the classifier predicts."""
    p_any = btyd.p_any(frame, days)
    return p_any if name == "propensity" else 1.0 - p_any
