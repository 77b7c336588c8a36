"""ESP event webhooks (SendGrid's signed event webhook).

A body that is not a JSON list of events is refused (400). Inside a good body, each event is
validated on its own: the usable ones are recorded, each unusable one (``timestamp:
"yesterday"``, an object where text belongs, ...) is kept in the quarantine with its index and
field, and the answer (200) names them. A 200 means every event is either stored or
quarantined; SendGrid would retry a refused batch for a day without it ever getting better
(docs/adr/0056-tracking-quarantine.md)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from sendwise.errors import SignatureError
from sendwise.tracking import sendgrid

router = APIRouter()
SHOWN = 5
"""Refused events named in the answer (all are in the quarantine)."""


@router.post("/webhooks/sendgrid")
async def sendgrid_events(request: Request) -> PlainTextResponse:
    settings = request.app.state.settings.tracking
    if not settings.sendgrid_public_key:
        raise SignatureError("no tracking.sendgrid_public_key configured: webhook refused")
    key = sendgrid.load_public_key(settings.sendgrid_public_key)
    body = await request.body()
    sendgrid.verify_signature(
        key,
        body,
        request.headers.get(sendgrid.SIGNATURE_HEADER),
        request.headers.get(sendgrid.TIMESTAMP_HEADER),
        max_age=settings.webhook_max_age_seconds,
    )
    parsed = sendgrid.parse_events(body)
    recorder = request.app.state.recorder
    await recorder.reject(parsed.rejected)
    await asyncio.gather(*(recorder.record(e) for e in parsed.events))
    if not parsed.rejected:
        return PlainTextResponse("ok")
    named = "; ".join(reason for _, reason in parsed.rejected[:SHOWN])
    more = len(parsed.rejected) - SHOWN
    return PlainTextResponse(
        f"ok: {len(parsed.events)} recorded, {len(parsed.rejected)} quarantined ({named}"
        + (f"; {more} more" if more > 0 else "")
        + ")"
    )
