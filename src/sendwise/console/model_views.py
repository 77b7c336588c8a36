"""The models page: each model's card, its figures against the baselines, the backtest, the
plots and drift the batch plane wrote into the registry, and which version serves.

Everything is read from the registry's files (``models/<name>/vNNNN/``), which training and
scoring write; nothing is recomputed and the warehouse is not opened.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from sendwise.predict.registry import Registry

PLOTS = ("roc.png", "gains.png", "calibration.png", "drift.png")
PLOT_NAME = re.compile(r"^[a-z_]{1,40}\.png$")
SHOWN = ("roc_auc", "pr_auc", "top_decile_lift", "brier", "mae", "rmse", "spearman",
         "auc_buys_again", "auc_p_alive")  # fmt: skip


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def model_cards(settings: Any) -> list[dict[str, Any]]:
    """One dict per model: name, versions, the serving (promoted) version and its figures."""
    registry = Registry(settings.path("models"))
    out = []
    for name in registry.names():
        versions = registry.versions(name)
        serving = registry.promoted(name)
        shown = serving or versions[-1]
        folder = registry.root / name / shown
        meta = _read_json(folder / "metadata.json") or {}
        metrics = meta.get("metrics") or {}
        baselines = meta.get("baselines") or {}
        columns = [m for m in SHOWN if m in metrics]
        rows = [{"name": f"model ({meta.get('learner', '?')})", "values": metrics, "model": True}]
        rows += [{"name": b, "values": v, "model": False} for b, v in baselines.items()
                 if isinstance(v, dict)]  # fmt: skip
        backtest = [
            {"at": str(b.get("at", ""))[:10], **(b.get("metrics") or {})}
            for b in meta.get("backtest") or []
            if isinstance(b, dict)
        ]
        drift = _read_json(folder / "drift.json") or {}
        card = folder / "card.md"
        out.append(
            {
                "name": name,
                "versions": versions,
                "serving": serving,
                "shown": shown,
                "meaning": meta.get("meaning", ""),
                "kind": meta.get("kind", ""),
                "created_at": str(meta.get("created_at", ""))[:19],
                "gate": meta.get("gate") or {},
                "columns": columns,
                "rows": rows,
                "backtest": backtest,
                "plots": [p for p in PLOTS if (folder / p).is_file()],
                "drift": sorted(drift.get("features", []), key=lambda r: -float(r.get("psi") or 0))[
                    :12
                ],
                "drift_threshold": drift.get("threshold"),
                "card": card.read_text(encoding="utf-8")[:20_000] if card.is_file() else "",
            }
        )
    return out


def plot_file(settings: Any, name: str, version: str, plot: str) -> Path | None:
    """The path of a registry plot, only for names the registry lists (never a path a
    request could steer outside the registry)."""
    registry = Registry(settings.path("models"))
    if name not in registry.names() or version not in registry.versions(name):
        return None
    if not PLOT_NAME.fullmatch(plot) or plot not in PLOTS:
        return None
    path = registry.root / name / version / plot
    return path if path.is_file() else None
