"""Helpers for the campaign and delivery tests: a small real renderer implementing the content
contract, and a campaign planned straight into a store (no warehouse needed)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

import pandas as pd
from sqlalchemy import func, select

from sendwise.campaigns.definition import parse_definition
from sendwise.campaigns.planning import Exclusions, plan
from sendwise.campaigns.service import record_plan
from sendwise.config import CampaignSettings
from sendwise.content.message import RenderedEmail
from sendwise.errors import NotFoundError
from sendwise.store import Store
from sendwise.store.schema import campaign as campaign_table
from sendwise.store.schema import email_event, message


class GreetingRenderer:
    """Formats a few strings from the customer's row; templates 'a' and 'b' differ in subject.
    Raises for customers listed in ``broken`` (to test that one bad render stays isolated)."""

    def __init__(self, names: Mapping[str, str] | None = None, broken: set[str] | None = None):
        self.names = names or {}
        self.broken = broken or set()

    def render(self, template: str, customer_id: str, *, links: Mapping[str, str]) -> RenderedEmail:
        if template not in ("a", "b"):
            raise NotFoundError("template", template, "known templates: a, b")
        if customer_id in self.broken:
            raise ValueError(f"no data for {customer_id}")
        name = self.names.get(customer_id, f"customer {customer_id}")
        subject = {"a": f"Hello {name}", "b": f"{name}, a gift for you"}[template]
        return RenderedEmail(
            subject=subject,
            preheader="",
            html=f'<p>{subject}</p><a href="{links["unsubscribe"]}">unsubscribe</a>',
            text=f"{subject}\nUnsubscribe: {links['unsubscribe']}\n",
            template=template,
        )

    def render_many(
        self, template: str, customer_ids: Iterable[str], *, links: Mapping[str, Mapping[str, str]]
    ) -> Iterator[tuple[str, RenderedEmail]]:
        for cid in customer_ids:
            yield cid, self.render(template, cid, links=links[cid])


TWO_VARIANTS = {
    "name": "Crash test",
    "audience": {"rule": "true"},
    "holdout": 10,
    "variants": [
        {"name": "A", "template": "a", "share": 45},
        {"name": "B", "template": "b", "share": 45},
    ],
}


def seed_campaign(
    store: Store,
    customers: int,
    *,
    definition: dict | None = None,
    now: datetime = datetime(2024, 6, 1, 10),
    email: str = "c{}@example.com",
) -> str:
    """A campaign with ``customers`` consenting customers, planned into ``store``."""
    defn = parse_definition(definition or TWO_VARIANTS)
    ids = [f"{i:06d}" for i in range(customers)]
    audience = pd.DataFrame({"customer_id": ids, "email": [email.format(i) for i in ids]})
    ex = Exclusions(
        consent=pd.Series("granted", index=ids),
        suppressed=pd.Series(dtype=str),
        recent_sends=pd.Series(dtype="int64"),
    )
    planned = plan(defn, audience, ex, CampaignSettings(quiet_start=None), now)
    with store.begin() as conn:
        conn.execute(
            campaign_table.insert(),
            dict(
                campaign_id=defn.campaign_id,
                name=defn.name,
                definition=defn.model_dump(mode="json"),
                status="created",
                created_at=now,
            ),
        )
    assert record_plan(store, defn.campaign_id, planned, now)
    return defn.campaign_id


def status_counts(store: Store, campaign_id: str) -> Counter:
    """Messages of the campaign by status, counted in the store."""
    with store.begin() as conn:
        rows = conn.execute(
            select(message.c.status, func.count())
            .where(message.c.campaign_id == campaign_id)
            .group_by(message.c.status)
        ).all()
    return Counter(dict(rows))


def event_counts(store: Store) -> Counter:
    """Email events in the store by type."""
    with store.begin() as conn:
        rows = conn.execute(select(email_event.c.type, func.count()).group_by(email_event.c.type))
        return Counter(dict(rows.all()))
