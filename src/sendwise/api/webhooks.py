"""ESP event webhooks (SendGrid's signed event webhook)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from sendwise.errors import SignatureError
from sendwise.tracking import sendgrid

router = APIRouter()


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
    recorder = request.app.state.recorder
    await asyncio.gather(*(recorder.record(e) for e in sendgrid.to_events(body)))
    return PlainTextResponse("ok")
