"""Evaluation reports and model cards, written as Markdown next to the model files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

METRICS = ("roc_auc", "pr_auc", "brier", "log_loss", "top_decile_lift", "base_rate", "n")


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if v != v else f"{v:.4f}"
    return str(v)


def markdown_table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def metric_rows(meta: dict[str, Any]) -> pd.DataFrame:
    rows = [{"model": f"**{meta['name']} ({meta['learner']}, chosen)**", **meta["metrics"]}]
    rows += [
        {"model": f"{name} (best of its search)", **m}
        for name, m in meta["learners"].items()
        if name != meta["learner"]
    ]
    rows += [{"model": f"baseline: {name}", **m} for name, m in meta["baselines"].items()]
    df = pd.DataFrame(rows)
    return df[["model", *[c for c in METRICS if c in df.columns]]]


def verdict(meta: dict[str, Any]) -> str:
    gate = meta["gate"]
    beaten = [b for b, m in meta["baselines"].items() if meta["metrics"]["roc_auc"] > m["roc_auc"]]
    lost = [b for b in meta["baselines"] if b not in beaten]
    lines = []
    if lost:
        lines.append(f"The model does **not** beat these baselines on ROC-AUC: {', '.join(lost)}.")
    else:
        lines.append("The model beats every baseline on ROC-AUC.")
    if gate["passed"]:
        lines.append("It passed the quality gate and was promoted.")
    else:
        lines.append(
            "It failed the quality gate and was **not promoted**: "
            + "; ".join(gate["reasons"])
            + "."
        )
    return " ".join(lines)


def _dates(values: list[Any]) -> str:
    return ", ".join(str(t)[:10] for t in values) or "-"


def windows_lines(meta: dict[str, Any]) -> list[str]:
    """The windows of the model in use and of the backtest, in words (card, report, CLI)."""
    plan, h = meta["plan"], meta["horizon_days"]
    fit_at = plan.get("fit_at") or plan["train_at"]
    lines = [
        f"In use: fitted on the snapshots {_dates(fit_at)} (each labelled by the {h} days"
        f" after it; the last window ends by {str(plan['as_of'])[:10]}), scoring as of"
        f" {str(plan['as_of'])[:10]}."
    ]
    runs = meta.get("backtest")
    if not runs:
        return lines
    m = meta["metrics"]
    spread = (
        f"ROC-AUC {m['roc_auc']:.3f} on average, standard deviation {m['roc_auc_std']:.3f},"
        f" from {m['roc_auc_min']:.3f} to {m['roc_auc_max']:.3f}"
    )
    if meta.get("out_of_time", True):
        lines.append(f"Backtest: {len(runs)} rolling origin(s), {spread}.")
    else:
        lines.append(
            "Backtest: the history is too short for an out-of-time origin (two horizons plus"
            " the minimum history); judged on the customers the search's grouped folds held"
            f" out of the freshest snapshot, {spread}. These figures are in-time."
        )
    for r in runs:
        rm = r["metrics"]
        lines.append(
            f"- origin {str(r['at'])[:10]}: trained on {_dates(r['train_at'])}, judged on the"
            f" {h} days after; ROC-AUC {rm['roc_auc']:.3f} (best baseline"
            f" {max(r['baselines'].values()):.3f}); mean predicted {rm['mean_predicted']:.3f}"
            f" vs observed {rm['base_rate']:.3f}"
        )
    return lines


def origin_rows(meta: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for r in meta.get("backtest", []):
        rm = r["metrics"]
        rows.append({
            "origin": str(r["at"])[:10], "customers": int(rm["n"]), "roc_auc": rm["roc_auc"],
            **{f"baseline: {b}": v for b, v in r["baselines"].items()},
            "mean_predicted": rm["mean_predicted"], "observed": rm["base_rate"],
            "calibration_error": rm["calibration_error"],
        })  # fmt: skip
    return pd.DataFrame(rows)


def write_classifier_report(folder: Path, meta: dict[str, Any], tables: dict[str, pd.DataFrame]):
    plan = meta["plan"]
    importance = pd.DataFrame(meta["importance"]).head(10)
    text = f"""# {meta["name"]} {meta["version"]}: evaluation

Target: {meta["meaning"]} (`{meta["target"]}`).

{chr(10).join(windows_lines(meta))}

The model in use ({meta["training_rows"]:,} rows) is the backtest's chosen configuration
refitted on the freshest snapshots; the gate decides on the backtest. Baselines are scored on the
same customers and windows.

## Metrics on the backtest (mean over the origins)

{markdown_table(metric_rows(meta))}

{verdict(meta)}

## Per origin (calibration-in-the-large: mean predicted vs observed)

{markdown_table(origin_rows(meta))}

## Cumulative gains at the freshest origin, {str(plan["evaluate_at"])[:10]} (deciles)

{markdown_table(tables["gains"])}

## Calibration at the freshest origin (predicted vs observed)

{markdown_table(tables["calibration"])}

## What drives the score (mean absolute contribution, log-odds)

{markdown_table(importance)}

Plots: [roc.png](roc.png), [gains.png](gains.png), [calibration.png](calibration.png).
"""
    (folder / "report.md").write_text(text)
    (folder / "card.md").write_text(model_card(meta))


def model_card(meta: dict[str, Any]) -> str:
    m = meta["metrics"]
    gate = meta["gate"]
    gate_text = "passed" if gate["passed"] else "failed: " + "; ".join(gate["reasons"])
    libs = ", ".join(f"{k} {v}" for k, v in meta["library_versions"].items())
    windows = "\n  ".join(windows_lines(meta))
    return f"""# Model card: {meta["name"]} {meta["version"]}

- **Predicts**: {meta.get("meaning", meta.get("target"))}.
- **Learner**: {meta.get("learner")} with {meta.get("params")}.
- **Windows**: {windows}
- **Backtest (mean over the origins)**: ROC-AUC {m["roc_auc"]:.3f}, PR-AUC {m["pr_auc"]:.3f},
  Brier {m["brier"]:.4f}, top-decile lift {m["top_decile_lift"]:.2f} (base rate
  {m["base_rate"]:.3f}).
- **Quality gate**: {gate_text}.
- **Inputs**: {len(meta["features"])} point-in-time customer features (see docs/features.md).
- **Data fingerprint**: {meta["data_fingerprint"]} over {meta["training_rows"]:,} training rows.
- **Libraries**: {libs}.
- **Intended use**: ranking and targeting customers of this shop in email campaigns. Not for
  decisions about individuals beyond marketing; retrain when drift is flagged.
- **Caveats**: probabilities are calibrated on the training window; a shop whose behaviour
  changes (season, prices, catalogue) drifts away from them, which `sendwise models show` flags.
"""
