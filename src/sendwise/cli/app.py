"""The ``sendwise`` command: a thin shell that parses options, calls the library, prints.

A user error (a SendwiseError) is one red line and exit code 1, never a traceback.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sendwise.cli import models as models_cli
from sendwise.cli import recommend as _recommend_cli
from sendwise.cli import render
from sendwise.cli.progress import steps, task_bar
from sendwise.config import PROJECT_ENV, init_project, load_settings
from sendwise.errors import SendwiseError

app = typer.Typer(
    name="sendwise",
    help="Predictive email personalization you run yourself.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err = Console(stderr=True)

ProjectOpt = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        envvar=PROJECT_ENV,
        show_default="current folder",
        help="The project folder (holds sendwise.toml and the warehouse).",
    ),
]


def _warehouse(project: Path | None):
    from sendwise.warehouse.connection import Warehouse

    settings = load_settings(project)
    return settings, Warehouse.from_settings(settings)


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="Folder to create or use.")] = Path("."),
) -> None:
    """Create a project folder with a default sendwise.toml."""
    toml_file = init_project(folder)
    console.print(f"project ready: [bold]{toml_file}[/bold]")


@app.command()
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
    project: ProjectOpt = None,
) -> None:
    """Load files into the warehouse; every row is loaded or rejected with a reason."""
    from sendwise.ingest.load import ingest as run_ingest

    settings, wh = _warehouse(project)
    with wh:
        for path in paths:
            with steps(console, f"{path.name}") as say:
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
            render.ingest_report(console, report)


@app.command()
def simulate(
    customers: Annotated[int, typer.Option(help="Number of customers.")] = 5000,
    days: Annotated[int, typer.Option(help="Days of history.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same shop.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Folder for the files; default PROJECT/simulated.")
    ] = None,
    load: Annotated[bool, typer.Option(help="Also load the files into the warehouse.")] = True,
    project: ProjectOpt = None,
) -> None:
    """Simulate a shop with known ground truth and write (and load) its tables."""
    from sendwise.simulate import simulate_shop

    settings = load_settings(project)
    folder = out or settings.path("simulated")
    with task_bar(console, "simulating", days) as advance:
        shop = simulate_shop(customers=customers, days=days, seed=seed, progress=advance)
    paths = shop.write(folder)
    render.simulated(console, shop, folder)
    if load:
        _load_simulated(settings, paths)


def _load_simulated(settings, paths: dict[str, Path]) -> None:
    from sendwise.ingest.load import ingest as run_ingest
    from sendwise.warehouse.connection import Warehouse
    from sendwise.warehouse.schema import LOADABLE

    with Warehouse.from_settings(settings) as wh:
        for name in LOADABLE:
            if name in paths:
                with steps(console, f"loading {name}") as say:
                    report = run_ingest(wh, settings, paths[name], table=name, progress=say)
                render.ingest_report(console, report)


def _parse_rules(rules: list[str]) -> dict[str, str]:
    from sendwise.errors import InputError

    parsed = {}
    for item in rules:
        name, sep, expr = item.partition("=")
        if not sep or not name.strip() or not expr.strip():
            raise InputError(
                f"--rule takes NAME=EXPRESSION, e.g. 'VIP=monetary > 1000'; got {item!r}"
            )
        parsed[name.strip()] = expr.strip()
    return parsed


@app.command()
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
    project: ProjectOpt = None,
) -> None:
    """Build features, RFM, rule segments and clusters into customer profiles."""
    from sendwise.profiles import build_profiles

    settings, wh = _warehouse(project)
    with wh, steps(console, "profiles") as say:
        built = build_profiles(wh, settings, as_of, rules=_parse_rules(rule or []), progress=say)
    render.profile_build(console, built)


from sendwise.cli.campaign import campaign_app, demo_campaign, store_app  # noqa: E402
from sendwise.cli.tracking import demo_results  # noqa: E402

app.add_typer(campaign_app, name="campaign")
app.add_typer(store_app, name="store")

export_app = typer.Typer(help="Write warehouse results to files.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("profiles")
def export_profiles(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write: .csv or .parquet.")],
    project: ProjectOpt = None,
) -> None:
    """Write every customer profile to a CSV or Parquet file."""
    from sendwise.profiles import export_profiles as run_export

    _, wh = _warehouse(project)
    with wh:
        n = run_export(wh, out)
    console.print(f"wrote {n:,} profiles to [bold]{out}[/bold]")


_recommend_cli.register(app, export_app, ProjectOpt, _warehouse, console)


@app.command()
def profile(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    project: ProjectOpt = None,
) -> None:
    """Print one customer's profile, readable."""
    from sendwise.profiles import get_profile

    _, wh = _warehouse(project)
    with wh:
        render.profile(console, get_profile(wh, customer_id))


@app.command()
def status(project: ProjectOpt = None) -> None:
    """Row counts, date ranges, rejects by reason and recent loads."""
    from sendwise.warehouse.status import warehouse_status

    _, wh = _warehouse(project)
    with wh:
        render.status(console, warehouse_status(wh))


@app.command()
def demo(
    project: ProjectOpt = None,
    customers: Annotated[int, typer.Option(help="Customers in the simulated shop.")] = 5000,
    days: Annotated[int, typer.Option(help="Days of history.")] = 365,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
) -> None:
    """Simulate a shop, load it, run every step that exists, and print a summary."""
    import ibis

    from sendwise.build import run_build
    from sendwise.cli.content import demo_emails
    from sendwise.cli.recommend import show_build
    from sendwise.simulate import simulate_shop
    from sendwise.warehouse.connection import Warehouse
    from sendwise.warehouse.status import warehouse_status

    folder = project or Path("demo-shop")
    init_project(folder)
    settings = load_settings(folder)
    console.rule("[bold]sendwise demo")
    with task_bar(console, "simulating the shop", days) as advance:
        shop = simulate_shop(customers=customers, days=days, seed=seed, progress=advance)
    paths = shop.write(settings.path("simulated"))
    render.simulated(console, shop, settings.path("simulated"))
    _load_simulated(settings, paths)
    with Warehouse.from_settings(settings) as wh:
        render.status(console, warehouse_status(wh))
        console.rule("[bold]customer profiles and predictions")
        with steps(console, "build") as say:
            result = run_build(wh, settings, progress=say)
        render.profile_build(console, result.profiles)
        console.rule("[bold]models (judged on the last window, against baselines)")
        models_cli.print_trained(console, result.trained)
        models_cli.print_scored(console, result.scored)
        console.rule("[bold]recommendations")
        show_build(console, result.extra["recommendations"])
        demo_emails(console, settings, wh)
        example = wh.table("profile").order_by(ibis.desc("monetary")).limit(1).customer_id
        top = example.execute().iloc[0]
        console.rule("[bold]campaign")
        name = demo_campaign(settings, wh)
        console.rule("[bold]responses and results")
        demo_results(settings, wh, shop.truth, name)
    console.rule("[bold]where things are")
    console.print(f"project:     {settings.project}")
    console.print(f"warehouse:   {settings.warehouse_url()}")
    console.print(f"simulated:   {settings.path('simulated')} (tables and truth.parquet)")
    console.print("profiles:    warehouse table 'profile' (sendwise export profiles --out FILE)")
    console.print(f"models:      {settings.path('models')} (sendwise models list; report.md)")
    console.print(f"reports:     {settings.path('reports')} (recommendation evaluation)")
    console.print(f"try:         sendwise profile {top} --project {folder}")


models_cli.register(app, console, ProjectOpt, _warehouse)
from sendwise.cli.content import register as _register_content  # noqa: E402

_register_content(app)
from sendwise.cli.tracking import register as _register_tracking  # noqa: E402

_register_tracking(app)
from sendwise.cli.keys import register as _register_keys  # noqa: E402
from sendwise.cli.quarantine import register as _register_quarantine  # noqa: E402

_register_keys(app)
_register_quarantine(app)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except SendwiseError as exc:
        err.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(130) from None
