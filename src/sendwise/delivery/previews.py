"""Messages written as files for people to read: ``sendwise render --out FILE``, a segment to a
folder, the demo's examples, and a campaign's message as it will be sent.

Each ``.eml`` is made by the builder the send pipeline uses (:func:`~.mime.compose`, then
:func:`~.mime.build_mime`), so what you read is what a messenger would be handed: a campaign's
message (:func:`campaign_eml`) byte for byte except its Date; a message outside a campaign
(:func:`preview_eml`) with the links it was rendered with (the unsigned preview links of
``content.unsubscribe_url``), no click tracking, From ``content.shop.sender`` and a Message-ID
made from the customer id. An ``.eml`` is addressed to the customer's own address: a customer
without one gets no ``.eml`` (an error for one customer, a count for a segment), never a made-up
address (docs/adr/0080-one-mime-builder.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import ibis

from sendwise.content.batch import file_name, segment_members
from sendwise.content.data import profile_table
from sendwise.content.message import RenderedEmail
from sendwise.content.render import DefaultLinks, Renderer
from sendwise.delivery.links import message_links
from sendwise.delivery.mime import DkimSigner, build_mime, compose
from sendwise.errors import InputError
from sendwise.warehouse.content_queries import customer_emails

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.warehouse.connection import Warehouse

FORMATS = ("eml", "html")


def preview_key(customer_id: str) -> str:
    """The message key of a preview outside any campaign (its Message-ID and MIME boundary)."""
    digest = hashlib.blake2b(b"preview\x1e" + customer_id.encode("utf-8", "surrogatepass"))
    return "preview-" + digest.hexdigest()[:24]


def preview_eml(
    renderer: Renderer, email: RenderedEmail, *, customer_id: str, to: str, links: Mapping[str, str]
) -> bytes:
    """``email`` (rendered with ``links``) as the .eml of a message outside any campaign."""
    message = compose(
        email,
        key=preview_key(customer_id),
        to=to,
        sender=renderer.settings.content.shop.sender,
        links=links,
        customer_id=customer_id,
    )
    return build_mime(message)


def campaign_eml(
    settings: Settings,
    email: RenderedEmail,
    *,
    key: str,
    to: str,
    sender: str,
    links: Mapping[str, str],
    campaign_id: str,
    variant: str,
    customer_id: str,
    signing_key: bytes,
) -> bytes:
    """The bytes the send pipeline hands a messenger for this message of a campaign (rendered
    with ``links`` = :func:`campaign_links`), DKIM-signed when ``delivery.dkim`` is set."""
    opts = settings.delivery
    message = compose(
        email,
        key=key,
        to=to,
        sender=sender,
        links=links,
        tracking=(opts.base_url, signing_key) if opts.track else None,
        campaign_id=campaign_id,
        variant=variant,
        customer_id=customer_id,
    )
    signer = DkimSigner.from_settings(opts.dkim, settings.project) if opts.dkim else None
    return build_mime(message, signer)


def campaign_links(settings: Settings, signing_key: bytes, key: str) -> Mapping[str, str]:
    """The signed links the pipeline renders the message ``key`` with."""
    return message_links(settings.delivery.base_url, signing_key, key)


def address(email: str | None) -> str | None:
    """An address to write a message to, or None for a missing or blank one."""
    return email.strip() if isinstance(email, str) and email.strip() else None


def write_one(
    renderer: Renderer, email: RenderedEmail, customer_id: str, out: Path, to: str | None
) -> Path:
    """One customer's message as ``out`` (.html, or .eml addressed to ``to``)."""
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InputError(f"{out}: write a message as .html or .eml")
    if fmt == "eml" and address(to) is None:
        raise InputError(
            f"customer {customer_id} has no email address: an .eml needs one (write .html)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "html":
        out.write_text(email.html, encoding="utf-8")
    else:
        links = renderer.default_links(customer_id)
        out.write_bytes(
            preview_eml(renderer, email, customer_id=customer_id, to=str(to), links=links)
        )
    return out


def email_of(renderer: Renderer, customer_ids: list[str]) -> dict[str, str]:
    """Every customer's usable address (in chunks: any number of ids); those without one are
    left out."""
    found = customer_emails(profile_table(renderer.wh), customer_ids)  # type: ignore[arg-type]
    return {cid: a for cid, e in found.items() if (a := address(e)) is not None}


@dataclass
class SegmentFiles:
    written: int = 0
    no_address: list[str] = field(default_factory=list)
    """Members with no email address: no .eml written for them."""


def render_segment(
    renderer: Renderer, template: str, segment: str, out: Path, fmt: str
) -> SegmentFiles:
    """Render ``template`` for every member of ``segment`` into ``out`` (one file each, named by
    :func:`~sendwise.content.batch.file_name`); as .eml, members without an address are
    counted in ``no_address`` and skipped."""
    if fmt not in FORMATS:
        raise InputError("--format is eml or html")
    ids = segment_members(renderer, segment)
    out.mkdir(parents=True, exist_ok=True)
    emails = email_of(renderer, ids) if fmt == "eml" else {}
    result = SegmentFiles()
    todo = [cid for cid in ids if fmt == "html" or cid in emails]
    result.no_address = [cid for cid in ids if fmt == "eml" and cid not in emails]
    links = DefaultLinks(renderer)
    for cid, email in renderer.render_many(template, todo, links=links):
        path = out / f"{file_name(cid)}.{fmt}"
        if fmt == "html":
            path.write_text(email.html, encoding="utf-8")
        else:
            raw = preview_eml(renderer, email, customer_id=cid, to=emails[cid], links=links[cid])
            path.write_bytes(raw)
        result.written += 1
    return result


def render_demo(
    settings: Settings, wh: Warehouse, *, template: str = "newsletter.html", n: int = 3
) -> list[tuple[str, Path, dict]]:
    """For ``sendwise demo``: render ``template`` as .eml and .html for ``n`` customers with an
    address (one per offer variant where possible) into PROJECT/outbox-preview; (customer,
    .eml path, variants)."""
    renderer = Renderer(settings, wh)
    t = profile_table(wh)
    top = t.order_by(ibis.desc("monetary"), "customer_id").limit(200).customer_id.to_pyarrow()
    out = settings.path("outbox-preview")
    out.mkdir(parents=True, exist_ok=True)
    emails = email_of(renderer, top.to_pylist())
    ids = [cid for cid in top.to_pylist() if cid in emails]
    distinct: list[tuple[str, RenderedEmail]] = []
    others: list[tuple[str, RenderedEmail]] = []
    seen: set[tuple] = set()
    for cid, email in renderer.render_many(template, ids, links=DefaultLinks(renderer)):
        key = tuple(sorted(email.slots.items()))
        (others if key in seen else distinct).append((cid, email))
        seen.add(key)
        if len(distinct) == n:
            break
    picked = []
    for cid, email in (distinct + others)[:n]:
        write_one(renderer, email, cid, out / f"{file_name(cid)}.html", None)
        path = write_one(renderer, email, cid, out / f"{file_name(cid)}.eml", emails[cid])
        picked.append((cid, path, dict(email.slots)))
    return picked
