"""Lag and throughput of Kafka intake, for `sendwise status`: the records retained, the group's
lag (records not yet committed), the dead-letter topic's size, and each consumer's figures from
the metadata of its last offset commit (sendwise.intake.streams.kafka)."""

from __future__ import annotations

import json
import time
from typing import Any

from sendwise.config import StreamSettings
from sendwise.intake.streams.kafka_connect import (
    TIMEOUT,
    kafka_config,
    kafka_errors,
    settings_errors,
    topic_name,
)
from sendwise.intake.streams.status import ConsumerFigures, GroupStatus, figures_of


def topic_lag(client: Any, topic: str) -> int | None:
    """Records of ``topic`` the client's group has not committed: 0 when there is no topic,
    None when a broker cannot tell now (a partition without a leader, a rebalance)."""
    parts = _partitions(client, topic)
    if parts is None or any(lag is None for _, lag, _ in parts):
        return None
    return sum(lag or 0 for _, lag, _ in parts)


def _partitions(client: Any, topic: str) -> list[tuple[int, int | None, Any]] | None:
    """(records retained, lag or None when unknown, committed offset) per partition of
    ``topic``; [] when there is no such topic, None when its metadata is in error."""
    from confluent_kafka import TopicPartition

    found = client.list_topics(timeout=TIMEOUT).topics.get(topic)
    if found is None:
        return []
    if found.error is not None or not found.partitions:
        return None
    parts = [TopicPartition(topic, p) for p in sorted(found.partitions)]
    committed = client.committed(parts, timeout=TIMEOUT)
    out: list[tuple[int, int | None, Any]] = []
    for tp in committed:
        low, high = client.get_watermark_offsets(TopicPartition(topic, tp.partition), TIMEOUT)
        if tp.error is not None or low is None or high is None or low < 0 or high < 0:
            out.append((0, None, tp))
            continue
        start = tp.offset if tp.offset >= 0 else low
        out.append((high - low, max(0, high - max(start, low)), tp))
    return out


def kafka_status(settings: StreamSettings) -> GroupStatus:
    """The figures of ``settings.group`` on the topic: records retained, lag (records not yet
    committed by the group), dead letters, and each consumer's figures from its last commit.
    Kafka keeps no per-record delivery state, so ``pending`` is None (the lag holds them)."""
    from confluent_kafka import Consumer

    topic = topic_name(settings.stream)
    conf = kafka_config(settings)
    with settings_errors():
        client = Consumer({**conf, "group.id": settings.group, "enable.auto.commit": False})
    try:
        with kafka_errors(conf["bootstrap.servers"]):
            client.list_topics(timeout=TIMEOUT)
            parts = _partitions(client, topic) or []
            dead = _partitions(client, topic_name(settings.dead_letter_stream())) or []
    finally:
        client.close()
    now = time.time()
    latest: dict[str, ConsumerFigures] = {}
    for _, _, tp in parts:
        if not tp.metadata:
            continue
        try:
            name = str(json.loads(tp.metadata)["consumer"])
        except (ValueError, KeyError, TypeError, RecursionError):
            continue
        fig = figures_of(name, tp.metadata, now)
        if fig is not None and (name not in latest or fig.seconds_ago < latest[name].seconds_ago):
            latest[name] = fig
    return GroupStatus(
        stream=topic,
        group=settings.group,
        length=sum(n for n, _, _ in parts),
        lag=None
        if any(lag is None for _, lag, _ in parts)
        else sum(lag or 0 for _, lag, _ in parts),
        pending=None,
        dead_letters=sum(n for n, _, _ in dead),
        consumers=sorted(latest.values(), key=lambda f: f.name),
    )
