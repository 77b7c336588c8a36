"""``sendwise train``, ``score``, ``build`` and ``models list|show``: thin shells over predict/."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from sendwise.cli.output import OUT, line, styled
from sendwise.cli.registry import Project, command, group, open_warehouse

AsOfOpt = Annotated[
    datetime | None,
    typer.Option(
        "--as-of",
        help="Build as of this date (default: the end of the data).",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
    ),
]
HorizonOpt = Annotated[
    int | None,
    typer.Option(
        "--horizon", min=1, help="Days ahead for propensity and spend (default: settings)."
    ),
]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def print_trained(console: Console, results: list[Any]) -> None:
    t = Table(title="trained models", show_lines=False)
    for col in ("model", "version", "learner", "headline", "best baseline", "promoted"):
        t.add_column(col)
    for r in results:
        m = r.metrics
        if "roc_auc" in m:
            headline = (
                f"ROC-AUC {m['roc_auc']:.3f}, PR-AUC {m['pr_auc']:.3f}, Brier {m['brier']:.3f}"
            )
            best = max(r.baselines.items(), key=lambda kv: kv[1]["roc_auc"])
            base = f"{best[0]} {best[1]['roc_auc']:.3f}"
        elif "hit_rate" in m:
            headline = f"hit rate {m['hit_rate']:.3f}"
            fav = r.baselines.get("favourite category", {}).get("hit_rate_with_history")
            base = f"favourite category {fav:.3f} (vs {m['hit_rate_with_history']:.3f})"
        else:
            headline = f"MAE {m['mae']:.3f}, Spearman {m['spearman']:.3f}"
            base = ", ".join(f"{b} MAE {v['mae']:.3f}" for b, v in r.baselines.items()) or "-"
        promoted = (
            styled("yes", "green") if r.promoted else line(("no", "red"), ": " + "; ".join(r.gate))
        )
        t.add_row(r.name, r.version, r.learner, headline, base, promoted)
    console.print(t)


def print_scored(console: Console, scored: Any) -> None:
    used = ", ".join(f"{k} {v}" for k, v in scored.versions.items()) or "none"
    console.print(
        f"scored {scored.customers:,} customers as of {scored.as_of:%Y-%m-%d} with {used}"
        f" in {scored.seconds:.1f} s"
    )
    if scored.missing:
        console.print(
            line(
                (f"no promoted model for: {', '.join(scored.missing)}", "yellow"),
                " (their columns are empty)",
            )
        )
    for name, features in scored.drifted.items():
        if features:
            console.print(
                line(
                    ("drift", "yellow"),
                    f" {name}: {', '.join(features[:8])}" + (" ..." if len(features) > 8 else ""),
                )
            )


@command()
def train(
    as_of: AsOfOpt = None,
    horizon: HorizonOpt = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Only this model (repeatable): btyd, propensity, churn, spend, next_category.",
        ),
    ] = None,
    project: Project = None,
) -> None:
    """Train and evaluate the models; promote the versions that pass the quality gate."""
    from sendwise.predict.service import train_models

    settings, wh = open_warehouse(project)
    with wh, OUT.steps("training") as say:
        results = train_models(
            wh, settings, as_of=as_of, horizon_days=horizon, models=model, progress=say
        )
    print_trained(OUT.console, results)
    OUT.print(f"reports: {settings.path('models')}/<model>/<version>/report.md")


@command()
def score(horizon: HorizonOpt = None, project: Project = None) -> None:
    """Score every customer with the promoted models and add the scores to the profiles."""
    from sendwise.predict.score import score_customers
    from sendwise.profiles.build import attach_predictions

    settings, wh = open_warehouse(project)
    with wh, OUT.steps("scoring") as say:
        scored = score_customers(wh, settings, horizon_days=horizon, progress=say)
        attach_predictions(wh)
    print_scored(OUT.console, scored)


@command()
def build(
    as_of: AsOfOpt = None,
    horizon: HorizonOpt = None,
    retrain: Annotated[bool, typer.Option(help="Retrain every model, due or not.")] = False,
    project: Project = None,
) -> None:
    """Features, segments, training when due, scoring and profiles, in one go."""
    from sendwise.build import run_build
    from sendwise.cli import render

    settings, wh = open_warehouse(project)
    with wh, OUT.steps("build") as say:
        result = run_build(
            wh, settings, as_of=as_of, horizon_days=horizon, retrain=retrain, progress=say
        )
    synced = result.extra.get("synced")
    if synced is not None:
        OUT.print(
            f"synced {synced.read:,} tracked events into the warehouse"
            f" ({synced.inserted:,} new, {synced.rejected:,} rejected)"
        )
    render.profile_build(OUT.console, result.profiles)
    if result.trained:
        print_trained(OUT.console, result.trained)
    else:
        OUT.print("no model was due for training")
    print_scored(OUT.console, result.scored)
    from sendwise.cli.recommend import show_build

    show_build(OUT.console, result.extra["recommendations"])
    if result.extra.get("published") is not None:
        from sendwise.cli.serving import show_published

        show_published(result.extra["published"])
    OUT.print(f"build done in {result.seconds:.1f} s")


models_app = group("models", "The model registry.")


@command(models_app, "list")
def models_list(project: Project = None) -> None:
    """Every model with its versions, the promoted one and its headline metric."""
    from sendwise.config import load_settings
    from sendwise.predict.service import registry_of

    registry = registry_of(load_settings(project))
    t = Table(title=f"models in {registry.root}")
    for col in ("model", "versions", "promoted", "latest", "latest passed gate", "headline"):
        t.add_column(col)
    for name in registry.names():
        latest = registry.latest(name)
        t.add_row(
            name,
            str(len(registry.versions(name))),
            registry.promoted(name) or "-",
            latest.version,
            "yes" if latest.metadata["gate"]["passed"] else "no",
            _headline(latest.metadata),
        )
    OUT.print(t)


@command(models_app, "show")
def models_show(
    name: Annotated[str, typer.Argument(help="Model name, e.g. propensity.")],
    version: Annotated[
        str | None, typer.Option(help="Version (default: promoted, else latest).")
    ] = None,
    project: Project = None,
) -> None:
    """Metadata, metrics against baselines, gate, importance and drift of one model."""
    from sendwise.config import load_settings
    from sendwise.predict.service import registry_of

    registry = registry_of(load_settings(project))
    if version is None and registry.promoted(name) is None:
        mv = registry.latest(name)
    else:
        mv = registry.get(name, version, verify=False)
    show_model(OUT.console, mv)


def _headline(meta: dict[str, Any]) -> str:
    m = meta["metrics"]
    for key in ("roc_auc", "hit_rate", "mae", "qini_coefficient"):
        if key in m:
            return f"{key} {m[key]:.3f}"
    return "-"


def show_model(console: Console, mv: Any) -> None:
    meta = mv.metadata
    promoted = "promoted" if meta["gate"]["passed"] else "not promoted"
    console.rule(line((f"{mv.name} {mv.version}", "bold"), f" ({promoted})"))
    if meta.get("kind") == "uplift":  # its own report (sendwise uplift report)
        console.print((mv.folder / "report.md").read_text())
        return
    console.print(f"predicts:  {meta.get('meaning')}")
    console.print(
        f"learner:   {meta.get('learner')} {json.dumps(meta.get('params'), default=str)[:200]}"
    )
    plan = meta["plan"]
    console.print(
        f"trained:   {meta['created_at'][:19]} on snapshots "
        f"{', '.join(str(t)[:10] for t in plan.get('fit_at') or plan['train_at']) or '-'};"
        f" judged at {str(plan['evaluate_at'])[:10]}; as of {str(plan['as_of'])[:10]}"
    )
    if meta.get("backtest"):
        from sendwise.predict.report import windows_lines

        for text in windows_lines(meta):
            console.print(text, markup=False, highlight=False)
    t = Table(title="backtest")
    rows = [("model", meta["metrics"])] + [
        (f"baseline: {b}", m) for b, m in meta.get("baselines", {}).items()
    ]
    keys = [
        k
        for k in (
            "roc_auc",
            "pr_auc",
            "brier",
            "log_loss",
            "top_decile_lift",
            "mae",
            "rmse",
            "spearman",
            "hit_rate",
            "hit_rate_with_history",
        )
        if any(k in m for _, m in rows)
    ]
    t.add_column("")
    for k in keys:
        t.add_column(k)
    for label, m in rows:
        t.add_row(label, *[_fmt(m.get(k, "")) for k in keys])
    console.print(t)
    if not meta["gate"]["passed"]:
        console.print(line(("gate failed:", "red"), " " + "; ".join(meta["gate"]["reasons"])))
    if meta.get("importance"):
        top = ", ".join(f"{r['feature']} {r['share']:.0%}" for r in meta["importance"][:8])
        console.print(f"importance: {top}")
    drift_file = Path(mv.folder) / "drift.json"
    if drift_file.exists():
        drift = json.loads(drift_file.read_text())
        flagged = [r for r in drift["features"] if r["flagged"]]
        worst = ", ".join(f"{r['feature']} {r['psi']:.2f}" for r in drift["features"][:6])
        console.print(
            f"drift (PSI, threshold {drift['threshold']}): {len(flagged)} flagged; highest: {worst}"
        )
    else:
        console.print("drift: not scored yet")
    console.print(f"files:     {mv.folder} (report.md, card.md)")
