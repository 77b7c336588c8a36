"""The Kafka side of streaming intake: topic names, the brokers of a ``kafka://`` URL, the
librdkafka settings, errors as one-line StreamErrors, and a producer of Segment calls
(confluent-kafka, docs/streaming.md "Kafka")."""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from sendwise.config import StreamSettings
from sendwise.errors import ConfigError, StreamError
from sendwise.intake.streams.producer import encode_call


class _LibrdkafkaLog:
    """librdkafka's own log lines at INFO at most: a broker down is retried by the client and
    logged on every retry, while what the user must see is raised once as a StreamError."""

    logger = logging.getLogger("sendwise.intake.streams.librdkafka")

    def log(self, level: int, msg: str, *args: Any) -> None:
        self.logger.log(min(level, logging.INFO), msg, *args)


librdkafka_log = _LibrdkafkaLog()

SCHEME = "kafka://"
TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
BROKER = re.compile(r"[A-Za-z0-9._-]+:[0-9]{1,5}|\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}")
TIMEOUT = 10.0
"""Seconds a metadata, offsets or commit request to the brokers may take."""
REACH_TIMEOUT = 5.0
"""Seconds the first request of a consumer waits before its brokers are called unreachable."""
UNREACHABLE = {"_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_RESOLVE"}


def topic_name(stream: str) -> str:
    """The Kafka topic of a stream name: ``:`` read as ``.`` (``sendwise:events`` is topic
    ``sendwise.events``), anything else Kafka does not take refused."""
    name = stream.replace(":", ".")
    if not TOPIC.fullmatch(name) or name in {".", ".."}:
        raise ConfigError(
            f"stream {stream!r} is not a Kafka topic name "
            "(letters, digits, '.', '_', '-' and ':' read as '.')"
        )
    return name


def brokers_of(url: str) -> str:
    """The ``bootstrap.servers`` of a ``kafka://host:port[,host:port]`` URL."""
    if not url.startswith(SCHEME):
        raise ConfigError("streams.url is not a Kafka URL (kafka://host:port[,host:port])")
    rest = url[len(SCHEME) :]
    if any(c in rest for c in "@?#"):  # never echoed: it may hold a password
        raise ConfigError(
            "streams.url: a Kafka URL is kafka://host:port[,host:port] alone; credentials "
            "and other settings (sasl.username, sasl.password, ...) go in [streams.kafka]"
        )
    hosts = [h.strip() for h in rest.strip("/").split(",")]
    bad = [h for h in hosts if not BROKER.fullmatch(h) or not 0 < _port(h) < 65536]
    if bad:
        raise ConfigError(
            f"streams.url: {bad[0][:60]!r} is not a broker's host:port with a port from 1 "
            "to 65535 (kafka://host:port[,host:port])"
        )
    return ",".join(hosts)


def _port(host: str) -> int:
    return int(host.rsplit(":", 1)[1]) if ":" in host and host.rsplit(":", 1)[1].isdigit() else 0


def kafka_config(settings: StreamSettings) -> dict[str, Any]:
    """librdkafka settings common to consumers, producers and status: the brokers, logs to
    Python's logging, and the user's own ``[streams.kafka]``."""
    if not settings.url:
        raise ConfigError("no Kafka brokers: set url in [streams] (kafka://host:port)")
    return {
        "bootstrap.servers": brokers_of(settings.url),
        "logger": librdkafka_log,
        "socket.connection.setup.timeout.ms": 5_000,
        **settings.kafka,
    }


@contextlib.contextmanager
def kafka_errors(brokers: str) -> Iterator[None]:
    """librdkafka's errors as one-line :class:`StreamError`."""
    from confluent_kafka import KafkaException

    try:
        yield
    except KafkaException as exc:
        raise StreamError(said(brokers, exc.args[0] if exc.args else exc)) from None


@contextlib.contextmanager
def settings_errors() -> Iterator[None]:
    """A client librdkafka will not make from the settings (an unknown property, a value of
    the wrong kind, a key file that is not there): one-line :class:`ConfigError`."""
    from confluent_kafka import KafkaException

    try:
        yield
    except KafkaException as exc:
        error = exc.args[0] if exc.args else exc
        text = error.str() if hasattr(error, "str") else str(error)
        raise ConfigError(f"[streams.kafka] settings: {text[:300]}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[streams.kafka] settings: {str(exc)[:300]}") from None


def said(brokers: str, error: Any) -> str:
    name = error.name() if hasattr(error, "name") else ""
    text = error.str() if hasattr(error, "str") else str(error)
    if name in UNREACHABLE:
        return f"Kafka at {brokers} is not reachable: {text[:200]}"
    return f"Kafka at {brokers} refused: {text[:200]}"


def kafka_producer(settings: StreamSettings) -> Any:
    """A confluent-kafka Producer for ``settings``' brokers (every write acknowledged by all
    in-sync replicas)."""
    from confluent_kafka import Producer

    with settings_errors():
        return Producer({**kafka_config(settings), "acks": "all", "linger.ms": 5})


def produce_events(
    producer: Any, topic: str, calls: Iterable[Mapping[str, Any]], *, wait: float = 60.0
) -> int:
    """Produce each call as one record (keyed by its userId or anonymousId, so one customer's
    calls keep their order in one partition) and wait until Kafka has them all; how many.
    A record Kafka refuses raises :class:`StreamError`; send it again: its messageId makes a
    second copy "already stored"."""
    failed: list[str] = []

    def delivered(err: Any, _msg: Any) -> None:
        if err is not None:
            failed.append(err.str())

    n = 0
    for call in calls:
        who = call.get("userId") or call.get("anonymousId")
        key = str(who).encode("utf-8", "replace") if who is not None else None
        produce_when_room(producer, topic, value=encode_call(call), key=key, on_delivery=delivered)
        n += 1
        if n % 10_000 == 0:
            producer.poll(0)
    left = producer.flush(wait)
    if left or failed:
        reason = failed[0] if failed else f"{left} not acknowledged in {wait:.0f} s"
        raise StreamError(f"records not written to {topic}: {reason}")
    return n


def produce_when_room(
    producer: Any,
    topic: str,
    *,
    value: bytes | None,
    key: bytes | None,
    on_delivery: Any,
    headers: list[Any] | None = None,
    wait: float | None = None,
    what: str = "records",
) -> None:
    """``producer.produce`` one record, letting the client send while its queue is full
    (BufferError): for as long as it takes, or ``wait`` seconds and then a StreamError."""
    extra = {"headers": headers} if headers is not None else {}
    deadline = None if wait is None else time.monotonic() + wait
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=on_delivery, **extra)
            return
        except BufferError:
            if deadline is not None and time.monotonic() > deadline:
                raise StreamError(
                    f"{what} not written to {topic}: the producer's queue stayed full for "
                    f"{wait:.0f} s"
                ) from None
            producer.poll(0.05)
