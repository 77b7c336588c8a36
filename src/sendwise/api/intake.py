"""Segment's HTTP Tracking API: ``POST /v1/track``, ``identify``, ``page``, ``screen``,
``group``, ``alias`` and ``batch`` (write keys, HTTP Basic as Segment's libraries send it).

Thin: read the body within its limit, parse it (sendwise.intake.body), hand the rows to the
group-commit writer, answer once they are committed. A refused request is a 400 whose JSON names
the field and, in a batch, the call's index; nothing of it is stored."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sendwise.api.auth import WriteKey
from sendwise.errors import IntakeError
from sendwise.intake.body import KINDS, error_body, limit_of, parse_request

router = APIRouter(prefix="/v1", tags=["intake"])

OK = {"success": True}
_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Stored (every call of the request), or already stored by messageId.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"success": {"type": "boolean"}},
                    "required": ["success"],
                }
            }
        },
    },
    400: {
        "description": "Malformed, or over 32 KB a call / 500 KB a batch; nothing stored.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "string"},
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "field": {"type": "string"},
                        "index": {"type": "integer"},
                    },
                    "required": ["error", "field"],
                }
            }
        },
    },
    401: {"description": "No write key, or an unknown or revoked one; nothing stored."},
    403: {"description": "A key without the write scope; nothing stored."},
    429: {"description": "Over the key's rate (see Retry-After); nothing stored."},
    503: {"description": "The store did not take the events; nothing acknowledged, send again."},
}
_CALL_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "additionalProperties": True},
            }
        },
    }
}


async def _body(request: Request, limit: int) -> bytes:
    """The raw body, refused as soon as it passes ``limit`` bytes (never read whole)."""
    size = request.headers.get("content-length", "")
    if size.isdigit() and int(size) > limit:
        raise IntakeError("body", f"larger than {limit // 1024} KB")
    chunks: list[bytes] = []
    read = 0
    async for chunk in request.stream():
        read += len(chunk)
        if read > limit:
            raise IntakeError("body", f"larger than {limit // 1024} KB")
        chunks.append(chunk)
    return b"".join(chunks)


def _endpoint(kind: str) -> Any:
    async def intake(request: Request, key: WriteKey) -> Any:
        try:
            raw = await _body(request, limit_of(kind))
            rows = parse_request(
                kind,
                raw,
                received_at=request.app.state.clock(),
                source=key.name,
                encoding=request.headers.get("content-encoding"),
            )
        except IntakeError as exc:
            return JSONResponse(error_body(exc), status_code=400)
        from sendwise.privacy.tombstones import drop_erased

        rows = drop_erased(request.app.state.settings, request.app.state.store, rows)
        if rows:
            await request.app.state.intake.write(rows)
        return OK

    intake.__name__ = f"intake_{kind}"
    intake.__doc__ = (
        f"Segment {kind} call{'s' if kind == 'batch' else ''}: stored before the answer;"
        " a messageId already stored is not stored again."
    )
    return intake


for _kind in KINDS:
    router.add_api_route(
        f"/{_kind}",
        _endpoint(_kind),
        methods=["POST"],
        responses=_ANSWERS,
        openapi_extra=_CALL_BODY,
        summary=f"Segment {_kind}",
    )
