"""The evaluation report: the metrics table with its split, as Markdown and JSON files."""

from __future__ import annotations

import json
from pathlib import Path

from sendwise.recommend.evaluate import METRICS, Evaluation

REPORT_NAME = "recommendation_evaluation"


def markdown(ev: Evaluation) -> str:
    k = ev.k
    head = (
        "| algorithm | "
        + " | ".join(f"{m}@{k}" if m not in ("coverage", "novelty") else m for m in METRICS)
        + " |"
    )
    lines = [
        "# Recommendation evaluation",
        "",
        f"- Split: fitted on everything before **{ev.split:%Y-%m-%d %H:%M}**, judged on the"
        f" products bought from then until **{ev.end:%Y-%m-%d %H:%M}**"
        f" ({(ev.end - ev.split).days} days).",
        f"- Customers judged: {ev.customers:,} (bought in the window); {ev.known:,} of them had"
        " a history before the split, the others are served by the fallback chain.",
        f"- Already-bought products {'excluded' if ev.exclude_bought else 'allowed'}"
        f"{' (and left out of the truth)' if ev.exclude_bought else ''}.",
        "- Every algorithm is served through the same business rules and fallback chain.",
        f"- Hybrid weights (chosen on the validation window before the split, MAP@{k}"
        f" {ev.validation_map:.4f}): "
        + ", ".join(f"{n}={w:g}" for n, w in ev.weights.items() if w > 0),
        f"- Served: **{ev.winner}**"
        + (
            " (held-out validation MAP@"
            + f"{k}: "
            + ", ".join(f"{n} {v:.4f}" for n, v in ev.holdout.items())
            + ")"
            if ev.holdout
            else " (the ranker is off or had nothing to learn from)"
        ),
        "",
        head,
        "|" + "---|" * (len(METRICS) + 1),
    ]
    for row in ev.table.itertuples(index=False):
        values = " | ".join(f"{getattr(row, m):.4f}" for m in METRICS)
        lines.append(f"| {row.algorithm} | {values} |")
    return "\n".join(lines) + "\n"


def write_report(ev: Evaluation, folder: Path) -> Path:
    """Write ``recommendation_evaluation.md`` and ``.json`` into ``folder``; return the .md."""
    folder.mkdir(parents=True, exist_ok=True)
    md = folder / f"{REPORT_NAME}.md"
    md.write_text(markdown(ev), encoding="utf-8")
    payload = {
        "split": ev.split.isoformat(),
        "end": ev.end.isoformat(),
        "k": ev.k,
        "customers": ev.customers,
        "known_customers": ev.known,
        "exclude_bought": ev.exclude_bought,
        "weights": ev.weights,
        "validation_map": ev.validation_map,
        "served": ev.winner,
        "holdout_map": ev.holdout,
        "metrics": ev.table.to_dict(orient="records"),
    }
    (folder / f"{REPORT_NAME}.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return md
