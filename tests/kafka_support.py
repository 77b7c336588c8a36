"""A Kafka broker for the streaming intake tests: librdkafka's mock cluster, in its own process.

Apache Kafka's broker cannot be installed on the machines this project is tested on: it is in
neither PyPI, Debian nor npm, and Maven Central is not reachable (docs/adr/0161). librdkafka,
the C client inside confluent-kafka, carries a broker of its own for its test suite (the "mock
cluster", set up by ``test.mock.num.brokers``): it speaks Kafka's wire protocol on a loopback
port, with topics, partitions, consumer groups (join, sync, heartbeats, session timeouts,
rebalances) and committed offsets with their metadata. The consumers under test reach it
over TCP from other processes, as they would a real broker. Skipped (with the reason) where
confluent-kafka is not installed."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BROKER = """
import sys
from confluent_kafka import Producer
cluster = Producer({"test.mock.num.brokers": 1, "bootstrap.servers": ""})
broker = next(iter(cluster.list_topics(timeout=10).brokers.values()))
print(f"{broker.host}:{broker.port}", flush=True)
while sys.stdin.read(1):  # runs until its stdin closes (the test ends)
    pass
"""


def start_kafka(folder: Path) -> Iterator[str]:
    """Run a one-broker mock cluster until the generator is closed; yields its URL
    (``kafka://127.0.0.1:<port>``)."""
    pytest.importorskip("confluent_kafka", reason="confluent-kafka is not installed")
    log = (folder / "broker.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", BROKER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 20
        address = proc.stdout.readline().strip()
        if not address or time.monotonic() > deadline:
            raise RuntimeError(f"the mock Kafka broker did not start: {proc.poll()}")
        yield f"kafka://{address}"
    finally:
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
