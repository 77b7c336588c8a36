"""Evaluation plots saved as PNG files: ROC curves, cumulative gains, reliability diagram.

Each plot is drawn on its own :class:`matplotlib.figure.Figure` with the Agg canvas, never
through ``pyplot``: no global figure state, no GUI backend, safe in threads and servers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from sendwise.errors import InputError
from sendwise.predict.evaluation import calibration_table, check_labels, check_scores, rank_desc

Curves = Mapping[str, tuple[Any, Any]]
"""Curve name (model or baseline) -> (0/1 outcomes, scores)."""

_MAX_POINTS = 1000  # a gains curve is drawn through at most this many points


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=(5.5, 5.0), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.02))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="random")
    ax.grid(alpha=0.3)
    return fig, ax


def _save(fig: Figure, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, format="png")
    return target


def _checked(curves: Curves) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if not curves:
        raise InputError("no curves to plot")
    out = []
    for name, (y_true, score) in curves.items():
        y = check_labels(y_true)
        out.append((str(name), y, check_scores(f"score of {name!r}", score, y.size)))
    return out


def save_roc(path: str | Path, curves: Curves) -> Path:
    """ROC curve of each named score (AUC in the legend), with the random diagonal."""
    fig, ax = _figure("ROC", "false positive rate", "true positive rate")
    for name, y, s in _checked(curves):
        if y.min() == y.max():
            raise InputError(f"outcomes of {name!r} have one class only")
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, s):.3f})")
    ax.legend(loc="lower right")
    return _save(fig, path)


def gains_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(share of customers contacted, share of positives found), highest scores first."""
    found = np.concatenate([[0.0], np.cumsum(y[rank_desc(score)])])
    contacted = np.arange(found.size) / y.size
    step = max(1, y.size // _MAX_POINTS)
    keep = np.unique(np.concatenate([np.arange(0, found.size, step), [found.size - 1]]))
    return contacted[keep], found[keep] / max(found[-1], 1.0)


def save_gains(path: str | Path, curves: Curves) -> Path:
    """Cumulative gains of each named score, with the random diagonal."""
    fig, ax = _figure("Cumulative gains", "share of customers contacted", "share of positives")
    for name, y, s in _checked(curves):
        if y.sum() == 0:
            raise InputError(f"outcomes of {name!r} have no positives")
        ax.plot(*gains_curve(y, s), label=name)
    ax.legend(loc="lower right")
    return _save(fig, path)


def save_calibration(path: str | Path, y: Any, p: Any, bins: int = 10) -> Path:
    """Reliability diagram: observed rate (95% Wilson interval) vs mean predicted probability
    per quantile bin, with the diagonal of perfect calibration."""
    table = calibration_table(y, p, bins)
    fig, ax = _figure("Calibration", "mean predicted probability", "observed rate")
    err = np.vstack([table["observed_rate"] - table["low"], table["high"] - table["observed_rate"]])
    ax.errorbar(table["mean_predicted"], table["observed_rate"], yerr=np.clip(err, 0, None),
                marker="o", capsize=3, label="model")  # fmt: skip
    ax.legend(loc="upper left")
    return _save(fig, path)
