"""CLI for uplift models: ``sendwise uplift train | report | score`` (thin over sendwise.uplift)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sendwise.cli.output import OUT, line
from sendwise.cli.registry import Project, command, group, open_warehouse

uplift_app = group("uplift", "Uplift models: who an email persuades, learned from experiments.")

Name = Annotated[str | None, typer.Option(help="Model name; default uplift_<arm>_<outcome>.")]


def _registry(project: Path | None):
    from sendwise.config import load_settings
    from sendwise.predict.service import registry_of

    return registry_of(load_settings(project))


def _open(project: Path | None):
    from sendwise.store import open_store

    settings, wh = open_warehouse(project)
    return settings, open_store(settings), wh


def _name(name: str | None, arm: str, outcome: str) -> str:
    return name or f"uplift_{arm}_{outcome}".lower()


@command(uplift_app, "train")
def train(
    data: Annotated[Path, typer.Argument(help="The experiment file (CSV).")],
    preset: Annotated[str, typer.Option(help="The file's layout: hillstrom.")] = "hillstrom",
    arm: Annotated[str, typer.Option(help="The arm compared with the holdout.")] = "Womens",
    outcome: Annotated[str, typer.Option(help="visit or conversion (0/1 outcomes).")] = "visit",
    folds: Annotated[int, typer.Option(min=2, max=10, help="Cross-validation folds.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    name: Name = None,
    project: Project = None,
) -> None:
    """Cross-validate every learner, keep the best by Qini, refit it and register it."""
    from sendwise.errors import UnknownPresetError
    from sendwise.uplift.artifact import save_uplift
    from sendwise.uplift.data import read_hillstrom
    from sendwise.uplift.train import fit_uplift

    if preset != "hillstrom":
        raise UnknownPresetError(preset, ["hillstrom"])
    registry = _registry(project)
    exp = read_hillstrom(data, arm=arm, outcome=outcome)
    with OUT.steps("uplift") as say:
        fitted = fit_uplift(exp, folds=folds, seed=seed, progress=say)
    mv = save_uplift(registry, _name(name, arm, outcome), fitted, exp, layout=preset,
                     source=data.name)  # fmt: skip
    _trained(mv)


def _trained(mv) -> None:
    m = mv.metadata["metrics"]
    gate = "promoted" if mv.metadata["gate"]["passed"] else "not promoted: no better than random"
    OUT.print(
        line(
            (f"{mv.name} {mv.version}", "bold"),
            f": {mv.metadata['learner']}, cv Qini "
            f"{m['qini_coefficient']:.5f}, uplift at 30% {m['uplift_at_30']:.4f} ({gate})",
        )
    )


@command(uplift_app, "report")
def report(
    name: Annotated[str, typer.Argument(help="Model name, e.g. uplift_womens_visit.")],
    version: Annotated[str | None, typer.Option(help="Version (default: promoted).")] = None,
    project: Project = None,
) -> None:
    """The cross-validated report: Qini, AUUC, uplift at k, uplift by decile, candidates."""
    from sendwise.uplift.artifact import load_uplift

    _, mv = load_uplift(_registry(project), name, version)
    OUT.print((mv.folder / "report.md").read_text())
    OUT.print(line("Qini curve: ", (mv.folder / "qini.png", "bold")))


@command(uplift_app, "score")
def score(
    name: Annotated[str, typer.Argument(help="Model name.")],
    source: Annotated[Path, typer.Argument(help="CSV in the model's layout.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV to write (rows + uplift).")],
    version: Annotated[str | None, typer.Option(help="Version (default: promoted).")] = None,
    project: Project = None,
) -> None:
    """Write every row of SOURCE with an uplift column (arm and outcome columns never read)."""
    from sendwise.uplift.artifact import load_uplift
    from sendwise.uplift.score import score_file

    model, mv = load_uplift(_registry(project), name, version)
    n = score_file(model, mv, source, out)
    OUT.print(line(f"scored {n:,} rows with {mv.name} {mv.version} into ", (out, "bold")))


@command(uplift_app, "train-campaign")
def train_campaign(
    campaign: Annotated[str, typer.Argument(help="A sent campaign with a holdout (name or id).")],
    arm: Annotated[str, typer.Option(help="The variant compared with the holdout.")] = "A",
    outcome: Annotated[str, typer.Option(help="conversion or click.")] = "conversion",
    folds: Annotated[int, typer.Option(min=2, max=10, help="Cross-validation folds.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    name: Name = None,
    project: Project = None,
) -> None:
    """Learn who the campaign's email persuaded (features as of its first send) and register
    the model for `audience.uplift` of later campaigns."""
    from sendwise.campaigns.targeting import FEATURES_LAYOUT, campaign_experiment
    from sendwise.uplift.artifact import save_uplift
    from sendwise.uplift.train import fit_uplift

    settings, store, wh = _open(project)
    with store, wh:
        exp = campaign_experiment(store, wh, settings, campaign, arm=arm, outcome=outcome)
    with OUT.steps("uplift") as say:
        fitted = fit_uplift(exp, folds=folds, seed=seed, progress=say)
    mv = save_uplift(
        _registry(project),
        _name(name, arm, outcome),
        fitted,
        exp,
        layout=FEATURES_LAYOUT,
        source=f"campaign {campaign}",
    )
    _trained(mv)


@command(uplift_app, "targeting")
def targeting(
    campaign: Annotated[str, typer.Argument(help="A campaign whose audience used uplift.")],
    outcome: Annotated[str, typer.Option(help="conversion or click.")] = "conversion",
    project: Project = None,
) -> None:
    """The targeted group against the random group of the same size: each one's lift over its
    own holdout, with 95% intervals."""
    from rich.table import Table

    from sendwise.campaigns.targeting import campaign_targeting_results

    settings, store, wh = _open(project)
    with store, wh:
        res = campaign_targeting_results(store, wh, settings, campaign, outcome)
    t = Table(title=f"{outcome}: targeted by uplift vs random")
    for col in (
        "group",
        "sent",
        "held out",
        "rate sent",
        "rate held out",
        "lift",
        "95% interval",
        "per 1,000",
    ):
        t.add_column(col)
    for name, r in res.iterrows():
        t.add_row(
            str(name),
            f"{r['sent']:,}",
            f"{r['held_out']:,}",
            f"{r['rate_sent']:.4f}",
            f"{r['rate_held_out']:.4f}",
            f"{r['lift']:+.4f}",
            f"[{r['low']:+.4f}, {r['high']:+.4f}]",
            f"{r['incremental_per_1000']:+.1f}",
        )
    OUT.print(t)
