"""One message of a campaign as it will be sent: ``sendwise render --campaign NAME --customer
ID --out FILE.eml``.

The message is the campaign's plan row for the customer (the stored plan once the campaign is
planned, else the plan a send would record now): its key, address, variant and template. It is
rendered with the signed links of its key and built by the send pipeline's own builder
(:mod:`sendwise.delivery.previews`), so the file is byte for byte what the messenger is handed,
except the Date header (and, with DKIM, the signature that covers the Date).
"""

from __future__ import annotations

from dataclasses import dataclass

from sendwise.campaigns.service import compute_plan, load_campaign
from sendwise.config import Settings
from sendwise.content.message import EmailRenderer
from sendwise.delivery.previews import address, campaign_eml, campaign_links
from sendwise.errors import InputError, NotFoundError
from sendwise.keys import signing_key
from sendwise.store.claims import utcnow
from sendwise.store.repositories import Repositories
from sendwise.warehouse.connection import Warehouse


@dataclass(frozen=True)
class CampaignMessage:
    campaign_id: str
    message_key: str
    to: str
    variant: str
    template: str
    data: bytes
    """The .eml bytes."""


def campaign_message(
    store: Repositories,
    wh: Warehouse,
    settings: Settings,
    name: str,
    customer_id: str,
    renderer: EmailRenderer,
) -> CampaignMessage:
    """The message campaign ``name`` sends (or sent) ``customer_id``; an error when the
    customer gets none (not in the audience, held out, skipped, no address)."""
    cid, status, defn = load_campaign(store, name)
    planned = (
        compute_plan(store, wh, settings, defn, utcnow())
        if status == "created"
        else store.messages.plan_frame(cid)
    )
    rows = planned[planned["customer_id"] == customer_id]
    if rows.empty:
        raise NotFoundError("customer", customer_id, f"not in the audience of campaign {name!r}")
    row = rows.iloc[0]
    if row["status"] in ("skipped", "holdout"):
        why = row["reason"] if isinstance(row["reason"], str) and row["reason"] else row["status"]
        raise InputError(f"campaign {name!r} sends customer {customer_id} nothing: {why}")
    if row["status"] == "waiting":  # adaptive allocation: a later wave (campaigns/waves.py)
        raise InputError(
            f"customer {customer_id} is in {row['variant']} of campaign {name!r}, whose variant "
            "is chosen when the wave is due"
        )
    to = address(row["email"])
    if to is None:
        raise InputError(f"customer {customer_id} has no email address")
    key = signing_key(settings.delivery)  # ConfigError when missing, short or public
    links = campaign_links(settings, key, row["message_key"])
    template = str(row["template"] or "")
    rendered = dict(renderer.render_many(template, [customer_id], links={customer_id: links}))
    if customer_id not in rendered:
        raise NotFoundError("customer", customer_id, "no profile: build profiles first")
    data = campaign_eml(
        settings,
        rendered[customer_id],
        key=row["message_key"],
        to=row["email"],
        sender=defn.sender or settings.delivery.sender,
        links=links,
        campaign_id=cid,
        variant=str(row["variant"]),
        customer_id=customer_id,
        signing_key=key,
    )
    return CampaignMessage(cid, row["message_key"], to, str(row["variant"]), template, data)
