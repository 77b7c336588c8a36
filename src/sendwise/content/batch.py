"""Rendering many messages to files: a segment to a folder, and the demo's few examples."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING

import ibis

from sendwise.content.data import profile_table
from sendwise.content.message import RenderedEmail
from sendwise.content.mime import to_mime
from sendwise.content.render import DefaultLinks, Renderer
from sendwise.errors import NotFoundError
from sendwise.segments.rules import SEPARATOR
from sendwise.warehouse.content_queries import customer_emails

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.warehouse.connection import Warehouse


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


def write_message(
    renderer: Renderer, email: RenderedEmail, to: str | None, path: Path, fmt: str
) -> Path:
    """One message as ``path`` + .eml (MIME) or .html."""
    target = path.with_suffix(f".{fmt}")
    if fmt == "html":
        target.write_text(email.html, encoding="utf-8")
    else:
        sender = renderer.settings.content.shop.sender
        target.write_bytes(to_mime(email, to=to or "customer@customers.invalid", sender=sender))
    return target


def render_segment(renderer: Renderer, template: str, segment: str, out: Path, fmt: str) -> int:
    """Render ``template`` for every member of ``segment`` into ``out``; the number written."""
    ids = segment_members(renderer, segment)
    out.mkdir(parents=True, exist_ok=True)
    emails = _emails(renderer, ids)
    count = 0
    for cid, email in renderer.render_many(template, ids, links=DefaultLinks(renderer)):
        write_message(renderer, email, emails.get(cid), out / file_name(cid), fmt)
        count += 1
    return count


def _emails(renderer: Renderer, ids: list[str]) -> dict[str, str]:
    """Every member's address (in chunks: not only the first 10,000)."""
    return customer_emails(profile_table(renderer.wh), ids)  # type: ignore[arg-type]


def render_demo(
    settings: Settings, wh: Warehouse, *, template: str = "newsletter.html", n: int = 3
) -> list[tuple[str, Path, dict]]:
    """For ``sendwise demo``: render ``template`` as .eml and .html for ``n`` customers (one per
    offer variant where possible) into PROJECT/outbox-preview; (customer, .eml path, variants)."""
    renderer = Renderer(settings, wh)
    t = profile_table(wh)
    top = t.order_by(ibis.desc("monetary"), "customer_id").limit(200).customer_id.to_pyarrow()
    out = settings.path("outbox-preview")
    out.mkdir(parents=True, exist_ok=True)
    distinct: list[tuple[str, RenderedEmail]] = []
    others: list[tuple[str, RenderedEmail]] = []
    seen: set[tuple] = set()
    ids = top.to_pylist()
    for cid, email in renderer.render_many(template, ids, links=DefaultLinks(renderer)):
        key = tuple(sorted(email.slots.items()))
        (others if key in seen else distinct).append((cid, email))
        seen.add(key)
        if len(distinct) == n:
            break
    emails = _emails(renderer, ids)
    picked = []
    for cid, email in (distinct + others)[:n]:
        write_message(renderer, email, emails.get(cid), out / file_name(cid), "html")
        path = write_message(renderer, email, emails.get(cid), out / file_name(cid), "eml")
        picked.append((cid, path, dict(email.slots)))
    return picked
