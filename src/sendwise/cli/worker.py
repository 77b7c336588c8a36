"""``sendwise worker``: runs the journeys (triggers, due steps, sends) until stopped; a thin
shell over :class:`sendwise.journeys.worker.JourneyWorker`."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from sendwise.cli.output import OUT
from sendwise.cli.registry import Project, command


@command()
def worker(
    project: Project = None,
    interval: Annotated[
        float, typer.Option(min=0.05, max=60, help="Seconds between looks at the event log.")
    ] = 0.5,
    once: Annotated[bool, typer.Option(help="Run one pass and stop.")] = False,
) -> None:
    """Run the journeys: new events reach their triggers, due steps run, messages are sent."""
    from sendwise.config import load_settings
    from sendwise.journeys.worker import JourneyWorker
    from sendwise.store import open_store

    settings = load_settings(project)
    with open_store(settings) as store:
        runner = JourneyWorker(store, settings, interval=interval)
        if once:
            r = runner.tick()
            OUT.print(f"{r.events:,} events, {r.steps:,} steps run, {r.sent:,} messages sent")
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        OUT.print(f"journey worker running (every {interval:g} s); stop with Ctrl-C")
        runner.run_forever(stop)
