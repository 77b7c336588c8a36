"""Parsing Segment calls: every body is either rows or one IntakeError naming the field (and
the batch index), never anything else; the clock-skew rule and the limits of Segment's spec."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.errors import IntakeError
from sendwise.intake.body import MAX_BATCH_BYTES, MAX_CALL_BYTES, MAX_DEPTH, parse_request
from sendwise.intake.calls import TYPES

NOW = datetime(2026, 12, 6, 12, 0, 0)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "type",
    "userId",
    "anonymousId",
    "messageId",
    "event",
    "name",
    "category",
    "groupId",
    "previousId",
    "timestamp",
    "sentAt",
    "originalTimestamp",
    "properties",
    "traits",
    "context",
    "integrations",
]
calls = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)


def parse(kind: str, doc: object, **kw: object) -> list[dict]:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return parse_request(kind, raw, received_at=NOW, source="test", **kw)  # type: ignore[arg-type]


def stored_shape(row: dict) -> None:
    """What the store needs: text ids, naive times, JSON objects that serialise to UTF-8."""
    assert row["type"] in TYPES
    assert isinstance(row["message_id"], str) and row["message_id"]
    assert row["user_id"] or row["anonymous_id"]
    assert row["occurred_at"].tzinfo is None
    for name in ("properties", "traits", "context"):
        assert isinstance(row[name], dict)
        text = json.dumps(row[name], allow_nan=False, ensure_ascii=False)
        assert "\x00" not in text
        text.encode("utf-8")


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from([*TYPES, "batch"]), doc=calls | json_values)
def test_any_json_is_rows_or_a_named_refusal(kind: str, doc: object) -> None:
    try:
        rows = parse(kind, {"batch": [doc]} if kind == "batch" and isinstance(doc, dict) else doc)
    except IntakeError as exc:
        assert exc.field and str(exc)
        if kind == "batch" and exc.index is not None:
            assert exc.index == 0
        return
    for row in rows:
        stored_shape(row)


@settings(max_examples=300)
@given(raw=st.binary(max_size=300), kind=st.sampled_from([*TYPES, "batch"]))
def test_any_bytes_are_rows_or_a_named_refusal(raw: bytes, kind: str) -> None:
    try:
        parse(kind, raw)
    except IntakeError as exc:
        assert exc.field


ids = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30
)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1))


@st.composite
def valid_calls(draw: st.DrawFn) -> dict:
    kind = draw(st.sampled_from(TYPES))
    call: dict = {"type": kind, "messageId": draw(ids.filter(str.strip))}
    who = draw(st.sampled_from(["user", "anon", "both"]))
    if who != "anon" or kind == "alias":
        call["userId"] = draw(ids.filter(str.strip))
    if who != "user" and kind != "alias":
        call["anonymousId"] = draw(ids.filter(str.strip))
    if kind == "track":
        call["event"] = draw(ids.filter(str.strip))
    if kind == "group":
        call["groupId"] = draw(ids.filter(str.strip))
    if kind == "alias":
        call["previousId"] = draw(ids.filter(str.strip))
    clean = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | ids
    )
    call["properties"] = draw(st.dictionaries(ids, clean, max_size=3))
    return call


def iso(at: datetime) -> str:
    return at.replace(tzinfo=UTC).isoformat()


@settings(max_examples=200)
@given(call=valid_calls(), ts=times, sent=times)
def test_clock_skew_rule(call: dict, ts: datetime, sent: datetime) -> None:
    """timestamp corrected by receivedAt - sentAt when sentAt is given; as sent otherwise."""
    (row,) = parse(call["type"], {**call, "timestamp": iso(ts), "sentAt": iso(sent)})
    assert row["occurred_at"] == NOW - (sent - ts)
    assert row["sent_at"] == sent and row["received_at"] == NOW
    (row,) = parse(call["type"], {**call, "timestamp": iso(ts)})
    assert row["occurred_at"] == ts
    (row,) = parse(call["type"], call)
    assert row["occurred_at"] == NOW
    batch = {"batch": [{**call, "timestamp": iso(ts)}], "sentAt": iso(sent)}
    (row,) = parse("batch", batch)
    assert row["occurred_at"] == NOW - (sent - ts)


def test_offsets_are_converted_to_utc() -> None:
    (row,) = parse("track", {"userId": "u", "event": "E", "timestamp": "2026-12-06T13:00:00+01:00"})
    assert row["occurred_at"] == datetime(2026, 12, 6, 12, 0)


REQUIRED = {
    "track": ["event"],
    "group": ["groupId"],
    "alias": ["userId", "previousId"],
}


@settings(max_examples=200)
@given(calls=st.lists(valid_calls(), min_size=1, max_size=6), data=st.data())
def test_a_bad_call_refuses_its_batch_and_names_index_and_field(calls: list, data) -> None:
    rows = parse("batch", {"batch": calls})
    assert [r["message_id"] for r in rows] == [c["messageId"].strip() for c in calls]
    for row in rows:
        stored_shape(row)
    k = data.draw(st.integers(0, len(calls) - 1))
    bad = dict(calls[k])
    kind = bad["type"]
    field = data.draw(st.sampled_from([*REQUIRED.get(kind, []), "properties", "timestamp", "id"]))
    if field == "properties":
        bad["properties"] = data.draw(st.lists(st.integers(), max_size=2) | st.text(max_size=3))
    elif field == "timestamp":
        bad["timestamp"] = data.draw(
            st.text(max_size=5).filter(lambda t: not t.strip()[:1].isdigit())
        )
    elif field == "id":
        bad.pop("userId", None)
        bad.pop("anonymousId", None)
        field = "userId"
    else:
        bad.pop(field)
    calls = [*calls[:k], bad, *calls[k + 1 :]]
    with pytest.raises(IntakeError) as refused:
        parse("batch", {"batch": calls})
    assert (refused.value.index, refused.value.field) == (k, field)


def test_a_call_without_a_known_type_in_a_batch() -> None:
    with pytest.raises(IntakeError) as refused:
        parse("batch", {"batch": [{"type": "track", "userId": "u", "event": "E"}, {"userId": "u"}]})
    assert (refused.value.index, refused.value.field) == (1, "type")


def test_limits_of_the_spec() -> None:
    big = "x" * MAX_CALL_BYTES
    with pytest.raises(IntakeError, match="larger than 32 KB") as refused:
        parse("track", {"userId": "u", "event": "E", "properties": {"p": big}})
    assert refused.value.field == "body"
    ok = {"type": "track", "userId": "u", "event": "E", "properties": {"p": "y" * 30_000}}
    assert len(parse("batch", {"batch": [ok] * 10})) == 10
    with pytest.raises(IntakeError, match="32 KB") as refused:
        parse("batch", {"batch": [ok, {**ok, "properties": {"p": big}}]})
    assert refused.value.index == 1
    with pytest.raises(IntakeError, match="500 KB"):
        parse("batch", {"batch": [ok] * (MAX_BATCH_BYTES // 30_000 + 1)})


def test_gzip_bodies_and_bombs() -> None:
    doc = {"batch": [{"type": "page", "anonymousId": "a", "name": "Home"}] * 3}
    rows = parse("batch", gzip.compress(json.dumps(doc).encode()), encoding="gzip")
    assert [r["event"] for r in rows] == ["Home"] * 3
    bomb = gzip.compress(b'{"batch": [' + b" " * (MAX_BATCH_BYTES * 20) + b"]}")
    assert len(bomb) < MAX_BATCH_BYTES
    with pytest.raises(IntakeError, match="500 KB"):
        parse("batch", bomb, encoding="gzip")
    with pytest.raises(IntakeError, match="not valid gzip"):
        parse("batch", b"not gzip", encoding="gzip")
    with pytest.raises(IntakeError) as refused:
        parse("batch", b"{}", encoding="br")
    assert refused.value.field == "Content-Encoding"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"userId": "u\\u0000", "event": "E"}', "NUL"),
        ('{"userId": "u", "event": "E", "properties": {"a\\u0000": 1}}', "NUL"),
        ('{"userId": "u", "event": "E", "properties": {"a": ["\\ud800"]}}', "surrogate"),
        ('{"userId": "u", "event": "E", "properties": {"a": NaN}}', "not valid JSON"),
        ('{"userId": "u", "event": "E", "properties": {"a": 1e999}}', "not valid JSON"),
        (
            '{"userId": "u", "event": "E", "properties": {"a": ' + "9" * 5000 + "}}",
            "not valid JSON",
        ),
        ('{"userId": "u", "event": "E", "properties": ' + "[" * 5000 + "]" * 5000 + "}", "nested"),
        ('{"userId": "u", "event": "E", "properties": ' + "[" * 40 + "]" * 40 + "}", "nested"),
    ],
)
def test_what_a_store_would_refuse_is_refused_here(text: str, problem: str) -> None:
    with pytest.raises(IntakeError, match=problem):
        parse("track", text.encode())


def test_depth_within_the_limit_is_kept() -> None:
    nested: object = 1
    for _ in range(MAX_DEPTH - 2):
        nested = [nested]
    (row,) = parse("track", {"userId": "u", "event": "E", "properties": {"a": nested}})
    assert row["properties"]["a"] == nested


def test_alias_group_page_fields() -> None:
    (alias,) = parse("alias", {"userId": "c1", "previousId": "anon-1"})
    assert (alias["user_id"], alias["anonymous_id"], alias["customer_id"]) == ("c1", "anon-1", "c1")
    (group,) = parse("group", {"userId": "c1", "groupId": 42, "traits": {"name": "ACME"}})
    assert group["properties"] == {"groupId": "42"} and group["traits"] == {"name": "ACME"}
    (page,) = parse("page", {"anonymousId": "a", "name": "Home", "category": "Docs"})
    assert page["event"] == "Home" and page["properties"] == {"category": "Docs"}
    (track,) = parse("track", {"userId": 7, "event": " Product Viewed "})
    assert (track["user_id"], track["event"]) == ("7", "Product Viewed")
    assert track["message_id"].startswith("sw-")
    (ctx,) = parse(
        "batch",
        {
            "batch": [{"type": "identify", "userId": "u", "context": {"ip": "1"}}],
            "context": {"library": {"name": "x"}, "ip": "0"},
        },
    )
    assert ctx["context"] == {"library": {"name": "x"}, "ip": "1"}


def test_received_at_bounds_do_not_overflow() -> None:
    for ts, sent in (
        ("0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z"),
        ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"),
    ):
        with pytest.raises(IntakeError, match="out of range"):
            parse("track", {"userId": "u", "event": "E", "timestamp": ts, "sentAt": sent})
    (row,) = parse(
        "track",
        {
            "userId": "u",
            "event": "E",
            "timestamp": "2026-12-06T12:00:00Z",
            "sentAt": "2026-12-06T12:00:05Z",
        },
    )
    assert row["occurred_at"] == NOW - timedelta(seconds=5)
