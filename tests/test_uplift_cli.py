"""``sendwise uplift train | report | score`` as a user meets them (real processes)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from test_cli import run

HILLSTROM = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "hillstrom" / "hillstrom_dev.csv"
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    if not HILLSTROM.exists():
        pytest.skip(f"Hillstrom data not found at {HILLSTROM}")
    folder = tmp_path_factory.mktemp("uplift-cli")
    assert run("init", str(folder / "p")).returncode == 0
    sample = pd.read_csv(HILLSTROM, dtype=str, keep_default_na=False).head(12_000)
    sample.to_csv(folder / "train.csv", index=False)
    r = run("uplift", "train", str(folder / "train.csv"), "--folds", "2", "-q", "-p",
            str(folder / "p"))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "uplift_womens_visit v0001" in r.stdout
    return folder, folder / "p"


def test_score_writes_every_row_with_its_uplift(trained) -> None:
    folder, project = trained
    rows = pd.read_csv(HILLSTROM, dtype=str, keep_default_na=False).tail(500)
    rows.drop(columns=["segment", "visit", "conversion", "spend"]).to_csv(
        folder / "unseen.csv", index=False
    )
    out = folder / "scored.csv"
    r = run("uplift", "score", "uplift_womens_visit", str(folder / "unseen.csv"), "-o", str(out),
            "-q", "-p", str(project))  # fmt: skip
    assert r.returncode == 0, r.stderr
    scored = pd.read_csv(out)
    assert len(scored) == 500 and scored["uplift"].notna().all()
    assert list(scored.columns)[-1] == "uplift"


def test_report_shows_the_cross_validated_figures(trained) -> None:
    _, project = trained
    r = run("uplift", "report", "uplift_womens_visit", "-p", str(project))
    assert r.returncode == 0, r.stderr
    assert "uplift at 30%" in r.stdout and "Qini coefficient" in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["uplift", "train", "nope.csv"], "no file at"),
        (["uplift", "train", "{csv}", "--preset", "criteo"], "unknown preset 'criteo'"),
        (["uplift", "train", "{csv}", "--arm", "Kids"], "arm is one of Mens, Womens"),
        (["uplift", "score", "nobody", "{csv}", "-o", "x.csv"], "nobody"),
    ],
)
def test_user_errors_are_one_line(trained, args, message) -> None:
    folder, project = trained
    args = [a.replace("{csv}", str(folder / "train.csv")) for a in args]
    r = run(*args, "-q", "-p", str(project), cwd=folder)
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_the_model_registry_lists_and_shows_uplift_models(trained) -> None:
    _, project = trained
    listed = run("models", "list", "-p", str(project))
    assert listed.returncode == 0, listed.stderr
    assert "uplift_womens_visit" in listed.stdout
    shown = run("models", "show", "uplift_womens_visit", "-p", str(project))
    assert shown.returncode == 0, shown.stderr
    assert "Qini coefficient" in shown.stdout
