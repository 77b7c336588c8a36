"""Evaluation metrics of the predictive models, computed the way the scores are used.

- :func:`classification_metrics`: ROC-AUC, PR-AUC, Brier, log-loss and top-decile lift.
- :func:`gains_table`: customers ranked by score in ``bins`` equal-count groups, with lift.
- :func:`calibration_table` / :func:`expected_calibration_error`: predicted vs observed rates.
- :func:`regression_metrics`: errors, totals and ranking quality of a value forecast.
- :func:`multiclass_metrics`: top-1 / top-3 accuracy and log-loss of a class forecast.

Rankings use a stable sort on the score, highest first, so tied scores keep their input order
and every figure is deterministic. The top decile is the ``ceil(n / 10)`` highest scores,
the same customers as decile 1 of :func:`gains_table`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from sendwise.errors import InputError

CLIP = 1e-6
"""Probabilities are clipped to ``[CLIP, 1 - CLIP]`` in log-losses: one confident miss
costs at most ``-log(1e-6) ≈ 13.8`` instead of infinity."""

_Z95 = 1.959963984540054  # two-sided 95% normal quantile


def as_floats(name: str, values: Any) -> np.ndarray:
    """A 1-D float array (pandas NA becomes NaN), or :class:`InputError`."""
    try:
        if isinstance(values, pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
            arr = pd.Series(values).to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numeric ({exc})") from None
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def check_scores(name: str, values: Any, n: int) -> np.ndarray:
    arr = as_floats(name, values)
    if arr.size != n:
        raise InputError(f"y_true and {name} differ in length: {n} and {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains {int(np.sum(~np.isfinite(arr)))} NaN or infinite values")
    return arr


def check_labels(y_true: Any) -> np.ndarray:
    y = as_floats("y_true", y_true)
    if y.size == 0:
        raise InputError("cannot evaluate on zero customers")
    if not np.all((y == 0) | (y == 1)):
        raise InputError("y_true must hold only 0/1 (or False/True) outcomes, none missing")
    return y.astype(np.int8)


def rank_desc(score: np.ndarray) -> np.ndarray:
    """Positions from the highest score down; ties keep their input order."""
    return np.argsort(-score, kind="stable")


def _groups(n: int, bins: int) -> np.ndarray:
    """Group 0..bins-1 of each rank 0..n-1: equal counts, the first groups one larger."""
    if not (isinstance(bins, int | np.integer) and bins >= 1):
        raise InputError(f"bins must be a positive integer, got {bins!r}")
    return np.arange(n, dtype=np.int64) * int(bins) // n


def _top_decile(n: int) -> int:
    return max(1, math.ceil(n / 10))


def classification_metrics(y_true: Any, p: Any, probabilities: bool = True) -> dict[str, float]:
    """Headline metrics of a binary score against 0/1 outcomes.

    ``roc_auc``, ``pr_auc`` (average precision) and ``top_decile_lift`` (positive rate among the
    10% highest scores divided by the base rate) only use the ranking, so ``p`` may be any
    score (recency, an RFM score, expected purchases). ``brier`` and ``log_loss`` need
    probabilities; with ``probabilities=False`` they are NaN.
    """
    y = check_labels(y_true)
    score = check_scores("p", p, y.size)
    positives = int(y.sum())
    if positives in (0, y.size):
        raise InputError(f"y_true has one class only ({positives} positives of {y.size})")
    if probabilities and (score.min() < 0 or score.max() > 1):
        raise InputError("p must lie in [0, 1]; pass probabilities=False for other scores")
    base_rate = positives / y.size
    top = rank_desc(score)[: _top_decile(y.size)]
    out = {
        "n": float(y.size),
        "positives": float(positives),
        "base_rate": base_rate,
        "roc_auc": float(roc_auc_score(y, score)),
        "pr_auc": float(average_precision_score(y, score)),
        "brier": float("nan"),
        "log_loss": float("nan"),
        "top_decile_lift": float(y[top].mean() / base_rate),
    }
    if probabilities:
        q = np.clip(score, CLIP, 1 - CLIP)
        out["brier"] = float(brier_score_loss(y, score))
        out["log_loss"] = float(-np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)))
    return out


def gains_table(y_true: Any, score: Any, bins: int = 10) -> pd.DataFrame:
    """Cumulative gains and lift by score group (decile 1 = highest scores).

    ``cum_positives_share`` is the gain: the share of all positives found by contacting the
    customers down to that decile; ``lift`` = decile rate / base rate; ``cum_lift`` = gain /
    share of customers contacted. Groups hold ``n // bins`` or one more customers.
    """
    y = check_labels(y_true)
    s = check_scores("score", score, y.size)
    total = int(y.sum())
    if total == 0:
        raise InputError("y_true has no positives: gains are undefined")
    group = _groups(y.size, bins)
    ranked = y[rank_desc(s)]
    customers = np.bincount(group, minlength=bins)
    positives = np.bincount(group, weights=ranked, minlength=bins)
    keep = customers > 0  # fewer customers than bins
    customers, positives = customers[keep], positives[keep].astype(np.int64)
    base = total / y.size
    cum_customers = np.cumsum(customers) / y.size
    cum_positives = np.cumsum(positives) / total
    rate = positives / customers
    return pd.DataFrame(
        {
            "decile": np.flatnonzero(keep) + 1,
            "customers": customers,
            "positives": positives,
            "rate": rate,
            "cum_customers_share": cum_customers,
            "cum_positives_share": cum_positives,
            "lift": rate / base,
            "cum_lift": cum_positives / cum_customers,
        }
    )


def wilson_interval(successes: Any, n: Any, z: float = _Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (95% by default)."""
    k, m = np.asarray(successes, dtype=np.float64), np.asarray(n, dtype=np.float64)
    phat = k / m
    denom = 1 + z**2 / m
    centre = (phat + z**2 / (2 * m)) / denom
    half = z * np.sqrt(phat * (1 - phat) / m + z**2 / (4 * m**2)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def calibration_table(y_true: Any, p: Any, bins: int = 10) -> pd.DataFrame:
    """Mean predicted probability vs observed rate in ``bins`` quantile bins of ``p``.

    Bins hold equal numbers of customers by rank of ``p`` (bin 1 = lowest), so tied
    probabilities may straddle a bin edge; ``low`` / ``high`` bound the observed rate with a
    95% Wilson interval. A calibrated model has ``mean_predicted`` inside ``[low, high]``.
    """
    y = check_labels(y_true)
    q = check_scores("p", p, y.size)
    if q.min() < 0 or q.max() > 1:
        raise InputError("p must lie in [0, 1]")
    order = np.argsort(q, kind="stable")
    group = _groups(y.size, bins)
    customers = np.bincount(group, minlength=bins)
    keep = customers > 0
    customers = customers[keep]
    predicted = np.bincount(group, weights=q[order], minlength=bins)[keep]
    observed = np.bincount(group, weights=y[order], minlength=bins)[keep]
    low, high = wilson_interval(observed, customers)
    return pd.DataFrame(
        {
            "bin": np.flatnonzero(keep) + 1,
            "customers": customers,
            "mean_predicted": predicted / customers,
            "observed_rate": observed / customers,
            "low": low,
            "high": high,
        }
    )


def expected_calibration_error(y_true: Any, p: Any, bins: int = 10) -> float:
    """Customer-weighted mean of ``|observed_rate - mean_predicted|`` over the bins of
    :func:`calibration_table`."""
    t = calibration_table(y_true, p, bins)
    gap = (t["observed_rate"] - t["mean_predicted"]).abs()
    return float((gap * t["customers"]).sum() / t["customers"].sum())


def regression_metrics(y: Any, pred: Any) -> dict[str, float]:
    """Errors and ranking quality of a value forecast (orders, revenue).

    ``spearman`` is the rank correlation (NaN when either side is constant);
    ``top_decile_share`` is the share of the actual total held by the customers with the 10%
    highest predictions (NaN when the actual total is 0).
    """
    actual = as_floats("y", y)
    if actual.size == 0:
        raise InputError("cannot evaluate on zero customers")
    if not np.all(np.isfinite(actual)):
        raise InputError(f"y contains {int(np.sum(~np.isfinite(actual)))} NaN or infinite values")
    forecast = check_scores("pred", pred, actual.size)
    err = forecast - actual
    constant = np.ptp(actual) == 0 or np.ptp(forecast) == 0
    rho = float("nan") if constant else float(spearmanr(actual, forecast).statistic)
    total = float(actual.sum())
    top = rank_desc(forecast)[: _top_decile(actual.size)]
    return {
        "n": float(actual.size),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "total_actual": total,
        "total_predicted": float(forecast.sum()),
        "spearman": rho,
        "top_decile_share": float(actual[top].sum() / total) if total != 0 else float("nan"),
    }


def multiclass_metrics(y_true_labels: Any, proba: pd.DataFrame) -> dict[str, float]:
    """Top-1 / top-3 accuracy and log-loss of class probabilities (one column per class).

    Row ``i`` of ``proba`` is the forecast for ``y_true_labels[i]`` (positions, not index
    labels). A true class that has no column counts as a miss with probability 0 (clipped to
    ``CLIP`` in the log-loss). Ties between columns go to the leftmost column.
    """
    if not isinstance(proba, pd.DataFrame):
        raise InputError(f"proba must be a DataFrame with one column per class, got {type(proba)}")
    labels = pd.Series(y_true_labels).reset_index(drop=True)
    if labels.empty or len(labels) != len(proba):
        raise InputError(f"labels and proba differ in length or are empty: {len(labels)}, "
                         f"{len(proba)}")  # fmt: skip
    if labels.isna().any():
        raise InputError(f"y_true_labels has {int(labels.isna().sum())} missing labels")
    try:
        p = proba.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise InputError(f"proba must be numeric ({exc})") from None
    if not np.all(np.isfinite(p)) or p.min(initial=0.0) < 0:
        raise InputError("proba must hold finite, non-negative probabilities")
    column = pd.Index(proba.columns).get_indexer(labels.to_numpy(dtype=object))
    known = column >= 0
    rows = np.arange(len(p))
    p_true = np.where(known, p[rows, np.maximum(column, 0)], 0.0)
    ranked = np.argsort(-p, axis=1, kind="stable")
    hit = (ranked == column[:, None]) & known[:, None]
    return {
        "n": float(len(p)),
        "top1_accuracy": float(hit[:, :1].any(axis=1).mean()),
        "top3_accuracy": float(hit[:, :3].any(axis=1).mean()),
        "log_loss": float(-np.mean(np.log(np.clip(p_true, CLIP, 1 - CLIP)))),
    }
