"""One stream entry into one event-log row, or a dead letter naming why not.

An entry holds one Segment call (any of track, identify, page, screen, group, alias, naming its
``type``) as UTF-8 JSON in its field ``call``, as :func:`sendwise.intake.streams.publish_events`
writes it. It goes through the very checks of the HTTP intake (sendwise.intake.body and
sendwise.intake.calls: the 32 KB limit, JSON that PostgreSQL would take, the Segment rules), so
an entry and the same call posted to ``/v1/batch`` become the same row.

Two things make a redelivered entry the same row again, which is what makes at-least-once
delivery store each event once (docs/adr/0160-redis-streams-intake.md):

- ``receivedAt`` is the time in the entry's id (the Redis server's clock when the entry was
  added), not the time a consumer read it;
- a call without a ``messageId`` gets one made of the stream and the entry id, not a random one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sendwise.errors import IntakeError
from sendwise.intake.body import MAX_CALL_BYTES, MAX_DEPTH, check_values, load_json
from sendwise.intake.calls import TYPES, parse_call

FIELD = b"call"
"""The entry field that holds the call's JSON."""

Fields = Mapping[bytes, bytes]


@dataclass(frozen=True)
class Dead:
    """An entry that cannot be stored: its id, why, and its fields as they were."""

    entry_id: str
    reason: str
    fields: Fields


def entry_time(entry_id: str) -> datetime:
    """The naive-UTC time in a stream entry id (``<milliseconds>-<sequence>``)."""
    millis = int(entry_id.split("-", 1)[0])
    return datetime.fromtimestamp(millis / 1000, UTC).replace(tzinfo=None)


def stream_tag(stream: str) -> str:
    """A short, stable tag of a stream's name for the messageIds made here."""
    return hashlib.sha256(stream.encode("utf-8")).hexdigest()[:10]


def _missing_id(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_entry(entry_id: str, fields: Fields | None, *, tag: str, source: str) -> dict[str, Any]:
    """The event-log row of one entry; :class:`IntakeError` naming the field when the entry
    cannot be accepted."""
    if not fields:
        raise IntakeError("entry", "no fields (deleted from the stream before it was stored)")
    raw = fields.get(FIELD)
    if raw is None:
        names = ", ".join(repr(k)[2:-1] for k in list(fields)[:5])
        raise IntakeError("entry", f"no 'call' field (fields: {names})")
    return parse_raw_call(
        raw, received_at=entry_time(entry_id), made_id=f"sw-{tag}-{entry_id}", source=source
    )


def parse_raw_call(
    raw: bytes, *, received_at: datetime, made_id: str, source: str
) -> dict[str, Any]:
    """The event-log row of one call's JSON, as a broker delivered it (a Redis entry's field
    or a Kafka record's value): the HTTP intake's checks, ``made_id`` as the messageId of a
    call without one, ``received_at`` as its receivedAt (both stable across redeliveries)."""
    if len(raw) > MAX_CALL_BYTES:
        raise IntakeError("call", f"larger than {MAX_CALL_BYTES // 1024} KB")
    try:
        doc = load_json(raw)
        escapes = b"\\u" in raw
        # a call cannot nest deeper than it has brackets: most need no walk at all
        if escapes or raw.count(b"{") + raw.count(b"[") >= MAX_DEPTH:
            check_values(doc, strings=escapes)
    except IntakeError as exc:
        if exc.field != "body":
            raise
        raise IntakeError("call", exc.problem) from None
    kind = doc.get("type")
    if kind not in TYPES:
        raise IntakeError("type", f"must be one of {', '.join(TYPES)}")
    if _missing_id(doc.get("messageId")):
        doc["messageId"] = made_id
    return parse_call(doc, kind, received_at=received_at, source=source)


@dataclass
class Parsed:
    """A batch of entries, parsed: every entry is a row or a dead letter, none is dropped."""

    rows: list[dict[str, Any]]
    row_ids: list[str]
    """The entry id of each row."""
    dead: list[Dead]


def parse_entries(entries: list[tuple[str, Fields | None]], *, tag: str, source: str) -> Parsed:
    """The rows of the entries that can be stored, and a :class:`Dead` for each other one."""
    parsed = Parsed([], [], [])
    for entry_id, fields in entries:
        try:
            parsed.rows.append(parse_entry(entry_id, fields, tag=tag, source=source))
            parsed.row_ids.append(entry_id)
        except IntakeError as exc:
            parsed.dead.append(Dead(entry_id, str(exc), dict(fields or {})))
    return parsed
