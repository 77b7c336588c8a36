"""One Segment call (track, identify, page, screen, group, alias) into one event-log row.

Field names and rules after Segment's HTTP Tracking API and its Spec:

- every call names a ``userId`` or an ``anonymousId`` (strings; numbers are accepted and kept as
  their decimal text, as Segment's libraries do); ``track`` needs ``event``, ``group`` needs
  ``groupId``, ``alias`` needs ``userId`` and ``previousId``;
- ``properties``, ``traits``, ``context`` and ``integrations`` are JSON objects when present;
- ``messageId`` is the de-duplication key (generated when a call has none, so a retry of such a
  call cannot be recognised: clients send one);
- clock skew: the time an event happened is ``receivedAt - (sentAt - timestamp)`` when the call
  (or its batch) carries ``sentAt``, the ``timestamp`` as sent otherwise, and ``receivedAt``
  without a ``timestamp``. Every time is stored as naive UTC.

Every refusal is an :class:`IntakeError` naming the field (and the call's index in a batch).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sendwise.errors import IntakeError

TYPES = ("track", "identify", "page", "screen", "group", "alias")
MAX_ID_CHARS = 200
"""messageId, userId, anonymousId, previousId, groupId: longer ids are typing errors or abuse."""
MAX_NAME_CHARS = 200
"""A track event's or a page's name."""
OBJECTS = ("properties", "traits", "context", "integrations")


def _id(call: Mapping[str, Any], name: str, index: int | None) -> str | None:
    value = call.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise IntakeError(name, "must be a string", index)
    text = str(value).strip()
    if len(text) > MAX_ID_CHARS:
        raise IntakeError(name, f"longer than {MAX_ID_CHARS} characters", index)
    return text or None


def _name(call: Mapping[str, Any], name: str, index: int | None) -> str | None:
    value = call.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise IntakeError(name, "must be a string", index)
    if len(value) > MAX_NAME_CHARS:
        raise IntakeError(name, f"longer than {MAX_NAME_CHARS} characters", index)
    return value.strip() or None


def _object(call: Mapping[str, Any], name: str, index: int | None) -> dict[str, Any]:
    value = call.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise IntakeError(name, "must be a JSON object", index)
    return value


def parse_time(value: Any, name: str, index: int | None = None) -> datetime | None:
    """An ISO-8601 time as naive UTC (a time without an offset is read as UTC)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise IntakeError(name, "must be an ISO-8601 date-time string", index)
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise IntakeError(name, "not an ISO-8601 date-time", index) from None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            raise IntakeError(name, "out of range", index) from None
    return parsed


def occurred_at(
    timestamp: datetime | None, sent_at: datetime | None, received_at: datetime, index: int | None
) -> datetime:
    """Segment's clock-skew rule: ``receivedAt - (sentAt - timestamp)`` when both are known."""
    if timestamp is None:
        return received_at
    if sent_at is None:
        return timestamp
    try:
        return received_at - (sent_at - timestamp)
    except OverflowError:
        raise IntakeError("timestamp", "out of range once corrected by sentAt", index) from None


def parse_call(
    call: Any,
    kind: str,
    *,
    received_at: datetime,
    source: str,
    batch_sent_at: datetime | None = None,
    batch_context: Mapping[str, Any] | None = None,
    index: int | None = None,
) -> dict[str, Any]:
    """The event-log row of one call of type ``kind`` (the endpoint's type, or the call's own
    ``type`` inside a batch)."""
    if not isinstance(call, dict):
        raise IntakeError("call", "must be a JSON object", index)
    for name in OBJECTS:
        _object(call, name, index)
    user_id = _id(call, "userId", index)
    anonymous_id = _id(call, "anonymousId", index)
    message_id = _id(call, "messageId", index) or f"sw-{uuid.uuid4()}"
    event = None
    properties = _object(call, "properties", index)
    traits = _object(call, "traits", index)
    if kind == "alias":
        previous = _id(call, "previousId", index)
        if user_id is None:
            raise IntakeError("userId", "required for alias", index)
        if previous is None:
            raise IntakeError("previousId", "required for alias", index)
        # the previous id is what identity resolution links: it takes the anonymous id's place
        properties = {"previousId": previous}
        if anonymous_id is not None and anonymous_id != previous:
            properties["anonymousId"] = anonymous_id
        anonymous_id = previous
    elif user_id is None and anonymous_id is None:
        raise IntakeError("userId", "a userId or an anonymousId is required", index)
    if kind == "track":
        event = _name(call, "event", index)
        if event is None:
            raise IntakeError("event", "required for track", index)
    elif kind in ("page", "screen"):
        event = _name(call, "name", index)
        category = _name(call, "category", index)
        if category is not None and "category" not in properties:
            properties = {**properties, "category": category}
    elif kind == "group":
        group_id = _id(call, "groupId", index)
        if group_id is None:
            raise IntakeError("groupId", "required for group", index)
        properties = {"groupId": group_id}
    timestamp = parse_time(call.get("timestamp"), "timestamp", index)
    if timestamp is None:
        timestamp = parse_time(call.get("originalTimestamp"), "originalTimestamp", index)
    sent_at = parse_time(call.get("sentAt"), "sentAt", index) or batch_sent_at
    context = _object(call, "context", index)
    if batch_context:
        context = {**batch_context, **context}
    return {
        "message_id": message_id,
        "type": kind,
        "event": event,
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "customer_id": user_id,
        "occurred_at": occurred_at(timestamp, sent_at, received_at, index),
        "received_at": received_at,
        "sent_at": sent_at,
        "properties": properties,
        "traits": traits,
        "context": context,
        "source": source,
    }
