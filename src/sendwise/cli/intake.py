"""``sendwise intake consume``: a thin shell over sendwise.intake.streams (docs/streaming.md)."""

from __future__ import annotations

import gc
import os
import signal
import socket
import threading
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from sendwise.cli.output import OUT
from sendwise.cli.registry import Project, command, group
from sendwise.errors import ConfigError

intake_app = group("intake", "Streaming intake: Segment calls from a Redis stream.")


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and Ctrl-C finish the batch under way (stored and acknowledged), then stop."""

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@command(intake_app, "consume")
def consume(
    redis_url: Annotated[
        str | None,
        typer.Option("--redis", help="Redis URL (default: streams.url of sendwise.toml)."),
    ] = None,
    stream: Annotated[str | None, typer.Option(help="The stream to read.")] = None,
    group_name: Annotated[str | None, typer.Option("--group", help="The consumer group.")] = None,
    consumer: Annotated[
        str | None,
        typer.Option(
            help="This consumer's name in the group (default: host-pid). Reuse a "
            "name after a restart to take its unacknowledged entries back at once."
        ),
    ] = None,
    batch: Annotated[int | None, typer.Option(help="Entries read and committed at a time.")] = None,
    until_idle: Annotated[
        bool, typer.Option(help="Stop once nothing is new and nothing is pending.")
    ] = False,
    project: Project = None,
) -> None:
    """Store the Segment calls of a Redis stream in the event log (a consumer group member:
    at least once, each messageId once); runs until SIGTERM or Ctrl-C."""
    from sendwise.config import load_settings
    from sendwise.intake.streams import ConsumeReport, StreamConsumer, connect, safe_url
    from sendwise.intake.sync import confirmation_mailer, lazy_confirmer
    from sendwise.store import open_store

    settings = load_settings(project)
    overrides = {"url": redis_url, "stream": stream, "group": group_name, "batch": batch}
    try:
        streams = settings.streams.model_validate(
            {
                **settings.streams.model_dump(),
                **{k: v for k, v in overrides.items() if v is not None},
            }
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise ConfigError(f"--{where}: {problem['msg']}") from None
    if not streams.url:
        raise ConfigError("no Redis URL: pass --redis or set url in [streams] of sendwise.toml")
    name = consumer or f"{socket.gethostname()}-{os.getpid()}"
    redis = connect(streams.url)
    stop = threading.Event()
    _stop_on_signals(stop)

    def show(r: ConsumeReport) -> None:
        if not OUT.quiet:
            OUT.err.print(
                f"{r.read:,} entries: {r.stored:,} stored, {r.duplicates:,} already stored, "
                f"{r.dead:,} dead-lettered, {r.claimed:,} taken over; {r.rate:,.0f} a second"
            )

    OUT.print(
        f"consuming {streams.stream} from {safe_url(streams.url)} "
        f"as {name} of group {streams.group}"
    )
    try:
        with open_store(settings) as store:
            # What start-up made (modules, settings, the engine) lives as long as the process:
            # kept out of every later garbage collection, it costs about a fifth less CPU an
            # event (docs/streaming.md). A process-wide choice, so the shell's, not the library's.
            gc.freeze()
            reader = StreamConsumer(
                redis,
                store,
                streams,
                consumer=name,
                confirm=lazy_confirmer(settings),  # double opt-in, as the HTTP intake
                mail=confirmation_mailer(settings),
            )
            report = reader.run(stop=stop, until_idle=until_idle, on_progress=show)
    finally:
        gc.unfreeze()
        redis.close()
    OUT.print(
        f"took {report.read:,} entries in {report.seconds:,.1f} s: {report.stored:,} stored, "
        f"{report.duplicates:,} already stored, {report.dead:,} dead-lettered "
        f"(to {streams.dead_letter_stream()}), {report.claimed:,} taken over"
    )


def print_stream_status(settings: Any) -> None:
    """The streaming intake part of `sendwise status`: lag, pending, dead letters, throughput
    (only when streams.url is set; a Redis that cannot be reached is one line, not a failure)."""
    from rich.table import Table

    from sendwise.errors import StreamError
    from sendwise.intake.streams import connect, safe_url, stream_status

    s = settings.streams
    if not s.url:
        return
    try:
        redis = connect(s.url)
        try:
            g = stream_status(redis, s)
        finally:
            redis.close()
    except (StreamError, ConfigError) as exc:
        OUT.print(f"stream {s.stream}: {exc}")
        return
    lag = "unknown" if g.lag is None else f"{g.lag:,}"
    OUT.print(
        f"stream {g.stream} at {safe_url(s.url)}, group {g.group}: {g.length:,} entries, "
        f"lag {lag}, pending {g.pending:,}, dead letters {g.dead_letters:,}, "
        f"throughput {g.rate:,.0f} entries/s"
    )
    if g.consumers:
        table = Table(title="stream consumers", title_justify="left")
        for col in ("consumer", "taken", "stored", "already stored", "dead", "entries/s", "seen"):
            table.add_column(col, justify="left" if col == "consumer" else "right")
        for c in g.consumers:
            table.add_row(
                c.name,
                f"{c.read:,}",
                f"{c.stored:,}",
                f"{c.duplicates:,}",
                f"{c.dead:,}",
                f"{c.rate:,.0f}" if c.active else "stopped",
                f"{c.seconds_ago:,.0f} s ago",
            )
        OUT.print(table)
