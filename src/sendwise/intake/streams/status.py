"""Lag and throughput of streaming intake, for `sendwise status`.

Lag and pending entries come from Redis itself (XINFO GROUPS: ``lag`` is the number of entries
of the stream not yet delivered to the group, Redis 7.0+; ``pending`` the ones delivered and not
acknowledged). Throughput is what each consumer reports after every batch in the hash
:func:`sendwise.intake.streams.consumer.stats_key` (entries a second over its last ten seconds);
a consumer silent for :data:`ACTIVE_SECONDS` counts as stopped.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from sendwise.config import StreamSettings
from sendwise.intake.streams.connect import redis_errors
from sendwise.intake.streams.consumer import stats_key

ACTIVE_SECONDS = 30.0


@dataclass
class ConsumerFigures:
    name: str
    read: int
    stored: int
    duplicates: int
    dead: int
    rate: float
    seconds_ago: float

    @property
    def active(self) -> bool:
        return self.seconds_ago <= ACTIVE_SECONDS


@dataclass
class GroupStatus:
    stream: str
    group: str
    length: int
    """Entries in the stream."""
    lag: int | None
    """Entries not yet delivered to the group (None: Redis cannot tell, after deletions)."""
    pending: int | None
    """Entries delivered and not yet acknowledged (None on Kafka, which keeps no such state:
    the lag holds them)."""
    dead_letters: int
    """Entries in the dead-letter stream."""
    consumers: list[ConsumerFigures] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Entries a second taken by the group's active consumers together."""
        return sum(c.rate for c in self.consumers if c.active)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def figures_of(name: str, raw: Any, now: float) -> ConsumerFigures | None:
    """A consumer's figures from what it wrote (JSON), None when they are not figures: the
    text comes from the broker, where anyone who can write to it may have put anything."""
    try:
        doc = json.loads(raw, parse_constant=lambda _: None)  # NaN, Infinity: no figure
        if not all(math.isfinite(float(doc[k])) for k in ("rate", "at")):  # 1e999 reads as inf
            return None
        return ConsumerFigures(
            name=name,
            read=int(doc["read"]),
            stored=int(doc["stored"]),
            duplicates=int(doc["duplicates"]),
            dead=int(doc["dead"]),
            rate=float(doc["rate"]),
            seconds_ago=max(0.0, now - float(doc["at"])),
        )
    except (ValueError, KeyError, TypeError, OverflowError, RecursionError):
        return None


def stream_status(redis: Any, settings: StreamSettings) -> GroupStatus:
    """The figures of ``settings.group`` on ``settings.stream`` (zeros before it exists)."""
    with redis_errors(redis):
        if not redis.exists(settings.stream):
            return GroupStatus(settings.stream, settings.group, 0, 0, 0, 0)
        length = int(redis.xlen(settings.stream))
        groups = {_text(g["name"]): g for g in redis.xinfo_groups(settings.stream)}
        dead = int(redis.xlen(settings.dead_letter_stream()))
        stats = redis.hgetall(stats_key(settings.stream, settings.group))
    info = groups.get(settings.group)
    if info is None:
        return GroupStatus(settings.stream, settings.group, length, length, 0, dead)
    lag = info.get("lag")
    now = time.time()
    consumers = [f for k, v in sorted(stats.items()) if (f := figures_of(_text(k), v, now))]
    return GroupStatus(
        stream=settings.stream,
        group=settings.group,
        length=length,
        lag=None if lag is None else int(lag),
        pending=int(info.get("pending", 0)),
        dead_letters=dead,
        consumers=consumers,
    )
