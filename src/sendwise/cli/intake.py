"""``sendwise intake consume``: a thin shell over sendwise.intake.streams, on Redis Streams or
Kafka (docs/streaming.md)."""

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

intake_app = group("intake", "Streaming intake: Segment calls from a Redis stream or Kafka.")


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
    kafka: Annotated[
        str | None,
        typer.Option("--kafka", help="Kafka brokers as host:port[,host:port] (instead of Redis)."),
    ] = None,
    stream: Annotated[
        str | None, typer.Option(help="The stream (on Kafka, the topic) to read.")
    ] = None,
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
    """Store the Segment calls of a Redis stream or a Kafka topic in the event log (a consumer
    group member: at least once, each messageId once); runs until SIGTERM or Ctrl-C."""
    from sendwise.config import load_settings
    from sendwise.intake.streams import ConsumeReport

    if redis_url and kafka:
        raise ConfigError("--redis and --kafka: give one broker")
    settings = load_settings(project)
    url = redis_url or (f"kafka://{kafka}" if kafka else None)
    overrides = {"url": url, "stream": stream, "group": group_name, "batch": batch}
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
        raise ConfigError(
            "no broker: pass --redis or --kafka, or set url in [streams] of sendwise.toml"
        )
    name = consumer or f"{socket.gethostname()}-{os.getpid()}"
    stop = threading.Event()
    _stop_on_signals(stop)
    unit = "records" if streams.is_kafka else "entries"

    def show(r: ConsumeReport) -> None:
        if not OUT.quiet:
            OUT.err.print(
                f"{r.read:,} {unit}: {r.stored:,} stored, {r.duplicates:,} already stored, "
                f"{r.dead:,} dead-lettered"
                + ("" if streams.is_kafka else f", {r.claimed:,} taken over")
                + f"; {r.rate:,.0f} a second"
            )

    if streams.is_kafka:
        report, dead_to = _consume_kafka(settings, streams, name, stop, until_idle, show)
    else:
        report, dead_to = _consume_redis(settings, streams, name, stop, until_idle, show)
    OUT.print(
        f"took {report.read:,} {unit} in {report.seconds:,.1f} s: {report.stored:,} stored, "
        f"{report.duplicates:,} already stored, {report.dead:,} dead-lettered (to {dead_to})"
        + ("" if streams.is_kafka else f", {report.claimed:,} taken over")
    )


def _consume_redis(
    settings: Any, streams: Any, name: str, stop: threading.Event, until_idle: bool, show: Any
) -> tuple[Any, str]:
    from sendwise.intake.streams import StreamConsumer, connect, safe_url
    from sendwise.intake.sync import confirmation_mailer, lazy_confirmer
    from sendwise.store import open_store

    redis = connect(streams.url)
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
    return report, streams.dead_letter_stream()


def _consume_kafka(
    settings: Any, streams: Any, name: str, stop: threading.Event, until_idle: bool, show: Any
) -> tuple[Any, str]:
    from sendwise.intake.streams.kafka import TopicConsumer
    from sendwise.intake.streams.kafka_connect import brokers_of, topic_name
    from sendwise.intake.sync import confirmation_mailer, lazy_confirmer
    from sendwise.store import open_store

    topic, dead = topic_name(streams.stream), topic_name(streams.dead_letter_stream())
    OUT.print(
        f"consuming {topic} from kafka://{brokers_of(streams.url)} "
        f"as {name} of group {streams.group}"
    )
    try:
        with open_store(settings) as store:
            gc.freeze()  # as for Redis
            reader = TopicConsumer(
                store,
                streams,
                consumer=name,
                confirm=lazy_confirmer(settings),
                mail=confirmation_mailer(settings),
            )
            report = reader.run(stop=stop, until_idle=until_idle, on_progress=show)
    finally:
        gc.unfreeze()
    return report, dead


def print_stream_status(settings: Any) -> None:
    """The streaming intake part of `sendwise status`: lag, pending, dead letters, throughput
    (only when streams.url is set; a Redis that cannot be reached is one line, not a failure)."""

    from sendwise.errors import StreamError
    from sendwise.intake.streams import connect, safe_url, stream_status

    s = settings.streams
    if not s.url:
        return
    if s.is_kafka:
        _print_kafka_status(s)
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
    _consumers_table(g)


def _print_kafka_status(s: Any) -> None:
    from sendwise.errors import StreamError
    from sendwise.intake.streams.kafka_connect import brokers_of
    from sendwise.intake.streams.kafka_status import kafka_status

    try:
        g = kafka_status(s)
    except (StreamError, ConfigError) as exc:
        OUT.print(f"topic {s.stream}: {exc}")
        return
    OUT.print(
        f"topic {g.stream} at kafka://{brokers_of(s.url)}, group {g.group}: "
        f"{g.length:,} records, lag {'unknown' if g.lag is None else f'{g.lag:,}'}, "
        f"dead letters {g.dead_letters:,}, "
        f"throughput {g.rate:,.0f} records/s"
    )
    _consumers_table(g)


def _consumers_table(g: Any) -> None:
    from rich.table import Table

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
