"""Signed per-message links (unsubscribe, preferences; later tracking).

A token is ``base64url(payload) "." base64url(HMAC-SHA256(key, payload)[:16])``; the tracking
service (issue 8) verifies it with :func:`verify`, so a link cannot be forged or altered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from sendwise.errors import InputError

LINK_KINDS = ("unsubscribe", "preferences")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, payload: str) -> str:
    """A token carrying ``payload`` that only the holder of ``key`` can make."""
    raw = payload.encode("utf-8")
    mac = hmac.new(key, raw, hashlib.sha256).digest()[:16]
    return f"{_b64(raw)}.{_b64(mac)}"


def verify(key: bytes, token: str) -> str:
    """The payload of a token made by :func:`sign` with ``key``; InputError when forged."""
    try:
        body, mac = token.split(".", 1)
        raw = _unb64(body)
        good = hmac.compare_digest(_unb64(mac), hmac.new(key, raw, hashlib.sha256).digest()[:16])
    except (ValueError, TypeError):
        good = False
    if not good:
        raise InputError("invalid or altered link")
    return raw.decode("utf-8")


def message_links(base_url: str, key: bytes, message_key: str) -> Mapping[str, str]:
    """The links the renderer puts in one message: ``unsubscribe`` (RFC 8058 one-click target,
    also in the List-Unsubscribe header) and ``preferences``."""
    root = base_url.rstrip("/")
    return {kind: f"{root}/{kind}/{sign(key, f'{kind}:{message_key}')}" for kind in LINK_KINDS}
