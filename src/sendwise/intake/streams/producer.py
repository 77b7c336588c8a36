"""Adding Segment calls to a Redis stream, as `sendwise intake consume` reads them.

One call a stream entry (field ``call``, compact UTF-8 JSON), added in pipelined round trips of
``chunk`` entries. Give every call a ``messageId``: the consumer stores each messageId once, so
a producer that sends again what it is unsure was added (a timeout, a crash) adds nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sendwise.intake.streams.connect import redis_errors
from sendwise.intake.streams.entries import FIELD


def encode_call(call: Mapping[str, Any]) -> bytes:
    """The entry value of one call (the consumer checks it as the HTTP intake would)."""
    return json.dumps(call, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def publish_events(
    redis: Any,
    stream: str,
    calls: Iterable[Mapping[str, Any]],
    *,
    chunk: int = 1_000,
    maxlen: int | None = None,
) -> list[str]:
    """XADD each call to ``stream``; the entry ids, in order. ``maxlen`` trims the stream
    approximately to that many entries (``MAXLEN ~``): only entries the consumer group has
    read and acknowledged should be trimmed, so size it well above the consumers' lag."""
    ids: list[str] = []
    batch: list[bytes] = []

    def flush() -> None:
        with redis_errors(redis):
            pipe = redis.pipeline(transaction=False)
            for value in batch:
                pipe.xadd(stream, {FIELD: value}, maxlen=maxlen, approximate=True)
            added = pipe.execute()
        ids.extend(i.decode() if isinstance(i, bytes) else str(i) for i in added)
        batch.clear()

    for call in calls:
        batch.append(encode_call(call))
        if len(batch) >= chunk:
            flush()
    if batch:
        flush()
    return ids
