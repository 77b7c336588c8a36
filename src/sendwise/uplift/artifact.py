"""An uplift model in the registry: ``model.json`` (LightGBM text inside JSON, no pickle),
``report.json`` / ``report.md`` (cross-validated figures on unseen rows), ``qini.png`` and a
model card, sealed by ``metadata.json`` with every file's SHA-256 (``predict.registry``).

The metadata states the data contract: ``layout`` (``hillstrom``: the features are read by name
from a file in Hillstrom's layout; ``columns``: the numeric columns listed in ``features``), the
arm and outcome it was trained on, and the gate: a model is promoted only when its
cross-validated Qini coefficient is above zero (better than sending at random).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sendwise.predict.registry import ModelError, ModelVersion, Registry
from sendwise.uplift.data import Experiment
from sendwise.uplift.models import model_from_dict
from sendwise.uplift.train import FittedUplift

KIND = "uplift"


def save_qini_plot(path: Path, report: dict[str, Any], title: str) -> Path:
    fig = Figure(figsize=(5.5, 5.0), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    share = np.asarray(report["qini_curve"]["share"])
    qini = np.asarray(report["qini_curve"]["qini"])
    ax.plot(share, qini, label="model")
    ax.plot([0, 1], [0, qini[-1]], linestyle="--", color="grey", label="random")
    ax.set(title=title, xlabel="share of customers targeted", ylabel="incremental outcomes (Qini)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, format="png")
    return path


def report_markdown(name: str, meta: dict[str, Any], report: dict[str, Any]) -> str:
    lines = [
        f"# Uplift model {name}: {meta['arm']} vs holdout on {meta['outcome']}",
        "",
        f"Learner: {meta['learner']} {meta['params']}. Figures are out-of-fold (rows the "
        f"model did not see), {report['rows']:,} rows.",
        "",
        f"- average effect: {report['average_effect']:.4f}",
        f"- Qini coefficient: {report['qini_coefficient']:.5f}",
        f"- AUUC: {report['auuc']:.5f}",
    ]
    for k, v in report["uplift_at_k"].items():
        lines.append(
            f"- uplift at {float(k):.0%}: {v:.4f} (by group "
            f"{report['uplift_at_k_by_group'][k]:.4f})"
        )
    lines += [
        "",
        "| decile | treated | control | rate treated | rate control | uplift | predicted |",
        "|---|---|---|---|---|---|---|",
    ]
    for d in report["deciles"]:
        lines.append(
            f"| {d['decile']} | {d['n_treated']} | {d['n_control']} | "
            f"{d['rate_treated']:.4f} | {d['rate_control']:.4f} | {d['uplift']:.4f} | "
            f"{d['predicted']:.4f} |"
        )
    if "candidates" in report:
        lines += [
            "",
            "| learner | params | cv Qini | AUUC | uplift at 30% |",
            "|---|---|---|---|---|",
        ]
        for c in report["candidates"]:
            lines.append(
                f"| {c['learner']} | {c['params']} | {c['qini']:.5f} | {c['auuc']:.5f}"
                f" | {c['uplift_at_30']:.4f} |"
            )
    return "\n".join(lines) + "\n"


def save_uplift(
    registry: Registry,
    name: str,
    fitted: FittedUplift,
    exp: Experiment,
    *,
    layout: str,
    source: str,
) -> ModelVersion:
    version, folder = registry.new_folder(name)
    (folder / "model.json").write_text(json.dumps(fitted.model.to_dict()))
    (folder / "report.json").write_text(json.dumps(fitted.report, indent=1, default=float))
    passed = fitted.report["qini_coefficient"] > 0
    meta = {
        "kind": KIND,
        "name": name,
        "version": version,
        "layout": layout,
        "source": source,
        "trained_at": datetime.now(UTC).isoformat(),
        "arm": exp.arm,
        "outcome": exp.outcome,
        "features": fitted.features,
        "learner": fitted.chosen.learner,
        "params": fitted.chosen.params,
        "rows": len(exp),
        "metrics": {
            "qini_coefficient": fitted.report["qini_coefficient"],
            "auuc": fitted.report["auuc"],
            "uplift_at_30": fitted.report["uplift_at_k"]["0.3"],
        },
        "gate": {"passed": passed, "rule": "cross-validated Qini coefficient > 0"},
    }
    (folder / "report.md").write_text(report_markdown(name, meta, fitted.report))
    (folder / "card.md").write_text(
        f"# {name} {version}\n\nUplift of {exp.arm} over the holdout on {exp.outcome}, learned "
        f"from {source} ({len(exp):,} rows). Reads {', '.join(fitted.features)} "
        f"({layout} layout); never the arm or the outcome. Intended use: rank customers by "
        f"the effect of this email; not a probability of buying.\n"
    )
    save_qini_plot(folder / "qini.png", fitted.report, f"{name}: Qini curve (out-of-fold)")
    registry.seal(folder, meta)
    if passed:
        registry.promote(name, version)
    return registry.get(name, version)


def load_uplift(
    registry: Registry, name: str, version: str | None = None
) -> tuple[Any, ModelVersion]:
    """The model and its verified version (the promoted one by default)."""
    mv = registry.get(name, version)
    if mv.metadata.get("kind") != KIND:
        raise ModelError(f"model {name} {mv.version} is not an uplift model")
    model = model_from_dict(json.loads((mv.folder / "model.json").read_text()))
    if model.n_features_in_ != len(mv.metadata["features"]):
        raise ModelError(f"model {name} {mv.version}: model.json and metadata disagree")
    return model, mv
