"""``sendwise journey ...``: a thin shell over sendwise.journeys (create, list, status, pause,
resume, results). Every problem is one line and exit code 1 (cli/registry.py); names and
definitions are printed literally (cli/output.py)."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from sendwise.cli.output import OUT, line, styled
from sendwise.cli.registry import Project, command, group

if TYPE_CHECKING:
    from sendwise.journeys.engine import JourneyStatus
    from sendwise.journeys.results import JourneyResults

journey_app = group("journey", "Create, follow, pause and measure triggered journeys.")

NameArg = Annotated[str, typer.Argument(help="The journey's name.")]
METRICS = {"conversion": "conversion rate", "revenue_per_unit": "revenue per entry"}


def _open(project: Path | None) -> tuple[Any, Any]:
    from sendwise.config import load_settings
    from sendwise.store import open_store

    settings = load_settings(project)
    return settings, open_store(settings)


def _trigger(t: Any) -> str:
    if t.kind == "event":
        return f"event {t.event}" + (f" where {t.where}" if t.where else "")
    if t.kind == "segment":
        return f"{t.on} segment {t.segment}"
    if t.kind == "score":
        side = f"above {t.above:g}" if t.above is not None else f"below {t.below:g}"
        return f"{t.score} {side}"
    if t.date:
        return f"date {t.date}"
    return f"{t.days_since_last_order} days since the last order"


@command(journey_app, "create")
def create(
    file: Annotated[Path, typer.Argument(help="Journey definition (.toml, .yaml).")],
    project: Project = None,
) -> None:
    """Validate a journey against the project's events, templates and fields, and store it (a
    new version when it exists). Nothing is stored when it does not validate."""
    from sendwise.journeys import load_journey
    from sendwise.journeys.service import save_journey
    from sendwise.journeys.validation import known_names
    from sendwise.store.records import utcnow

    defn = load_journey(file)
    settings, store = _open(project)
    with store:
        version = save_journey(store, defn, known_names(settings, store), utcnow())
    sends = sum(1 for s in defn.steps if s.kind == "send")
    holdout = f", holdout {100 * defn.entry.holdout:g}%" if defn.entry.holdout else ""
    summary = f"{_trigger(defn.trigger)}, {len(defn.steps)} steps, {sends} sends{holdout}"
    OUT.print(line("journey ", (defn.name, "bold"), f" stored (version {version}): ", summary))


@command(journey_app, "list")
def list_journeys(project: Project = None) -> None:
    """Every journey: version, status, trigger, goal and how many customers entered."""
    from sendwise.journeys.definition import parse_journey

    _, store = _open(project)
    with store:
        records = store.journeys.all()
        entered = {r.name: sum(c[-1] for c in store.journeys.counts(r.name)) for r in records}
    if not records:
        OUT.print("no journey yet: `sendwise journey create journeys/welcome.toml` stores one")
        return
    table = Table(title="journeys", title_justify="left")
    for col in ("name", "version", "status", "trigger", "goal", "entered"):
        table.add_column(col, justify="right" if col in ("version", "entered") else "left")
    for r in records:
        defn = parse_journey(dict(r.definition))
        goal = defn.goal.event if defn.goal else "–"
        table.add_row(r.name, str(r.version), r.status, _trigger(defn.trigger), goal,
                      f"{entered[r.name]:,}")  # fmt: skip
    OUT.print(table)


@command(journey_app, "status")
def status(name: NameArg, project: Project = None) -> None:
    """Customers per step, waiting, done, exited by reason, and the messages by status."""
    from sendwise.journeys.service import journey_status

    _, store = _open(project)
    with store:
        st = journey_status(store, name)
    print_status(OUT.console, st)


def _counts(title: str, counts: dict[str, int], what: str = "customers") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column(what, justify="right")
    for key, n in counts.items():
        table.add_row(str(key), f"{n:,}")
    return table


def print_status(console: Console, st: JourneyStatus) -> None:
    paused = styled(st.status, "yellow" if st.status == "paused" else "green")
    console.print(line("journey ", (st.name, "bold"), f" version {st.version}, ", paused))
    console.print(_counts("customers", {
        "entered": st.entered, "in the holdout": st.holdout, "waiting": st.waiting,
        "running": st.running, "done": st.done, "exited": sum(st.exited.values()),
    }))  # fmt: skip
    if st.at_step:
        console.print(_counts("waiting or running, by step", st.at_step))
    if st.exited:
        console.print(_counts("exited, by reason", st.exited))
    if st.messages:
        console.print(_counts("messages, by status", st.messages, "messages"))


def _set(name: str, state: str, project: Path | None) -> None:
    from sendwise.journeys.service import set_journey_status
    from sendwise.store.records import utcnow

    _, store = _open(project)
    with store:
        set_journey_status(store, name, state, utcnow())
    OUT.print(line("journey ", (name, "bold"), f" is {state}"))


@command(journey_app, "pause")
def pause(name: NameArg, project: Project = None) -> None:
    """Stop entering customers and running steps; waiting customers keep their place."""
    _set(name, "paused", project)


@command(journey_app, "resume")
def resume(name: NameArg, project: Project = None) -> None:
    """Resume a paused journey: due steps run at the worker's next tick."""
    _set(name, "active", project)


@command(journey_app, "results")
def results(name: NameArg, project: Project = None) -> None:
    """Conversion (goal events within the goal window) and revenue against the holdout, for the
    journey, each split arm and each branch, with the campaigns' statistics."""
    from sendwise.journeys.results import journey_results

    settings, store = _open(project)
    within = timedelta(days=settings.tracking.attribution_days)
    with store:
        res = journey_results(store, name, default_within=within)
    print_results(OUT.console, res)


def _pct(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{100 * x:.2f}%"


def _p(x: float) -> str:
    return "–" if x is None or math.isnan(x) else (f"{x:.3f}" if x >= 0.001 else f"{x:.1e}")


def print_results(console: Console, res: JourneyResults) -> None:
    console.print(line("journey ", (res.name, "bold"), f": {res.entries:,} entries"))
    for section in res.sections:
        r = section.results
        table = Table(title=section.title, title_justify="left")
        for col in ("arm", "entries", "conversions", "rate [95% CI]", "revenue", "per entry"):
            table.add_column(col, justify="left" if col == "arm" else "right")
        for arm, row in r.arms.iterrows():
            rate = (f"{_pct(row['conversion_rate'])} [{_pct(row['conversion_low'])}, "
                    f"{_pct(row['conversion_high'])}]")  # fmt: skip
            table.add_row(str(arm), f"{int(row['n']):,}", f"{int(row['conversion']):,}", rate,
                          f"{row['revenue']:,.2f}", f"{row['revenue_per_unit']:,.2f}")  # fmt: skip
        console.print(table)
        if not r.comparisons.empty:
            diff = Table(title="lift over the holdout (95% CI)", title_justify="left")
            for col in ("arm", "metric", "difference [95% CI]", "test", "p"):
                diff.add_column(col)
            for _, c in r.comparisons.iterrows():
                money = c["test"] == "welch"
                scale, unit = (1, "") if money else (100, " pts")
                shown = (f"{scale * c['estimate']:+.2f}{unit} [{scale * c['low']:+.2f}, "
                         f"{scale * c['high']:+.2f}]")  # fmt: skip
                metric = METRICS.get(str(c["metric"]), str(c["metric"]))
                diff.add_row(str(c["arm"]), metric, shown, str(c["test"]), _p(c["p"]))
            console.print(diff)
        if r.srm.mismatch:
            console.print(line(
                ("sample ratio mismatch", "red"), f" (p = {r.srm.p_value:.2g}): the arms are "
                "not the designed shares; do not trust these comparisons until explained",
            ))  # fmt: skip
    for note in res.notes:
        console.print(line(("note:", "yellow"), f" {note}"))
