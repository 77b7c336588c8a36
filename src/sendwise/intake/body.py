"""A request body of the HTTP Tracking API into event-log rows, or one clear refusal.

Limits after Segment: 32 KB for a single call (and for each call of a batch), 500 KB for a
batch. A gzip body (``Content-Encoding: gzip``, as Segment's libraries may send) is limited by
its decompressed size, so a small bomb cannot expand in memory.

A batch is all or nothing (docs/adr/0095-intake-batch-all-or-nothing.md): when one call is
malformed the whole batch is refused with 400, naming the call's index and field, and nothing of
it is stored; a client that gets a 2xx knows every call of it is stored.

What PostgreSQL or a JSON reader down the line would refuse is refused here, so that a call
accepted is a call stored: NaN and infinite numbers, integers past 4,300 digits, text holding
NUL or lone surrogates (``\\u0000``, ``\\ud800``), nesting deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime
from typing import Any

from sendwise.errors import IntakeError
from sendwise.intake.calls import TYPES, parse_call, parse_time

MAX_CALL_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_DEPTH = 32
"""Nesting of objects and arrays in one call; Segment's own payloads nest three or four deep."""
KINDS = (*TYPES, "batch")


def limit_of(kind: str) -> int:
    """The largest body an endpoint takes (before decompression, and after)."""
    return MAX_BATCH_BYTES if kind == "batch" else MAX_CALL_BYTES


def _too_large(limit: int) -> IntakeError:
    return IntakeError("body", f"larger than {limit // 1024} KB")


def decompress(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """The body as sent (identity) or inflated (gzip, deflate), refused past ``limit`` bytes."""
    coding = (encoding or "identity").strip().lower()
    if coding in ("", "identity"):
        data = raw
    elif coding in ("gzip", "x-gzip", "deflate"):
        window = 16 + zlib.MAX_WBITS if coding != "deflate" else zlib.MAX_WBITS
        inflater = zlib.decompressobj(window)
        try:
            data = inflater.decompress(raw, limit + 1)
        except zlib.error:
            raise IntakeError("body", f"not valid {coding} data") from None
        if not inflater.eof and len(data) <= limit:
            raise IntakeError("body", f"truncated {coding} data")
    else:
        raise IntakeError("Content-Encoding", f"{coding!r} is not supported (use gzip)")
    if len(data) > limit:
        raise _too_large(limit)
    return data


def _bad_number(text: str) -> Any:
    raise IntakeError("body", f"not valid JSON ({text} is not a JSON number)")


def _float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise IntakeError("body", f"not valid JSON ({text[:20]}... is too large a number)")
    return value


def load_json(data: bytes) -> dict[str, Any]:
    """The body's JSON object; anything else is refused (never a 500)."""
    try:
        text = data.decode("utf-8")
        doc = json.loads(text, parse_constant=_bad_number, parse_float=_float)
    except UnicodeDecodeError:
        raise IntakeError("body", "not UTF-8 text") from None
    except RecursionError:
        raise IntakeError("body", f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, huge integers, NaN
        raise IntakeError("body", f"not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(doc, dict):
        raise IntakeError("body", "must be a JSON object")
    return doc


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "text holding a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "text holding a lone surrogate"
    return None


def _where(path: tuple[Any, ...]) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return repr(text)[1:-1] or "body"  # escaped: a key may hold anything


def check_values(doc: Any, *, strings: bool, index: int | None = None) -> None:
    """Depth of every container; with ``strings``, every key and text (only escapes can
    smuggle NUL or lone surrogates into parsed JSON: raw control bytes are invalid JSON).
    Only containers are pushed on the stack: a flat call costs one pass over its values."""
    if not isinstance(doc, dict | list):
        if strings and isinstance(doc, str) and (problem := _bad_text(doc)):
            raise IntakeError("body", problem, index)
        return
    stack: list[tuple[Any, tuple[Any, ...]]] = [(doc, ())]
    while stack:
        value, path = stack.pop()
        if len(path) >= MAX_DEPTH:
            raise IntakeError(_where(path), f"nested deeper than {MAX_DEPTH} levels", index)
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(item, dict | list):
                stack.append((item, (*path, key)))
            elif strings and isinstance(item, str) and (problem := _bad_text(item)):
                raise IntakeError(_where((*path, key)), problem, index)
            if strings and isinstance(key, str) and (problem := _bad_text(key)):
                raise IntakeError(_where((*path, key)), problem, index)


def _call_size(call: Any) -> int:
    text = json.dumps(call, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-8", "replace"))


def parse_request(
    kind: str,
    raw: bytes,
    *,
    received_at: datetime,
    source: str,
    encoding: str | None = None,
) -> list[dict[str, Any]]:
    """Every event-log row of one request to ``/v1/<kind>`` (all of them, or IntakeError)."""
    if kind not in KINDS:
        raise IntakeError("type", f"unknown call type {kind!r}")
    limit = limit_of(kind)
    if len(raw) > limit:
        raise _too_large(limit)
    data = decompress(raw, encoding, limit)
    doc = load_json(data)
    escapes = b"\\u" in data
    if kind != "batch":
        check_values(doc, strings=escapes)
        return [parse_call(doc, kind, received_at=received_at, source=source)]
    calls = doc.get("batch")
    if not isinstance(calls, list):
        raise IntakeError("batch", "must be a JSON array of calls")
    check_values({k: v for k, v in doc.items() if k != "batch"}, strings=escapes)
    sent_at = parse_time(doc.get("sentAt"), "sentAt")
    context = doc.get("context")
    if context is not None and not isinstance(context, dict):
        raise IntakeError("context", "must be a JSON object")
    sized = len(data) > MAX_CALL_BYTES  # below that, no call can be larger than 32 KB
    rows = []
    for i, call in enumerate(calls):
        if sized and _call_size(call) > MAX_CALL_BYTES:
            raise IntakeError("call", f"larger than {MAX_CALL_BYTES // 1024} KB", i)
        check_values(call, strings=escapes, index=i)
        kind_i = call.get("type") if isinstance(call, dict) else None
        if kind_i not in TYPES:
            raise IntakeError("type", f"must be one of {', '.join(TYPES)}", i)
        rows.append(
            parse_call(
                call,
                kind_i,
                received_at=received_at,
                source=source,
                batch_sent_at=sent_at,
                batch_context=context,
                index=i,
            )
        )
    return rows


def error_body(exc: IntakeError) -> dict[str, Any]:
    """The JSON answer to a refused request: Segment's ``code``/``message`` (its libraries read
    them), and the field and batch index."""
    body: dict[str, Any] = {
        "error": str(exc),
        "code": "invalid_request",
        "message": str(exc),
        "field": exc.field,
    }
    if exc.index is not None:
        body["index"] = exc.index
    return body
