"""Standard Webhooks symmetric signatures (``v1``: HMAC-SHA256).

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the signature header is
``v1,`` and the base64 of the HMAC, keyed with the subscription's secret: ``whsec_`` and the
base64 of 32 random bytes (the specification asks for 24 to 64). The secret is stored in the
store so that it can sign: it is a secret at rest there, like the SMTP password in the project's
secrets file. :func:`verify` is what a receiver does; tests check both against the official
``standardwebhooks`` package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping

from sendwise.errors import InputError

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
TOLERANCE_SECONDS = 300
"""A receiver refuses a timestamp further than this from its clock (replays)."""
USER_AGENT = "sendwise-webhooks/1"


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret."""
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise InputError("a webhook secret must be whsec_ followed by base64") from None
    if not 24 <= len(key) <= 64:
        raise InputError("a webhook secret must hold 24 to 64 bytes")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: str | bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256>``."""
    payload = body.encode() if isinstance(body, str) else body
    content = f"{message_id}.{timestamp}.".encode() + payload
    mac = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def headers(secret: str, message_id: str, timestamp: int, body: str | bytes) -> dict[str, str]:
    """Every header of one attempt."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def verify(
    secret: str,
    received: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """Whether ``body`` with these headers was signed with ``secret`` within ``tolerance``
    seconds of ``now`` (Unix time): every ``v1`` signature of the space-separated list is
    compared in constant time."""
    lower = {k.lower(): v for k, v in received.items()}
    names = ("webhook-id", "webhook-timestamp", "webhook-signature")
    mid, stamp, sigs = (lower.get(h) for h in names)
    if not (mid and stamp and sigs) or not stamp.isdigit():
        return False
    if abs(now - int(stamp)) > tolerance:
        return False
    expected = sign(secret, mid, int(stamp), body).encode()
    return any(hmac.compare_digest(expected, s.encode()) for s in sigs.split(" "))
