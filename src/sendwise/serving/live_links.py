"""Open-time content links: ``/live/{token}/rec/{n}.png`` and ``/live/{token}/rec/{n}``.

A template places a live slot with the helpers ``live_rec_image(n)`` and ``live_rec_link(n)``
(sandbox globals, :mod:`sendwise.content.live`), which print placeholders; when a message is
sent (or rendered through the API) :func:`resolve` turns them into service URLs whose token is
signed with the project's key ring exactly like the tracking links:
``sign(key, "live:<message_key>:<customer_id>")``. The service decides the product when the
image is fetched (the email is opened) and remembers it per (message, slot), so that the click
leads to the same product.
"""

from __future__ import annotations

import html
import re

from sendwise.content.live import PLACEHOLDER
from sendwise.delivery.links import sign
from sendwise.errors import TrackingError
from sendwise.keys import KeyRing
from sendwise.tracking.events import read_token

_PLACE = re.compile(re.escape(PLACEHOLDER) + r"(\d{1,3})(\.png)?")
MAX_SLOT = 50


def live_token(key: bytes, message_key: str, customer_id: str) -> str:
    return sign(key, f"live:{message_key}:{customer_id}")


def resolve(body: str, base_url: str, key: bytes, message_key: str, customer_id: str) -> str:
    """``body`` with every live-slot placeholder replaced by its signed service URL."""
    if PLACEHOLDER not in body:
        return body
    root = html.escape(f"{base_url.rstrip('/')}/live/{live_token(key, message_key, customer_id)}")
    return _PLACE.sub(lambda m: f"{root}/rec/{m.group(1)}{m.group(2) or ''}", body)


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
