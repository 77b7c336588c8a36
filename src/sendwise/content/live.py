"""Template helpers for open-time content (live slots).

``<a href="{{ live_rec_link(1) }}"><img src="{{ live_rec_image(1) }}" alt=""></a>`` places the
customer's first recommendation as computed when the email is opened. The helpers print
placeholders; :func:`sendwise.serving.live_links.resolve` signs them into service URLs when the
message is sent (see docs/serving.md). Outside a send they stay placeholders, harmless text.
"""

from __future__ import annotations

from sendwise.content.errors import TemplateError

PLACEHOLDER = "sendwise-live:rec/"
MAX_SLOT = 50


def _slot(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SLOT:
        raise TemplateError(f"a live slot is a number from 1 to {MAX_SLOT}, not {n!r}")
    return n


def live_rec_link(n: int) -> str:
    """The click link of live slot ``n`` (leads to the product its image showed)."""
    return f"{PLACEHOLDER}{_slot(n)}"


def live_rec_image(n: int) -> str:
    """The image of live slot ``n`` (the n-th recommendation when the email is opened)."""
    return f"{PLACEHOLDER}{_slot(n)}.png"
