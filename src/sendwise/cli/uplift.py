"""CLI for uplift models: ``sendwise uplift train | report | score`` (thin over sendwise.uplift)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sendwise.cli.output import OUT, line
from sendwise.cli.registry import Project, command, group

uplift_app = group("uplift", "Uplift models: who an email persuades, learned from experiments.")

Name = Annotated[str | None, typer.Option(help="Model name; default uplift_<arm>_<outcome>.")]


def _registry(project: Path | None):
    from sendwise.config import load_settings
    from sendwise.predict.service import registry_of

    return registry_of(load_settings(project))


def _name(name: str | None, arm: str, outcome: str) -> str:
    return name or f"uplift_{arm}_{outcome}".lower()


@command(uplift_app, "train")
def train(
    data: Annotated[Path, typer.Argument(help="The experiment file (CSV).")],
    preset: Annotated[str, typer.Option(help="The file's layout: hillstrom.")] = "hillstrom",
    arm: Annotated[str, typer.Option(help="The arm compared with the holdout.")] = "Womens",
    outcome: Annotated[str, typer.Option(help="visit, conversion or spend.")] = "visit",
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
    m = mv.metadata["metrics"]
    OUT.print(
        line(
            (f"{mv.name} {mv.version}", "bold"),
            f": {mv.metadata['learner']}, "
            f"cv Qini {m['qini_coefficient']:.5f}, uplift at 30% {m['uplift_at_30']:.4f}"
            f" ({'promoted' if mv.metadata['gate']['passed'] else 'not promoted'})",
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
