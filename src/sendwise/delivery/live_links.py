"""Live-slot links in a message being sent: the placeholders of the template helpers
``live_rec_image(n)`` / ``live_rec_link(n)`` (:mod:`sendwise.content.live`) turned into
``{base_url}/live/{token}/rec/{n}.png`` and ``.../rec/{n}``, the token signed with the project's
key like the tracking links: ``sign(key, "live:<message_key>:<customer_id>")``. The service
(``sendwise.serving.live_links``, ``/live/...`` routes) verifies it and picks the product when
the email is opened (docs/serving.md)."""

from __future__ import annotations

import html
import re

from sendwise.content.live import MAX_SLOT, PLACEHOLDER
from sendwise.delivery.links import sign

_PLACE = re.compile(re.escape(PLACEHOLDER) + r"(\d{1,3})(\.png)?")


def live_token(key: bytes, message_key: str, customer_id: str) -> str:
    return sign(key, f"live:{message_key}:{customer_id}")


def resolve(body: str, base_url: str, key: bytes, message_key: str, customer_id: str) -> str:
    """``body`` with every live-slot placeholder replaced by its signed service URL."""
    if PLACEHOLDER not in body:
        return body
    root = html.escape(f"{base_url.rstrip('/')}/live/{live_token(key, message_key, customer_id)}")

    def url(m: re.Match[str]) -> str:
        if not 1 <= int(m.group(1)) <= MAX_SLOT:
            return m.group(0)
        return f"{root}/rec/{int(m.group(1))}{m.group(2) or ''}"

    return _PLACE.sub(url, body)
