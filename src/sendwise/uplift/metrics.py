"""How well a score ranks customers by the effect of an email: Qini and uplift curves, their
areas, uplift at k and uplift by decile, on data from a randomised experiment.

Every function takes three aligned vectors: ``y`` (the outcome, 0/1 or an amount), ``uplift``
(the model's score, larger = send first) and ``treatment`` (1 = was sent the email, 0 = held
out). Customers with the same score are one block: a cut-off never splits a tie, so the figures
do not depend on the order of the rows (scikit-uplift's curves do; see ADR 0130).

* Qini curve, at the top n customers: ``Q(n) = Y_t(n) - Y_c(n) * N_t(n) / N_c(n)``, the
  incremental outcomes among them (Radcliffe 2007), where Y and N count the outcomes and rows of
  each arm among the top n.
* Uplift curve: ``U(n) = (Y_t(n) / N_t(n) - Y_c(n) / N_c(n)) * n``.
* Qini coefficient / AUUC: the mean height of the curve above the straight line from (0, 0) to
  its end point (random targeting), divided by the number of rows: in outcomes per customer.
  Positive = better than random.
* Uplift at k: the difference of the arms' mean outcomes among the top ``k`` share of all rows
  (``"overall"``), or among the top ``k`` of each arm ranked separately (``"by_group"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from sendwise.errors import InputError


def check_experiment(y: Any, uplift: Any, treatment: Any) -> tuple[np.ndarray, ...]:
    """Finite float outcome and score vectors of one length, and a 0/1 treatment with both arms."""
    yy = np.asarray(y, dtype=np.float64)
    uu = np.asarray(uplift, dtype=np.float64)
    tt = np.asarray(treatment)
    if yy.ndim != 1 or uu.shape != yy.shape or tt.shape != yy.shape:
        raise InputError(
            f"y, uplift and treatment must be 1-D of one length, got "
            f"{yy.shape}, {uu.shape}, {tt.shape}"
        )
    if not (np.all(np.isfinite(yy)) and np.all(np.isfinite(uu))):
        raise InputError("outcomes and scores must be finite numbers")
    if not np.isin(tt, (0, 1)).all():
        raise InputError("treatment must hold 0 (held out) and 1 (sent) only")
    tt = tt.astype(np.int8)
    if tt.min() == tt.max():
        raise InputError("the experiment needs treated and held-out rows")
    return yy, uu, tt


def _cumulative(y: np.ndarray, u: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, ...]:
    """Counts at the end of each block of tied scores, best score first (with a 0 start)."""
    order = np.argsort(-u, kind="stable")
    u, y, t = u[order], y[order], t[order]
    ends = np.flatnonzero(np.r_[u[1:] != u[:-1], True])
    nt = np.r_[0, np.cumsum(t)[ends]].astype(np.float64)
    nc = np.r_[0, np.cumsum(1 - t)[ends]].astype(np.float64)
    yt = np.r_[0, np.cumsum(y * t)[ends]]
    yc = np.r_[0, np.cumsum(y * (1 - t))[ends]]
    return nt + nc, nt, nc, yt, yc


def qini_curve(y: Any, uplift: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    """(number of customers targeted, incremental outcomes among them), from (0, 0)."""
    n, nt, nc, yt, yc = _cumulative(*check_experiment(y, uplift, treatment))
    ratio = np.divide(nt, nc, out=np.zeros_like(nt), where=nc > 0)
    return n, yt - yc * ratio


def uplift_curve(y: Any, uplift: Any, treatment: Any) -> tuple[np.ndarray, np.ndarray]:
    """(number targeted, difference of the arms' means among them times that number)."""
    n, nt, nc, yt, yc = _cumulative(*check_experiment(y, uplift, treatment))
    rate_t = np.divide(yt, nt, out=np.zeros_like(yt), where=nt > 0)
    rate_c = np.divide(yc, nc, out=np.zeros_like(yc), where=nc > 0)
    return n, (rate_t - rate_c) * n


def _area_above_random(x: np.ndarray, h: np.ndarray) -> float:
    total = x[-1]
    gain = h - h[-1] * x / total
    return float(np.trapezoid(gain, x) / (total * total))


def qini_coefficient(y: Any, uplift: Any, treatment: Any) -> float:
    """Area between the Qini curve and random targeting, per customer squared (see module)."""
    return _area_above_random(*qini_curve(y, uplift, treatment))


def auuc(y: Any, uplift: Any, treatment: Any) -> float:
    """Area between the uplift curve and random targeting, per customer squared."""
    return _area_above_random(*uplift_curve(y, uplift, treatment))


def _top(scores: np.ndarray, k: float) -> np.ndarray:
    """Weight of each row in the top ``ceil(k * n)``: 1 above the cut-off score, 0 below, and
    the rows tied at the cut-off share the places left equally (no dependence on row order)."""
    count = int(np.ceil(len(scores) * k))
    cut = np.sort(scores)[::-1][count - 1]
    above, tied = scores > cut, scores == cut
    return above + tied * ((count - above.sum()) / tied.sum())


def _mean(y: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(y * w) / np.sum(w)) if np.sum(w) > 0 else float("nan")


def uplift_at_k(
    y: Any, uplift: Any, treatment: Any, k: float = 0.3, strategy: str = "overall"
) -> float:
    """Mean outcome of the treated minus the held-out among the top ``k`` (see module)."""
    if not 0 < k <= 1:
        raise InputError(f"k is a share in (0, 1], got {k!r}")
    yy, uu, tt = check_experiment(y, uplift, treatment)
    sent, held = tt == 1, tt == 0
    if strategy == "overall":
        w = _top(uu, k)
        return _mean(yy[sent], w[sent]) - _mean(yy[held], w[held])
    if strategy == "by_group":
        return _mean(yy[sent], _top(uu[sent], k)) - _mean(yy[held], _top(uu[held], k))
    raise InputError(f"strategy is 'overall' or 'by_group', not {strategy!r}")


def uplift_by_decile(y: Any, uplift: Any, treatment: Any, bins: int = 10) -> pd.DataFrame:
    """One row per tenth of the customers by score (best first): its size in each arm, the
    arms' mean outcomes, their difference and the mean predicted uplift."""
    yy, uu, tt = check_experiment(y, uplift, treatment)
    order = np.argsort(-uu, kind="stable")
    rows = []
    for i, part in enumerate(np.array_split(order, bins), start=1):
        ys, ts = yy[part], tt[part]
        rate_t = ys[ts == 1].mean() if (ts == 1).any() else np.nan
        rate_c = ys[ts == 0].mean() if (ts == 0).any() else np.nan
        rows.append(
            {
                "decile": i,
                "n_treated": int(ts.sum()),
                "n_control": int((ts == 0).sum()),
                "rate_treated": rate_t,
                "rate_control": rate_c,
                "uplift": rate_t - rate_c,
                "predicted": float(uu[part].mean()),
            }
        )
    return pd.DataFrame(rows)
