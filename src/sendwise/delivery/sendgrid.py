"""SendGrid's v3 ``POST /v3/mail/send`` API over httpx.

202 means accepted; 429 (rate limited, with ``X-RateLimit-Reset``) and 5xx are transient; other
4xx refuse that one message (the ``errors`` list of the answer says why), except 401/403, which
mean the API key is wrong and stop the send. The key is sent only as the Authorization header
and never appears in an outcome, a log line or an error.
"""

from __future__ import annotations

import logging
import time
from email.utils import parseaddr
from typing import Any

import httpx

from sendwise.config import SendgridSettings
from sendwise.delivery.messenger import SENT, Outcome
from sendwise.delivery.mime import OutgoingMessage, clean_header
from sendwise.errors import ConfigError, DeliveryError

logger = logging.getLogger(__name__)


def _address(value: str) -> dict[str, str]:
    name, addr = parseaddr(value)
    return {"email": addr, "name": name} if name else {"email": addr}


def mail_send_body(message: OutgoingMessage) -> dict[str, Any]:
    """The v3 mail/send JSON for one message (documented request format)."""
    custom = {"message_key": message.key, "campaign_id": message.campaign_id}
    if message.variant:
        custom["variant"] = message.variant
    return {
        "personalizations": [{"to": [_address(message.to)]}],
        "from": _address(message.sender),
        "subject": clean_header(message.subject),
        "content": [
            {"type": "text/plain", "value": message.text},
            {"type": "text/html", "value": message.html},
        ],
        "headers": {
            k: clean_header(v) for k, v in {**message.list_headers(), **message.headers}.items()
        },
        "custom_args": custom,
    }


def _errors(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors", [])
        return "; ".join(
            e.get("message", "") + (f" ({e['field']})" if e.get("field") else "") for e in errors
        )
    except (ValueError, AttributeError):
        return response.text[:200]


class SendgridMessenger:
    name = "sendgrid"
    idempotent = False

    def __init__(self, settings: SendgridSettings) -> None:
        if settings.api_key is None or not settings.api_key.get_secret_value():
            raise ConfigError("delivery.sendgrid.api_key is not set")
        self.settings = settings
        self.concurrency = settings.concurrency
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> SendgridMessenger:
        key = self.settings.api_key.get_secret_value()  # type: ignore[union-attr]
        self._client = httpx.AsyncClient(
            base_url=self.settings.base_url,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30.0,
            limits=httpx.Limits(max_connections=self.concurrency),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def send(self, message: OutgoingMessage) -> Outcome:
        assert self._client is not None, "use the messenger as `async with`"
        try:
            response = await self._client.post("/v3/mail/send", json=mail_send_body(message))
        except httpx.HTTPError as exc:
            return Outcome("transient", f"SendGrid unreachable: {exc.__class__.__name__}")
        code = response.status_code
        if code in (200, 202):
            return SENT
        if code in (401, 403):
            raise DeliveryError(f"SendGrid refused the API key (HTTP {code}): {_errors(response)}")
        if code == 429:
            reset = response.headers.get("X-RateLimit-Reset")
            wait = max(0.0, float(reset) - time.time()) if reset else None
            return Outcome("transient", "SendGrid 429 rate limited", retry_after=wait)
        if code >= 500:
            return Outcome("transient", f"SendGrid {code}: {_errors(response)}")
        return Outcome("permanent", f"SendGrid {code}: {_errors(response)}")
