"""Open pixel and click-tracked links in a rendered message.

A click URL carries a token signed like the unsubscribe link (see :mod:`sendwise.delivery.links`)
whose payload is ``click:<message_key>:<original url>``: the tracking service redirects only to
the URL inside a token it can verify, so a click link can neither be forged nor turned into an
open redirect to a host that was not in the message.

Rewriting uses one compiled regular expression per message (no HTML parser): it is on the send
path, where every microsecond counts (docs/adr/0040-tracking-service.md).
"""

from __future__ import annotations

import functools
import html
import re

from sendwise.delivery.links import sign

# href="..." or href='...' inside an <a ...> tag; the value is HTML-escaped text
_A_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
TRACKED_SCHEMES = ("http://", "https://")


def open_url(root: str, key: bytes, message_key: str) -> str:
    return f"{root}/o/{sign(key, f'open:{message_key}')}.gif"


def click_url(root: str, key: bytes, message_key: str, url: str) -> str:
    return f"{root}/c/{sign(key, f'click:{message_key}:{url}')}"


@functools.lru_cache(maxsize=4096)
def _tracked_url(value: str, own: str) -> str | None:
    """The URL an href holds (HTML-unescaped) when its clicks are tracked, else None. Cached:
    the same few shop and product URLs come back in every message."""
    url = html.unescape(value).strip()
    if not url.lower().startswith(TRACKED_SCHEMES) or url.startswith(own):
        return None
    return url


def track_html(body: str, base_url: str, key: bytes, message_key: str) -> str:
    """``body`` with each http(s) link (except the unsubscribe and preference links, which
    already go to the service) replaced by a signed click URL, and a 1x1 open pixel appended."""
    root = base_url.rstrip("/")
    own = root + "/"
    # A token is base64url and ".", nothing to escape: only the root is, once per message.
    click_root = html.escape(f"{root}/c/", quote=True)
    click_prefix = f"click:{message_key}:"

    def rewrite(match: re.Match[str]) -> str:
        url = _tracked_url(match.group(3), own)
        if url is None:
            return match.group(0)
        start, quote = match.group(1, 2)
        return f"{start}{quote}{click_root}{sign(key, click_prefix + url)}{quote}"

    tracked = _A_HREF.sub(rewrite, body)
    pixel = (
        f'<img src="{html.escape(open_url(root, key, message_key))}" width="1" height="1" '
        'alt="" style="display:block;border:0;width:1px;height:1px">'
    )
    ends = list(_BODY_END.finditer(tracked))
    if ends:
        at = ends[-1].start()
        return tracked[:at] + pixel + tracked[at:]
    return tracked + pixel
