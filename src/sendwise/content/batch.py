"""Which customers a segment render covers, and the file each one's message is written to.

The files themselves are written by :mod:`sendwise.delivery.previews`, with the MIME builder
that sends (content sits below delivery in the layers)."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from sendwise.content.data import profile_table
from sendwise.errors import NotFoundError
from sendwise.segments.rules import SEPARATOR

if TYPE_CHECKING:
    from sendwise.content.render import Renderer


def segment_members(renderer: Renderer, segment: str) -> list[str]:
    """Customer ids of a rule segment or an RFM segment, by its name."""
    t = profile_table(renderer.wh)  # type: ignore[arg-type]
    in_rules = t.segments.fill_null("").split(SEPARATOR).contains(segment)
    members = t.filter(in_rules | (t.rfm_segment == segment)).order_by("customer_id")
    ids = members.customer_id.to_pyarrow().to_pylist()
    if not ids:
        known = t.select(name=t.rfm_segment).distinct().name.to_pyarrow().to_pylist()
        hint = "segments: " + ", ".join(sorted(str(k) for k in known if k))
        raise NotFoundError("segment", segment, f"or it has no customers; RFM {hint}")
    return ids


PLAIN = re.compile(r"[A-Z0-9_-]{1,80}")


def file_name(customer_id: str) -> str:
    """A file name (without suffix) for the customer's message, distinct for distinct ids even
    on a case-insensitive file system, and never a path: an id of capitals, digits, ``_`` and
    ``-`` is its own name; any other id is its safe characters (at most 80) followed by ``~``
    and 16 hex digits of a hash of the exact id (``jane@x.com`` and ``jane@x.org`` differ)."""
    if PLAIN.fullmatch(customer_id):
        return customer_id
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", customer_id)[:80]
    digest = hashlib.blake2b(customer_id.encode("utf-8", "surrogatepass"), digest_size=8)
    return f"{readable}~{digest.hexdigest()}"
