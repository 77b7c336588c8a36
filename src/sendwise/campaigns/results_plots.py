"""Result plots as PNG files: rates per arm with 95% intervals, lifts over the holdout.

Figure objects on the Agg canvas only (no pyplot global state), like sendwise.predict.plots.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sendwise.campaigns.results import Results

RATES = ("open", "click", "conversion")


def _figure(width: float = 7.0) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def rates_plot(res: Results, path: Path) -> Path:
    fig, ax = _figure()
    metrics = [m for m in RATES if f"{m}_rate" in res.arms]
    arms = list(res.arms.index)
    width = 0.8 / max(1, len(arms))
    x = np.arange(len(metrics))
    for i, arm in enumerate(arms):
        row = res.arms.loc[arm]
        rate = np.array([row[f"{m}_rate"] for m in metrics], float) * 100
        low = np.array([row[f"{m}_low"] for m in metrics], float) * 100
        high = np.array([row[f"{m}_high"] for m in metrics], float) * 100
        err = np.nan_to_num(np.vstack([rate - low, high - rate]))
        ax.bar(x + i * width, np.nan_to_num(rate), width, yerr=err, capsize=3, label=str(arm))
    ax.set_xticks(x + width * (len(arms) - 1) / 2, metrics)
    ax.set(ylabel="% (95% interval)", title=f"{res.name or 'results'}: rates by arm")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def lift_plot(res: Results, path: Path, baseline: str = "holdout") -> Path | None:
    c = res.comparisons
    if c.empty:
        return None
    rows = c[(c["baseline"] == baseline) & (c["test"] != "welch")]
    if rows.empty:
        return None
    fig, ax = _figure()
    labels = [f"{a} {m}" for a, m in zip(rows["arm"], rows["metric"], strict=True)]
    y = np.arange(len(rows))
    est = rows["estimate"].to_numpy(float) * 100
    err = np.vstack(
        [est - rows["low"].to_numpy(float) * 100, rows["high"].to_numpy(float) * 100 - est]
    )
    ax.errorbar(est, y, xerr=err, fmt="o", capsize=4)
    ax.axvline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y, labels)
    ax.set(xlabel=f"difference vs {baseline}, points (95% interval)", title="lift")
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def save_plots(res: Results, folder: str | Path) -> list[Path]:
    """Write rates.png and lift.png (when there is a holdout) into ``folder``."""
    folder = Path(folder)
    saved = [rates_plot(res, folder / "rates.png")]
    lift = lift_plot(res, folder / "lift.png")
    return saved + ([lift] if lift else [])
