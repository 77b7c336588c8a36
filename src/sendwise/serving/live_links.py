"""Open-time content tokens as the service reads them (``/live/{token}/rec/{n}[.png]``).

Messages carry them through :mod:`sendwise.delivery.live_links` (signed at send time like the
tracking links); the service verifies them with the key ring (current key, then retired ones
not yet expired) and picks the product when the email is opened.
"""

from __future__ import annotations

from sendwise.content.live import MAX_SLOT
from sendwise.delivery.links import read_token
from sendwise.delivery.live_links import live_token, resolve
from sendwise.errors import TrackingError
from sendwise.keys import KeyRing

__all__ = ["check_slot", "live_token", "read_live_token", "resolve"]


def read_live_token(keys: KeyRing, token: str) -> tuple[str, str]:
    """(message_key, customer_id) of a live token; SignatureError when forged."""
    message_key, customer_id = read_token(keys, token, "live")
    if not customer_id:
        raise TrackingError("live link without a customer")
    return message_key, customer_id


def check_slot(n: int) -> int:
    if not 1 <= n <= MAX_SLOT:
        raise TrackingError(f"live slots are numbered 1 to {MAX_SLOT}")
    return n
