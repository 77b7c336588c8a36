"""Rendering many messages to files: a segment to a folder, and the demo's few examples."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import ibis

from sendwise.content.data import profile_table
from sendwise.content.errors import TemplateError
from sendwise.content.message import RenderedEmail
from sendwise.content.mime import to_mime
from sendwise.content.render import DefaultLinks, Renderer
from sendwise.errors import NotFoundError
from sendwise.segments.rules import SEPARATOR

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.warehouse.connection import Warehouse


def _warehouse(renderer: Renderer) -> Warehouse:
    if renderer.wh is None:
        raise TemplateError("rendering real customers needs the warehouse")
    return renderer.wh


def segment_members(renderer: Renderer, segment: str) -> list[str]:
    """Customer ids of a rule segment or an RFM segment, by its name."""
    t = profile_table(_warehouse(renderer))
    in_rules = t.segments.fill_null("").split(SEPARATOR).contains(segment)
    members = t.filter(in_rules | (t.rfm_segment == segment)).order_by("customer_id")
    ids = members.customer_id.to_pyarrow().to_pylist()
    if not ids:
        known = t.select(name=t.rfm_segment).distinct().name.to_pyarrow().to_pylist()
        hint = "segments: " + ", ".join(sorted(str(k) for k in known if k))
        raise NotFoundError("segment", segment, f"or it has no customers; RFM {hint}")
    return ids


def file_name(customer_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", customer_id) or "customer"


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
    t = profile_table(_warehouse(renderer))
    rows = t.filter(t.customer_id.isin(ids[:10_000]) & t.email.notnull())
    data = rows.select("customer_id", "email").to_pyarrow().to_pylist()
    return {r["customer_id"]: r["email"] for r in data}


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
