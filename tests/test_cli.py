"""The command line as a user meets it: real processes, exit codes, messages, no tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SENDWISE = [sys.executable, "-m", "sendwise.cli"]


def run(*args: str, cwd: Path | None = None, env: dict | None = None):
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [*SENDWISE, *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=300
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "shop"
    assert run("init", str(folder)).returncode == 0
    return folder


def test_init_writes_config(tmp_path: Path) -> None:
    r = run("init", str(tmp_path / "new"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "new" / "sendwise.toml").read_text().startswith("# sendwise project")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest", "nope.csv", "--table", "customer"], "no such file or folder"),
        (["ingest", "{csv}", "--preset", "shopify"], "unknown preset 'shopify'"),
        (["ingest", "{csv}", "--table", "customers"], "unknown table 'customers'"),
        (["ingest", "{csv}"], "exactly one of --table, --preset or --mapping"),
        (["ingest", "{csv}", "--table", "order"], "no column for required order_id"),
        (["ingest", "{csv}", "--mapping", "crm"], "unknown mapping 'crm'"),
    ],
)
def test_user_errors_are_one_message(project: Path, args: list[str], message: str) -> None:
    csv = project / "c.csv"
    csv.write_text("customer_id,email\n1,a@b.com\n")
    args = [a.replace("{csv}", str(csv)) for a in args]
    r = run(*args, "--project", str(project))
    assert r.returncode == 1
    assert message in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_bad_config_is_reported(project: Path) -> None:
    (project / "sendwise.toml").write_text("[warehouse\nurl = 3\n")
    r = run("status", "--project", str(project))
    assert r.returncode == 1
    assert "not valid TOML" in r.stderr
    (project / "sendwise.toml").write_text("[warehouse]\nurll = 'x'\n")
    r = run("status", "--project", str(project))
    assert r.returncode == 1
    assert "warehouse.urll" in r.stderr


def test_missing_project_folder(tmp_path: Path) -> None:
    r = run("status", "--project", str(tmp_path / "absent"))
    assert r.returncode == 1
    assert "does not exist" in r.stderr


def test_ingest_then_status_shows_rejects(project: Path) -> None:
    csv = project / "customers.csv"
    csv.write_text("customer_id,email\n1,a@b.com\n2,not-an-email\n3,c@d.org\n")
    r = run("ingest", str(csv), "--table", "customer", "--project", str(project))
    assert r.returncode == 0, r.stderr
    assert "read 3, loaded 2, rejected 1" in r.stdout
    again = run("ingest", str(csv), "--table", "customer", "--project", str(project))
    assert "already loaded" in again.stdout
    status = run("status", "--project", str(project))
    assert status.returncode == 0, status.stderr
    # rich may fold the long example cell; its pieces must all be there
    assert "customers.csv:3:" in status.stdout
    assert "not-an-email" in status.stdout
    assert "is not a valid email address" in " ".join(status.stdout.split())


def test_project_from_environment(project: Path, tmp_path: Path) -> None:
    r = run("status", cwd=tmp_path, env={"SENDWISE_PROJECT": str(project)})
    assert r.returncode == 0, r.stderr
    assert "warehouse" in r.stdout
    assert (project / "warehouse.duckdb").exists()


def _leaf_commands():
    import typer

    from sendwise.cli.app import app

    todo = [("sendwise", typer.main.get_command(app))]
    while todo:
        path, cmd = todo.pop()
        subs = getattr(cmd, "commands", None)
        if subs:
            todo.extend((f"{path} {name}", sub) for name, sub in subs.items())
        else:
            yield path, cmd


def test_every_command_is_registered_once_with_the_shared_options() -> None:
    commands = dict(_leaf_commands())
    assert len(commands) >= 25
    projects = {}
    for path, cmd in commands.items():
        options = {opt: p for p in cmd.params for opt in getattr(p, "opts", [])}
        assert "--quiet" in options and "-q" in options, f"{path}: not registered with @command"
        if "--project" in options:
            p = options["--project"]
            projects[path] = (tuple(p.opts), p.envvar, p.help)
    assert len(projects) >= 20
    assert len(set(projects.values())) == 1, "--project declared more than once"
    assert "sendwise campaign size" not in projects  # a command that needs no project


def test_quiet_hides_progress_but_not_results(project: Path) -> None:
    csv = project / "customers.csv"
    csv.write_text("customer_id,email\n1,a@b.com\n")
    r = run("ingest", str(csv), "--table", "customer", "--project", str(project), "-q")
    assert r.returncode == 0, r.stderr
    assert "read 1, loaded 1, rejected 0" in r.stdout


def test_usage_errors_are_a_usage_line_and_one_error_line(tmp_path: Path) -> None:
    r = run("status", "--nope")
    assert r.returncode == 2
    assert r.stderr.splitlines()[-1] == "error: No such option: --nope"
    assert "Traceback" not in r.stderr


def test_an_interruption_is_one_line_and_exit_code_130(capsys) -> None:
    from sendwise.cli.output import OUT
    from sendwise.cli.registry import run_guarded

    def interrupted() -> None:
        raise KeyboardInterrupt

    OUT.configure()
    assert run_guarded(interrupted) == 130
    assert capsys.readouterr().err == "interrupted\n"
