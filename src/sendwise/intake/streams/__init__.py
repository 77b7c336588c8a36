"""Streaming intake: Segment calls through a Redis stream's consumer group into the same event
log as the HTTP intake (docs/streaming.md).

    from sendwise.intake.streams import connect, publish_events, StreamConsumer

    redis = connect("redis://localhost:6379/0")
    publish_events(redis, "sendwise:events", calls)           # a producer
    StreamConsumer(redis, store, settings.streams, consumer="c1").run(stop=stop_event)
"""

from sendwise.intake.streams.connect import connect, ensure_group, safe_url
from sendwise.intake.streams.consumer import ConsumeReport, StreamConsumer
from sendwise.intake.streams.producer import encode_call, publish_events
from sendwise.intake.streams.status import GroupStatus, stream_status

__all__ = [
    "ConsumeReport",
    "GroupStatus",
    "StreamConsumer",
    "connect",
    "encode_call",
    "ensure_group",
    "publish_events",
    "safe_url",
    "stream_status",
]
