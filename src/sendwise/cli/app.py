"""The ``sendwise`` command: a thin shell that parses options, calls the library, prints.

Commands register through :mod:`sendwise.cli.registry` (one decorator, shared options declared
once) and print through :mod:`sendwise.cli.output` (untrusted text is never interpreted). A user
error (a SendwiseError) is one red line and exit code 1, never a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from sendwise.cli import render
from sendwise.cli.output import OUT, line, log_to_stderr
from sendwise.cli.registry import Project, app, command, group, open_warehouse
from sendwise.config import init_project, load_settings
from sendwise.errors import InputError


@command()
def init(
    folder: Annotated[Path, typer.Argument(help="Folder to create or use.")] = Path("."),
) -> None:
    """Create a project folder with a default sendwise.toml."""
    toml_file = init_project(folder)
    OUT.print(line("project ready: ", (toml_file, "bold")))


@command()
def ingest(
    paths: Annotated[
        list[Path], typer.Argument(help="Files to load (CSV, CSV.gz, Parquet, JSONL).")
    ],
    table: Annotated[str | None, typer.Option(help="Canonical table the files load into.")] = None,
    preset: Annotated[
        str | None, typer.Option(help="A known layout: online-retail, cdnow, segment.")
    ] = None,
    mapping: Annotated[
        str | None, typer.Option(help="A column mapping declared in sendwise.toml [mappings.NAME].")
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Load again even if this content was loaded.")
    ] = False,
    project: Project = None,
) -> None:
    """Load files into the warehouse; every row is loaded or rejected with a reason."""
    from sendwise.ingest.load import ingest as run_ingest

    settings, wh = open_warehouse(project)
    with wh:
        for path in paths:
            with OUT.steps(path.name) as say:
                report = run_ingest(
                    wh,
                    settings,
                    path,
                    table=table,
                    preset=preset,
                    mapping=mapping,
                    force=force,
                    progress=say,
                )
            render.ingest_report(OUT.console, report)


@command()
def simulate(
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 5000,
    days: Annotated[int, typer.Option(help="Days of history.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same shop.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the files; default PROJECT/simulated.")
    ] = None,
    load: Annotated[bool, typer.Option(help="Also load the files into the warehouse.")] = True,
    project: Project = None,
) -> None:
    """Simulate a shop with known ground truth and write (and load) its tables."""
    from sendwise.cli.demo import CliDemoView
    from sendwise.demo import load_tables
    from sendwise.simulate import simulate_shop

    settings = load_settings(project)
    folder = out or settings.path("simulated")
    with OUT.task_bar("simulating", days) as advance:
        shop = simulate_shop(customers=customers, days=days, seed=seed, progress=advance)
    paths = shop.write(folder)
    render.simulated(OUT.console, shop, folder)
    if load:
        load_tables(settings, paths, CliDemoView())


def _parse_rules(rules: list[str]) -> dict[str, str]:
    parsed = {}
    for item in rules:
        name, sep, expr = item.partition("=")
        if not sep or not name.strip() or not expr.strip():
            raise InputError(
                f"--rule takes NAME=EXPRESSION, e.g. 'VIP=monetary > 1000'; got {item!r}"
            )
        parsed[name.strip()] = expr.strip()
    return parsed


@command()
def segment(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Date the profiles describe (YYYY-MM-DD); default: the end of the data."
        ),
    ] = None,
    rule: Annotated[
        list[str] | None, typer.Option(help="An extra rule segment, NAME=EXPRESSION (repeatable).")
    ] = None,
    project: Project = None,
) -> None:
    """Build features, RFM, rule segments and clusters into customer profiles."""
    from sendwise.profiles import build_profiles

    settings, wh = open_warehouse(project)
    with wh, OUT.steps("profiles") as say:
        built = build_profiles(wh, settings, as_of, rules=_parse_rules(rule or []), progress=say)
    render.profile_build(OUT.console, built)


export_app = group("export", "Write warehouse results to files.")


@command(export_app, "profiles")
def export_profiles(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write: .csv or .parquet.")],
    project: Project = None,
) -> None:
    """Write every customer profile to a CSV or Parquet file."""
    from sendwise.profiles import export_profiles as run_export

    _, wh = open_warehouse(project)
    with wh:
        n = run_export(wh, out)
    OUT.print(line(f"wrote {n:,} profiles to ", (out, "bold")))


@command()
def profile(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    project: Project = None,
) -> None:
    """Print one customer's profile, readable."""
    from sendwise.profiles import get_profile

    _, wh = open_warehouse(project)
    with wh:
        render.profile(OUT.console, get_profile(wh, customer_id))


@command()
def status(project: Project = None) -> None:
    """Row counts, date ranges, rejects by reason and recent loads, the retention rules; with
    streams.url set, the streaming intake's lag, pending entries, dead letters and throughput."""
    from datetime import UTC, datetime

    from sendwise.cli.intake import print_stream_status
    from sendwise.privacy.build_steps import retention
    from sendwise.warehouse.status import warehouse_status

    settings, wh = open_warehouse(project)
    with wh:
        render.status(OUT.console, warehouse_status(wh))
        rules = retention(wh, settings, datetime.now(UTC).replace(tzinfo=None))
    for rule in rules:
        OUT.print(
            line(
                f"retention: {rule.table} kept {rule.days} days (by {rule.column}); rows"
                f" before {rule.cutoff:%Y-%m-%d}: {rule.due:,}, removed by the next build"
            )
        )
    if not rules:
        OUT.print(line("retention: no rules (privacy.retention_days); every row is kept"))
    print_stream_status(settings)


@command()
def demo(
    project: Project = None,
    customers: Annotated[int, typer.Option(help="Customers in the simulated shop.")] = 5000,
    days: Annotated[int, typer.Option(help="Days of history.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
) -> None:
    """Simulate a shop, load it, run every step that exists, and print a summary."""
    from sendwise.cli.demo import CliDemoView, print_summary
    from sendwise.demo import run_demo

    folder = project or Path("demo-shop")
    summary = run_demo(folder, CliDemoView(), customers=customers, days=days, seed=seed)
    print_summary(summary, folder)


# Every command module registers its commands when imported; the order is the help's order.
from sendwise.cli import campaign as _campaign  # noqa: E402,F401
from sendwise.cli import content as _content  # noqa: E402,F401
from sendwise.cli import intake as _intake  # noqa: E402,F401
from sendwise.cli import journey as _journey  # noqa: E402,F401
from sendwise.cli import keys as _keys  # noqa: E402,F401
from sendwise.cli import models as _models  # noqa: E402,F401
from sendwise.cli import privacy as _privacy  # noqa: E402,F401
from sendwise.cli import quarantine as _quarantine  # noqa: E402,F401
from sendwise.cli import recommend as _recommend  # noqa: E402,F401
from sendwise.cli import serving as _serving  # noqa: E402,F401
from sendwise.cli import tracking as _tracking  # noqa: E402,F401
from sendwise.cli import uplift as _uplift  # noqa: E402,F401
from sendwise.cli import users as _users  # noqa: E402,F401
from sendwise.cli import webhooks as _webhooks  # noqa: E402,F401
from sendwise.cli import worker as _worker  # noqa: E402,F401


def main() -> None:
    """The console script: user errors become one line and exit code 1 (see cli/registry.py)."""
    log_to_stderr(logging.WARNING)
    app()
