"""Campaign use cases over the store and the warehouse: create, preview, plan, send, status."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, insert, select, update

from sendwise.campaigns.audience import any_customer, audience_frame, condition, profiles
from sendwise.campaigns.definition import CampaignDefinition, parse_definition
from sendwise.campaigns.planning import Exclusions, plan
from sendwise.campaigns.workers import send_in_workers, worker_count
from sendwise.config import Settings
from sendwise.content.message import EmailRenderer
from sendwise.delivery.messenger import Messenger
from sendwise.delivery.pipeline import DeliveryReport, deliver
from sendwise.errors import CampaignError, NotFoundError, SendwiseError
from sendwise.store.connection import Store
from sendwise.store.records import add_events, consent_in_force, import_consent, suppressed, utcnow
from sendwise.store.schema import campaign as campaign_table
from sendwise.store.schema import email_event
from sendwise.store.schema import message as message_table
from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)


def _check_templates(defn: CampaignDefinition, renderer: EmailRenderer, sample: str | None) -> None:
    """Render each variant's template once, so an unknown or broken template is refused before
    anything is recorded or sent."""
    if sample is None:
        return
    links = {"unsubscribe": "https://example.invalid/u", "preferences": "https://example.invalid/p"}
    for v in defn.variants:
        try:
            renderer.render(v.template or "", sample, links=links)
        except (SendwiseError, LookupError, OSError) as exc:
            raise CampaignError(
                f"variant {v.name}: template {v.template!r} cannot be used: {exc}"
            ) from None


def create_campaign(
    store: Store,
    wh: Warehouse,
    settings: Settings,
    defn: CampaignDefinition,
    renderer: EmailRenderer,
) -> str:
    """Validate ``defn`` against the profiles and templates and store it; returns its id.
    A campaign not yet planned can be created again (its definition is replaced)."""
    condition(profiles(wh), settings, defn.audience)  # unknown field or segment -> error
    _check_templates(defn, renderer, any_customer(wh))
    cid = defn.campaign_id
    row = dict(
        campaign_id=cid,
        name=defn.name,
        definition=defn.model_dump(mode="json"),
        status="created",
        created_at=utcnow(),
    )
    with store.begin() as conn:
        existing = conn.execute(
            select(campaign_table.c.status).where(campaign_table.c.campaign_id == cid)
        ).scalar()
        if existing is not None and existing != "created":
            raise CampaignError(f"campaign {defn.name!r} is already {existing}; use a new name")
        if existing is not None:
            conn.execute(campaign_table.delete().where(campaign_table.c.campaign_id == cid))
        conn.execute(insert(campaign_table), row)
    logger.info("campaign %s created", cid)
    return cid


def load_campaign(store: Store, name: str) -> tuple[str, str, CampaignDefinition]:
    """(campaign_id, status, definition) of a stored campaign, by name or id."""
    c = campaign_table.c
    with store.begin() as conn:
        row = conn.execute(
            select(c.campaign_id, c.status, c.definition).where(
                (c.name == name) | (c.campaign_id == name)
            )
        ).first()
    if row is None:
        raise NotFoundError("campaign", name, "create it with `sendwise campaign create FILE`")
    return row.campaign_id, row.status, parse_definition(row.definition, name)


def exclusions(store: Store, wh: Warehouse | None, cap_days: int, now: datetime) -> Exclusions:
    """Consent (the warehouse's changes imported first), suppressions and recent sends."""
    if wh is not None and "consent" in wh.con.list_tables():
        import_consent(store, wh.table("consent").to_pandas())
    supp = suppressed(store)
    e = email_event.c
    since = now - timedelta(days=cap_days)
    query = (
        select(e.customer_id, func.count())
        .where(e.type == "send", e.occurred_at >= since)
        .group_by(e.customer_id)
    )
    with store.begin() as conn:
        recent: dict[str, Any] = dict(conn.execute(query).all())
    return Exclusions(
        consent=consent_in_force(store),
        suppressed=supp.set_index("email")["reason"],
        recent_sends=pd.Series(recent, dtype="int64"),
    )


def compute_plan(
    store: Store, wh: Warehouse, settings: Settings, defn: CampaignDefinition, now: datetime
) -> pd.DataFrame:
    audience = audience_frame(wh, settings, defn.audience)
    ex = exclusions(store, wh, settings.campaigns.cap_days, now)
    return plan(defn, audience, ex, settings.campaigns, now)


def record_plan(store: Store, campaign_id: str, planned: pd.DataFrame, now: datetime) -> bool:
    """Write the plan (every message row, and a ``skipped`` event per excluded customer) in one
    transaction; False when another run planned the campaign first."""
    rows = planned.astype(object).where(planned.notna(), None).to_dict("records")
    for r in rows:
        r["campaign_id"], r["attempts"], r["updated_at"] = campaign_id, 0, now
        if r["scheduled_at"] is not None:
            r["scheduled_at"] = pd.Timestamp(r["scheduled_at"]).to_pydatetime()
    skipped = [
        dict(
            event_id=f"{r['message_key']}:skipped",
            customer_id=r["customer_id"],
            email=r["email"],
            message_id=r["message_key"],
            campaign_id=campaign_id,
            variant=r["variant"],
            type="skipped",
            occurred_at=now,
            reason=r["reason"],
        )
        for r in rows
        if r["status"] == "skipped"
    ]
    c = campaign_table.c
    with store.begin() as conn:
        claimed = conn.execute(
            update(campaign_table)
            .where(c.campaign_id == campaign_id, c.status == "created")
            .values(status="planned", planned_at=now)
        ).rowcount
        if claimed != 1:
            return False
        for start in range(0, len(rows), 10_000):
            conn.execute(insert(message_table), rows[start : start + 10_000])
        add_events(conn, store, skipped)
    return True


def plan_campaign(
    store: Store, wh: Warehouse, settings: Settings, name: str, now: datetime | None = None
) -> str:
    """Assign, exclude and schedule the audience once (a planned campaign keeps its plan)."""
    cid, status, defn = load_campaign(store, name)
    if status == "created":
        now = now or utcnow()
        record_plan(store, cid, compute_plan(store, wh, settings, defn, now), now)
    return cid


def send_campaign(
    store: Store,
    wh: Warehouse | None,
    settings: Settings,
    name: str,
    renderer: EmailRenderer,
    messenger: Messenger,
    *,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> DeliveryReport:
    """Plan the campaign if it is not yet, then deliver every due message. Rerun it after a
    crash, or later for messages scheduled later: it resumes where it stopped. ``workers``:
    sending processes (``delivery.workers`` by default; see :mod:`.workers`)."""
    cid, status, defn = load_campaign(store, name)
    if status == "created":
        if wh is None:
            raise CampaignError(f"campaign {name!r} is not planned yet and needs the warehouse")
        plan_campaign(store, wh, settings, name, now)
    c = campaign_table.c
    with store.begin() as conn:
        conn.execute(
            update(campaign_table)
            .where(c.campaign_id == cid, c.status == "planned")
            .values(status="sending")
        )
    m = message_table.c
    with store.begin() as conn:
        due = conn.execute(
            select(func.count()).where(m.campaign_id == cid, m.status.in_(("pending", "sending")))
        ).scalar_one()
    workers = worker_count(settings.delivery.workers if workers is None else workers, due, renderer)
    send = deliver if workers == 1 else functools.partial(send_in_workers, workers)
    report = send(
        store,
        cid,
        renderer,
        messenger,
        settings.delivery,
        sender=defn.sender,
        now=now,
        progress=progress,
        journal=settings.path("journal", f"{cid}.keys"),
    )
    with store.begin() as conn:
        left = conn.execute(
            select(func.count()).where(m.campaign_id == cid, m.status.in_(("pending", "sending")))
        ).scalar_one()
        if left == 0:
            conn.execute(
                update(campaign_table)
                .where(c.campaign_id == cid)
                .values(status="done", finished_at=utcnow())
            )
    return report
