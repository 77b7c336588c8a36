"""Signed per-message links (unsubscribe, preferences; later tracking).

A token is ``base64url(payload) "." base64url(HMAC-SHA256(key, payload)[:16])``; the tracking
service (issue 8) verifies it with :func:`verify`, so a link cannot be forged or altered.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from sendwise.errors import InputError, SignatureError, TrackingError

if TYPE_CHECKING:
    from sendwise.keys import KeyRing

LINK_KINDS = ("unsubscribe", "preferences")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _b64(data: bytes) -> str:
    """base64url without padding (``base64.urlsafe_b64encode`` in one C call and a translate)."""
    return binascii.b2a_base64(data, newline=False).translate(_URLSAFE).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    """An HMAC-SHA256 already keyed with ``key``: a message then costs a copy of it rather than
    a new HMAC set-up (1.6 instead of 2.3 us; a message carries about 14 signed links)."""
    return hmac.new(key, digestmod=hashlib.sha256)


def _mac(key: bytes, raw: bytes) -> bytes:
    """HMAC-SHA256(key, raw)."""
    mac = _keyed(key).copy()
    mac.update(raw)
    return mac.digest()


def sign(key: bytes, payload: str) -> str:
    """A token carrying ``payload`` that only the holder of ``key`` can make."""
    raw = payload.encode("utf-8")
    return f"{_b64(raw)}.{_b64(_mac(key, raw)[:16])}"


def verify(key: bytes, token: str) -> str:
    """The payload of a token made by :func:`sign` with ``key``; InputError when forged."""
    return verify_any((key,), token)


def verify_any(keys: Iterable[bytes], token: str) -> str:
    """The payload of a token made by :func:`sign` with one of ``keys`` (tried in order: the
    current key first, then retired ones, see :class:`sendwise.keys.KeyRing`); InputError when
    none made it."""
    try:
        body, mac = token.split(".", 1)
        raw = _unb64(body)
        tag = _unb64(mac)
    except (ValueError, TypeError):
        raise InputError("invalid or altered link") from None
    if len(tag) == 16:
        for key in keys:
            if hmac.compare_digest(tag, _mac(key, raw)[:16]):
                try:
                    return raw.decode("utf-8")
                except UnicodeDecodeError:
                    break
    raise InputError("invalid or altered link")


def message_links(base_url: str, key: bytes, message_key: str) -> Mapping[str, str]:
    """The links the renderer puts in one message: ``unsubscribe`` (RFC 8058 one-click target,
    also in the List-Unsubscribe header) and ``preferences``."""
    root = base_url.rstrip("/")
    return {kind: f"{root}/{kind}/{sign(key, f'{kind}:{message_key}')}" for kind in LINK_KINDS}


def read_token(keys: KeyRing, token: str, kind: str) -> tuple[str, str]:
    """(message_key, rest) of a token of ``kind`` signed with the current key or a retired one
    not yet expired; SignatureError when forged or altered, TrackingError when it is a genuine
    token of another kind."""
    try:
        payload = verify_any(keys.verifying(), token)
    except Exception:
        raise SignatureError("invalid or altered link") from None
    found, _, rest = payload.partition(":")
    if found != kind:
        raise TrackingError(f"not a {kind} link")
    message_key, _, extra = rest.partition(":")
    if not message_key:
        raise TrackingError("link without a message")
    return message_key, extra
